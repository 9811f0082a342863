// Package runner runs jobs from the JOBS work queue: it fetches only what it can run now, keeps each
// job's lease alive, reports lifecycle and (coalesced) progress events to JOB_EVENTS, retries with
// backoff, dead-letters jobs whose attempts ran out, honours cancellation, and acks a job only after
// its terminal event is stored.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Job is what a handler gets to run.
type Job struct {
	ID      string
	Type    string
	Owner   string
	Input   json.RawMessage
	Attempt int
}

// ProgressFunc reports how far a job has come. It is cheap to call often: the runner coalesces calls to
// at most one event per job per progress interval, plus the final value.
type ProgressFunc func(done, total int, message string)

// Handler runs one job type. Run returns the job's result (JSON) or an error. When ctx is cancelled
// because the job was cancelled, Run should return promptly with the partial result and ctx.Err().
type Handler interface {
	Run(ctx context.Context, job Job, progress ProgressFunc) (json.RawMessage, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, job Job, progress ProgressFunc) (json.RawMessage, error)

// Run calls f.
func (f HandlerFunc) Run(ctx context.Context, job Job, progress ProgressFunc) (json.RawMessage, error) {
	return f(ctx, job, progress)
}

// PermanentError marks a failure that no retry can fix (invalid input): the job fails at once.
type PermanentError struct {
	Code string
	Err  error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the job is not retried; code is the stable error code shown to users.
func Permanent(code string, err error) error { return &PermanentError{Code: code, Err: err} }

// RetryAfterError asks for the next attempt no earlier than After.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.After) }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so the next attempt waits at least d.
func RetryAfter(d time.Duration, err error) error { return &RetryAfterError{After: d, Err: err} }

func isPermanent(err error) (string, bool) {
	var p *PermanentError
	if errors.As(err, &p) {
		return p.Code, true
	}
	return "", false
}
