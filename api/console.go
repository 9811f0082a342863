package api

import (
	"context"
	"encoding/json"
	"time"
)

// The operators' console: GET /v1/operator/events streams a ConsoleSnapshot in a console event when
// it opens and again whenever it changes (at most once per ConsoleSnapshot interval, a second by
// default). Every viewer of a gateway gets the same snapshot, made once by the gateway's one sampler.

// ConsoleSnapshot is the data of a console event: every job type and every gateway, as one gateway sees
// them now.
type ConsoleSnapshot struct {
	// Gateways are the gateways that published their stats within the last few seconds (this one
	// first), so a console on any gateway sees all of them.
	Gateways []ConsoleGateway `json:"gateways"`
	// Types are the registered job types and any other type with jobs in JOB_STATE, sorted by name.
	Types []ConsoleJobType `json:"types"`
	// DeadLetters counts every message in JOBS_DLQ, malformed ones (which have no type) included.
	DeadLetters int       `json:"deadLetters"`
	At          time.Time `json:"at"`
}

// ConsoleGateway is one gateway process.
type ConsoleGateway struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	Addr string `json:"addr"`
	// OpenStreams counts its open SSE streams of every kind; ConsoleStreams those of the console.
	OpenStreams    int `json:"openStreams"`
	ConsoleStreams int `json:"consoleStreams"`
}

// ConsoleJobType is one job type's numbers. Queued excludes Scheduled (queued with a runAt, or a
// retry's backoff, still ahead); Completed, Failed and Cancelled count the finished jobs still in
// JOB_STATE (the state's retention, 24 h by default). DeadLettered counts its dead letters in JOBS_DLQ
// (sampled every few seconds). The rates are per second over the last ten seconds. WorkersOnline counts
// the worker processes serving the type now; Paused and RateLimit are the operators' controls.
type ConsoleJobType struct {
	Type           string  `json:"type"`
	Queued         int     `json:"queued"`
	Scheduled      int     `json:"scheduled"`
	Active         int     `json:"active"`
	Completed      int     `json:"completed"`
	Failed         int     `json:"failed"`
	Cancelled      int     `json:"cancelled"`
	DeadLettered   int     `json:"deadLettered"`
	StartedPerSec  float64 `json:"startedPerSec"`
	FinishedPerSec float64 `json:"finishedPerSec"`
	WorkersOnline  int     `json:"workersOnline"`
	Paused         bool    `json:"paused"`
	// RateLimit is the type's cluster-wide cap on starts, if it has one.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// OperatorEventsPath is the route of the console stream (operators only).
const OperatorEventsPath = "/v1/operator/events"

// Console decodes a console event's data.
func (e Event) Console() (ConsoleSnapshot, error) {
	var s ConsoleSnapshot
	err := json.Unmarshal(e.Data, &s)
	return s, err
}

// OpenConsole opens the operators' console stream: a console event now, and one whenever the numbers
// change. It needs an operator's token.
func (c *Client) OpenConsole(ctx context.Context) (*EventStream, error) {
	return c.OpenStream(ctx, OperatorEventsPath, "")
}
