package gateway

import (
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
)

// legacySubmitResponse is what the BullMQ-era POST /library/sync answered.
type legacySubmitResponse struct {
	JobID string `json:"jobId"`
}

// legacySubmit serves POST /library/sync: the body is a playlist.import input; the answer {"jobId"}.
func (g *Gateway) legacySubmit(c *fiber.Ctx) error {
	var in api.PlaylistImport
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	raw, _ := json.Marshal(in)
	sub, err := g.submission(identity(c).Owner, api.SubmitRequest{Type: api.JobTypePlaylistImport, Input: raw}, c.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	return g.submitJob(c, sub, func(st api.JobState) any { return legacySubmitResponse{JobID: st.ID} })
}

// legacyGet serves GET /library/sync/{id}: the job in the legacy JSON shape. Like the stream routes it
// takes ?access_token= (the legacy frontend's polling), but it is not a stream: stream tokens are refused.
func (g *Gateway) legacyGet(c *fiber.Ctx) error {
	if identity(c).Scope == auth.ScopeStream {
		return errStreamTokenHere
	}
	st, err := onJob(c, g.store.Get)
	if err != nil {
		return err
	}
	return c.JSON(st.Legacy())
}
