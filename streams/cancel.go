package streams

import (
	"context"
	"encoding/json"
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

// CancelRequest is the body of a cancel request in JOB_CANCELS.
type CancelRequest struct {
	V     int       `json:"v"`
	JobID string    `json:"jobId"`
	Owner string    `json:"owner"`
	At    time.Time `json:"at"`
	// AfterSeq is the JOB_EVENTS sequence of the job's last event when the cancel was decided.
	AfterSeq uint64 `json:"afterSeq"`
}

// cancelTries bounds how often Cancel reads the job again after losing a race with another writer.
const cancelTries = 10

// Cancel asks for a job to stop, and is durable. It decides on the job's last event and writes only if
// that is still the last one (expected last sequence), so it never relabels a job that finished first:
//   - a job that is not running (queued, scheduled, waiting for a retry) is cancelled at once: its
//     job.cancelled event is written and returned, and a worker that later takes its message skips it;
//   - a running job gets a cancel request in JOB_CANCELS, which reaches the workers subscribed to its
//     subject at once, and which a worker that missed it reads when it renews the job's lease or when it
//     takes the job again; that worker ends the job cancelled. Cancel returns nil then.
//
// A finished job, or one that another caller cancelled first, is ErrJobFinished; a job with no event
// ErrJobNotFound.
func Cancel(ctx context.Context, js jetstream.JetStream, events jetstream.Stream, owner, jobID string, now time.Time) (*Event, error) {
	for range cancelTries {
		last, found, err := LastEvent(ctx, events, owner, jobID)
		switch {
		case err != nil && !found:
			return nil, err
		case !found:
			return nil, ErrJobNotFound
		case err == nil && last.Terminal():
			return nil, ErrJobFinished
		}
		if last.Type == EventStarted || last.Type == EventProgress {
			return nil, requestCancel(ctx, js, owner, jobID, last.Seq, now)
		}
		ev, err := cancelQueued(ctx, js, last, now)
		if errors.Is(err, ErrConflict) {
			continue // something happened to the job since we read it: decide again
		}
		return ev, err
	}
	return nil, fmt.Errorf("cancel job %s: it changed %d times while cancelling", jobID, cancelTries)
}

// cancelQueued writes job.cancelled for a job whose last event is last and that no worker runs.
func cancelQueued(ctx context.Context, js jetstream.JetStream, last Event, now time.Time) (*Event, error) {
	ev := Event{V: EventVersion, Type: EventCancelled, JobID: last.JobID, JobType: last.JobType, Owner: last.Owner,
		At: now.UTC(), Attempt: last.Attempt, Error: &api.JobError{Code: "cancelled", Message: "cancelled before it started"}}
	seq, err := PublishEventAfter(ctx, js, ev, fmt.Sprintf("%s:cancel:%d", last.JobID, last.Seq), last.Seq)
	if err != nil {
		return nil, err
	}
	ev.Seq = seq
	return &ev, nil
}

// requestCancel stores a cancel request for a running job; the workers subscribed to its subject get
// it as it is stored.
func requestCancel(ctx context.Context, js jetstream.JetStream, owner, jobID string, afterSeq uint64, now time.Time) error {
	data, err := json.Marshal(CancelRequest{V: 1, JobID: jobID, Owner: owner, At: now.UTC(), AfterSeq: afterSeq})
	if err != nil {
		return fmt.Errorf("encode cancel request: %w", err)
	}
	if _, err := js.Publish(ctx, CancelSubject(owner, jobID), data, jetstream.WithMsgID(fmt.Sprintf("%s:cancel:%d", jobID, afterSeq))); err != nil {
		return fmt.Errorf("request cancel of job %s: %w", jobID, err)
	}
	return nil
}

// CancelRequested reports whether a job has a cancel request that applies to the run of the job that
// began at JOB_EVENTS sequence since (its job.requeued event; 0 for a job never re-queued): one direct
// get in JOB_CANCELS.
func CancelRequested(ctx context.Context, cancels jetstream.Stream, owner, jobID string, since uint64) (bool, error) {
	m, err := cancels.GetLastMsgForSubject(ctx, CancelSubject(owner, jobID))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read cancel request of job %s: %w", jobID, err)
	}
	return DecodeCancelRequest(m.Data).AppliesSince(since), nil
}

// DecodeCancelRequest parses a cancel request; an unreadable one counts as a request decided at the
// job's start (it applies to the job's first run).
func DecodeCancelRequest(data []byte) CancelRequest {
	var r CancelRequest
	_ = json.Unmarshal(data, &r)
	return r
}

// AppliesSince reports whether the request concerns the run of the job that began at sequence since.
func (r CancelRequest) AppliesSince(since uint64) bool { return r.AfterSeq >= since }
