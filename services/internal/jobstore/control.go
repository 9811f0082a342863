package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Cancel asks for a job to stop (streams.Cancel: durable, decided on the job's last event and written
// only if it is still the last). A job that is not running is cancelled at once; a running one is
// cancelled by the worker that runs it, or by the next one to take it. A finished job is ErrFinished.
func (s *Store) Cancel(ctx context.Context, owner, jobID string) (api.JobState, error) {
	st, err := s.Get(ctx, owner, jobID)
	if err != nil {
		return st, err
	}
	if st.State.Terminal() {
		return st, ErrFinished
	}
	ev, err := streams.Cancel(ctx, s.js, s.log, owner, jobID, s.now())
	switch {
	case err != nil:
		return st, err
	case ev != nil:
		streams.Apply(&st, *ev)
	default:
		st.State = api.StateActive
	}
	return st, nil
}

// Retry puts a failed job back into its queue from JOBS_DLQ: a job.requeued event first, written only
// if the job's last event is still its final failure (so of concurrent retries exactly one re-queues
// it; the others are ErrNotDeadLettered), then the original job message, with one more requeue and the
// event's sequence (its events are not taken for the earlier run's, nor its cancel requests), then the
// dead letter is removed.
func (s *Store) Retry(ctx context.Context, owner, jobID string) (api.JobState, error) {
	st, err := s.Get(ctx, owner, jobID)
	if err != nil {
		return st, err
	}
	if st.State != api.StateFailed {
		return st, ErrNotDeadLettered
	}
	last, found, err := streams.LastEvent(ctx, s.log, owner, jobID)
	switch {
	case err != nil:
		return st, err
	case !found || last.Type != streams.EventFailed || !last.Final:
		return st, ErrNotDeadLettered
	}
	dead, msg, err := s.deadLetter(ctx, owner, jobID)
	if err != nil {
		return st, err
	}
	msg.Requeued++
	ev := streams.Event{V: streams.EventVersion, Type: streams.EventRequeued, JobID: jobID, JobType: st.Type, Owner: owner, At: s.now().UTC()}
	seq, err := streams.PublishEventAfter(ctx, s.js, ev, ev.MsgID(msg.Requeued, 0), last.Seq)
	if errors.Is(err, streams.ErrConflict) {
		return st, ErrNotDeadLettered // another retry won
	}
	if err != nil {
		return st, err
	}
	msg.SinceSeq = seq
	if err := (streams.Retry{}).Do(ctx, func(ctx context.Context) error { return streams.Requeue(ctx, s.js, msg) }); err != nil {
		return st, err
	}
	if err := s.dlq.DeleteMsg(ctx, dead); err != nil && !isNoMessage(err) {
		return st, fmt.Errorf("remove dead letter: %w", err)
	}
	ev.Seq = seq
	streams.Apply(&st, ev)
	return st, nil
}

// deadLetter reads a job's dead letter: its sequence and the job message it holds.
func (s *Store) deadLetter(ctx context.Context, owner, jobID string) (uint64, streams.JobMessage, error) {
	var msg streams.JobMessage
	dead, err := s.dlq.GetLastMsgForSubject(ctx, streams.DeadLetterSubject(owner, jobID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, msg, ErrNotDeadLettered
	}
	if err != nil {
		return 0, msg, fmt.Errorf("read dead letter: %w", err)
	}
	if err := json.Unmarshal(dead.Data, &msg); err != nil || msg.Validate() != nil || msg.JobID != jobID || msg.Owner != owner {
		return 0, msg, fmt.Errorf("dead letter of %s is corrupt", jobID)
	}
	return dead.Sequence, msg, nil
}

// isNoMessage reports whether a delete found no message (another retry removed it first).
func isNoMessage(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrMsgNotFound) || errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeMessageNotFound
}
