package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/jobwire/jobwire/api"
)

// Msg encodes the event as its JOB_EVENTS message: the JSON body on the job's subject, the event type
// in the Jobwire-Event header. It checks the fields that reach the subject first.
func (e *Event) Msg() (*nats.Msg, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Type, err)
	}
	m := nats.NewMsg(e.Subject())
	m.Data = data
	m.Header.Set(HeaderEventType, string(e.Type))
	return m, nil
}

// PublishEvent stores ev in JOB_EVENTS and returns its stream sequence. The message id is
// ev.MsgID(generation, 0), so publishing the same event again inside the duplicate window stores it
// once: callers retry it freely (with Retry). opts, such as an expected last sequence, are passed on.
func PublishEvent(ctx context.Context, js jetstream.JetStream, ev Event, generation int, opts ...jetstream.PublishOpt) (uint64, error) {
	m, err := ev.Msg()
	if err != nil {
		return 0, fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	opts = append(opts, jetstream.WithMsgID(ev.MsgID(generation, 0)))
	InjectTrace(ctx, m)
	ack, err := js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return 0, fmt.Errorf("publish %s of job %s: %w", ev.Type, ev.JobID, err)
	}
	return ack.Sequence, nil
}

// Submit queues a new job: its message first (deduplicated on the job id), then its job.submitted event
// naming the message's JOBS sequence, so that no job has an event without a message. A worker that
// takes a message whose event is missing (the submitter died in between) writes the same event. Both
// writes are retried while JetStream is unavailable, until ctx ends. It returns the stored event.
func Submit(ctx context.Context, js jetstream.JetStream, msg JobMessage, now time.Time) (Event, error) {
	var queueSeq uint64
	err := Retry{}.Do(ctx, func(ctx context.Context) (err error) {
		queueSeq, err = Enqueue(ctx, js, msg, now)
		return err
	})
	if err != nil {
		return Event{}, err
	}
	ev := msg.SubmittedEvent(queueSeq)
	err = Retry{}.Do(ctx, func(ctx context.Context) (err error) {
		ev.Seq, err = PublishEvent(ctx, js, ev, 0)
		return err
	})
	return ev, err
}

// SubmitMany queues jobs as Submit does, with their writes Pipelined: every job message is published
// asynchronously and the acks awaited together, then every job.submitted event likewise, so a batch
// costs two round trips rather than two per job. Each job keeps Submit's order (its message is stored
// before its event, which names the message's sequence) and its deduplication; a job whose Pipelined
// write failed is retried alone, as Submit retries, until ctx ends. It returns, per job in order, the
// stored event or the error that stopped it.
func SubmitMany(ctx context.Context, js jetstream.JetStream, msgs []JobMessage, now time.Time) ([]Event, []error) {
	events, errs := make([]Event, len(msgs)), make([]error, len(msgs))
	queued := make([]Pipelined, len(msgs))
	for i, msg := range msgs {
		queued[i].Msg, queued[i].Opts, queued[i].Err = jobMsg(msg, msg.JobID, now)
		if queued[i].Msg != nil {
			InjectTrace(ctx, queued[i].Msg)
		}
	}
	PublishAll(ctx, js, queued)
	submitted := make([]Pipelined, len(msgs))
	for i, msg := range msgs {
		if queued[i].Err != nil {
			submitted[i].Err = queued[i].Err
			continue
		}
		events[i] = msg.SubmittedEvent(queued[i].Seq)
		submitted[i].Msg, submitted[i].Err = events[i].Msg()
		if submitted[i].Msg != nil {
			InjectTrace(ctx, submitted[i].Msg)
		}
		submitted[i].Opts = []jetstream.PublishOpt{jetstream.WithMsgID(events[i].MsgID(0, 0))}
	}
	PublishAll(ctx, js, submitted)
	for i, msg := range msgs {
		if submitted[i].Err == nil {
			events[i].Seq = submitted[i].Seq
			continue
		}
		// Both writes are deduplicated: doing the job's submission again alone is safe.
		events[i], errs[i] = Submit(ctx, js, msg, now)
	}
	return events, errs
}

