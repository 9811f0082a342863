package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
)

// Errors of Cancel.
var (
	ErrJobNotFound = errors.New("job not found")
	ErrJobFinished = errors.New("job already finished")
)

// Cancel asks for a job to stop. The request is broadcast on the job's cancel subject, where the worker
// running it (if any) cancels its handler and ends it as cancelled. A job that is not running (queued,
// scheduled, waiting for a retry) is cancelled here at once: its job.cancelled event is written and
// returned, and the worker that later takes its message skips it. A job whose last event is terminal
// is ErrJobFinished; one with no event ErrJobNotFound.
func Cancel(ctx context.Context, js jetstream.JetStream, events jetstream.Stream, owner, jobID string, now time.Time) (*Event, error) {
	last, found, err := LastEvent(ctx, events, owner, jobID)
	switch {
	case err != nil && !found:
		return nil, err
	case !found:
		return nil, ErrJobNotFound
	case err == nil && last.Terminal():
		return nil, ErrJobFinished
	}
	// Read before the broadcast, so the cancellation this call causes is not taken for an earlier end.
	running := last.Type == EventStarted || last.Type == EventProgress
	if err := js.Conn().Publish(CancelSubject(owner, jobID), nil); err != nil {
		return nil, fmt.Errorf("broadcast cancel: %w", err)
	}
	if running {
		return nil, nil
	}
	ev := Event{V: EventVersion, Type: EventCancelled, JobID: jobID, JobType: last.JobType, Owner: owner,
		At: now.UTC(), Attempt: last.Attempt, Error: &api.JobError{Code: "cancelled", Message: "cancelled before it started"}}
	seq, err := PublishEvent(ctx, js, ev, 0)
	if err != nil {
		return nil, err
	}
	ev.Seq = seq
	return &ev, nil
}
