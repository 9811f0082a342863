package api

import "time"

// Session answers GET /v1/session: who the caller's token (the session cookie, or a bearer token)
// speaks for. Operator says whether it holds the operator role: the page offers the console then.
type Session struct {
	User      string    `json:"user"`
	Operator  bool      `json:"operator"`
	ExpiresAt time.Time `json:"expiresAt"`
}