// Pipelined is one message of PublishAll: what to publish (Msg with Opts), then its stream sequence
// (Seq) or error (Err). An entry without Msg, or whose Err is set before PublishAll, is left alone.
type Pipelined struct {
	Msg  *nats.Msg
	Opts []jetstream.PublishOpt
	Seq  uint64
	Err  error
}

// PublishAll publishes every message asynchronously, then waits for each ack until ctx ends: n writes
// cost one round trip instead of n. Writes to one subject are stored in the order given. A message
// with an expected last sequence that did not match fails alone (IsWrongLastSequence(Err)).
func PublishAll(ctx context.Context, js jetstream.JetStream, ms []Pipelined) {
	futures := make([]jetstream.PubAckFuture, len(ms))
	for i := range ms {
		if ms[i].Err == nil && ms[i].Msg != nil {
			futures[i], ms[i].Err = js.PublishMsgAsync(ms[i].Msg, ms[i].Opts...)
		}
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			ms[i].Seq = ack.Sequence
		case err := <-f.Err():
			ms[i].Err = err
		case <-ctx.Done():
			ms[i].Err = ctx.Err()
		}
	}
}

// ErrConflict is returned by PublishEventAfter when another writer moved the job on first.
var ErrConflict = errors.New("the job changed meanwhile")

// PublishEventAfter stores ev only if the job's last event is still at sequence after, and only once
// (msgID): a wrong last sequence, or the same event already stored by another caller, is ErrConflict.
// It retries while JetStream is unavailable, until ctx ends. A decision made on a job's last event
// (cancel it, re-queue it) is written this way, so that of concurrent deciders exactly one wins.
func PublishEventAfter(ctx context.Context, js jetstream.JetStream, ev Event, msgID string, after uint64) (uint64, error) {
	m, err := ev.Msg()
	if err != nil {
		return 0, fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	InjectTrace(ctx, m)
	var ack *jetstream.PubAck
	err = Retry{}.Do(ctx, func(ctx context.Context) (err error) {
		ack, err = js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(after), jetstream.WithMsgID(msgID))
		return err
	})
	switch {
	case IsWrongLastSequence(err):
		return 0, ErrConflict
	case err != nil:
		return 0, fmt.Errorf("publish %s of job %s: %w", ev.Type, ev.JobID, err)
	case ack.Duplicate:
		return 0, ErrConflict
	}
	return ack.Sequence, nil
}

// Enqueue puts a job message into JOBS, deduplicated on the job id, and returns its JOBS sequence. A
// message whose RunAt is after now is stored as a JetStream schedule that publishes it into the job
// type's queue at RunAt (rounded up to the second, schedules' resolution): nothing polls for it. Like PublishEvent it may be retried
// freely.
func Enqueue(ctx context.Context, js jetstream.JetStream, msg JobMessage, now time.Time) (uint64, error) {
	return publishJob(ctx, js, msg, msg.JobID, now)
}

// ScheduleRetry queues the next attempt of a job for at: msg with Attempts set to the attempts made,
// as a JetStream schedule (at once when at has passed), deduplicated on the job,
// its requeue count and its attempts, so the worker that failed the attempt may repeat it after a crash.
func ScheduleRetry(ctx context.Context, js jetstream.JetStream, msg JobMessage, at, now time.Time) error {
	at = at.UTC()
	msg.RunAt = &at
	_, err := publishJob(ctx, js, msg, fmt.Sprintf("%s:retry:%d:%d", msg.JobID, msg.Requeued, msg.Attempts), now)
	return err
}

// Requeue puts a job back into its queue (a retry from the dead letters), deduplicated on the job id
// and its requeue count, never scheduled.
func Requeue(ctx context.Context, js jetstream.JetStream, msg JobMessage) error {
	msg.RunAt, msg.Attempts = nil, 0
	_, err := publishJob(ctx, js, msg, fmt.Sprintf("%s:requeue:%d", msg.JobID, msg.Requeued), time.Time{})
	return err
}

func publishJob(ctx context.Context, js jetstream.JetStream, msg JobMessage, msgID string, now time.Time) (uint64, error) {
	m, opts, err := jobMsg(msg, msgID, now)
	if err != nil {
		return 0, err
	}
	InjectTrace(ctx, m)
	ack, err := js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return 0, fmt.Errorf("queue job %s: %w", msg.JobID, err)
	}
	return ack.Sequence, nil
}

// jobMsg encodes msg as its JOBS message with its publish options: the type's queue subject, or a
// schedule for RunAt when that is after now.
func jobMsg(msg JobMessage, msgID string, now time.Time) (*nats.Msg, []jetstream.PublishOpt, error) {
	if err := msg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("queue job: %w", err)
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, nil, fmt.Errorf("encode job message: %w", err)
	}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(msgID)}
	subject := QueueSubjectAt(msg.Type, msg.Priority)
	if msg.RunAt != nil && !now.IsZero() && msg.RunAt.After(now) {
		// A schedule's time has whole seconds: round up, so the job never starts before RunAt.
		at := msg.RunAt.Truncate(time.Second)
		if at.Before(*msg.RunAt) {
			at = at.Add(time.Second)
		}
		opts = append(opts, jetstream.WithScheduleAt(at), jetstream.WithScheduleTarget(subject))
		subject = ScheduleSubject(msg.JobID)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	return m, opts, nil
}

// LastEvent returns the last event of a job (one direct get, no consumer). found is false when the job
// has no event. A malformed last event is an error, returned with an Event that holds only its Seq.
func LastEvent(ctx context.Context, events jetstream.Stream, owner, jobID string) (ev Event, found bool, err error) {
	m, err := events.GetLastMsgForSubject(ctx, EventSubject(owner, jobID))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return Event{}, false, nil
	case err != nil:
		return Event{}, false, fmt.Errorf("read last event of job %s: %w", jobID, err)
	}
	if ev, err = DecodeEvent(m.Data, m.Sequence); err != nil {
		return Event{Seq: m.Sequence}, true, err // its sequence still orders the next write
	}
	return ev, true, nil
}

// readBatch is how many events one direct-get request of ReadEvents asks for.
const readBatch = 256

// ReadEvents returns up to limit of a job's raw events in stream order, starting at sequence from (0 or
// 1: the first), read with batched direct gets (no consumer is made). more is true when events follow
// the last one returned.
func ReadEvents(ctx context.Context, js jetstream.JetStream, owner, jobID string, from uint64, limit int) (out []*jetstream.RawStreamMsg, more bool, err error) {
	subject := EventSubject(owner, jobID)
	from = max(from, 1)
	for len(out) <= limit {
		want := min(limit+1-len(out), readBatch)
		msgs, err := jetstreamext.GetBatch(ctx, js, StreamEvents, want, jetstreamext.GetBatchSeq(from), jetstreamext.GetBatchSubject(subject))
		if err != nil {
			return nil, false, fmt.Errorf("read events of job %s: %w", jobID, err)
		}
		got := 0
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return nil, false, fmt.Errorf("read events of job %s: %w", jobID, err)
			}
			out, got, from = append(out, m), got+1, m.Sequence+1
		}
		if got < want {
			break
		}
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// DecodeEvents decodes raw events, skipping malformed ones (the projector skips them too).
func DecodeEvents(raws []*jetstream.RawStreamMsg) []Event {
	out := make([]Event, 0, len(raws))
	for _, r := range raws {
		if ev, err := DecodeEvent(r.Data, r.Sequence); err == nil {
			out = append(out, ev)
		}
	}
	return out
}

// DecodeState parses a JOB_STATE value and sets its revision.
func DecodeState(data []byte, revision uint64) (api.JobState, error) {
	var st api.JobState
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("decode job state: %w", err)
	}
	st.Revision = revision
	return st, nil
}
