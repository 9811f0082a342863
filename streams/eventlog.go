package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
)

// ErrHistoryTooLarge is returned by ReadEvents for a job with more events than it may return.
var ErrHistoryTooLarge = errors.New("job history too large")

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
	ack, err := js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return 0, fmt.Errorf("publish %s of job %s: %w", ev.Type, ev.JobID, err)
	}
	return ack.Sequence, nil
}

// Enqueue puts a job message into JOBS, deduplicated on the job id. A message whose RunAt is more
// than a second after now is stored as a JetStream schedule that publishes it into the job type's
// queue at RunAt: nothing polls for it. Like PublishEvent it may be retried freely.
func Enqueue(ctx context.Context, js jetstream.JetStream, msg JobMessage, now time.Time) error {
	return publishJob(ctx, js, msg, msg.JobID, now)
}

// Requeue puts a job back into its queue (a retry from the dead letters), deduplicated on the job id
// and its requeue count, never scheduled.
func Requeue(ctx context.Context, js jetstream.JetStream, msg JobMessage) error {
	msg.RunAt = nil
	return publishJob(ctx, js, msg, fmt.Sprintf("%s:requeue:%d", msg.JobID, msg.Requeued), time.Time{})
}

func publishJob(ctx context.Context, js jetstream.JetStream, msg JobMessage, msgID string, now time.Time) error {
	if err := msg.Validate(); err != nil {
		return fmt.Errorf("queue job: %w", err)
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode job message: %w", err)
	}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(msgID)}
	subject := QueueSubject(msg.Type)
	if msg.RunAt != nil && !now.IsZero() && msg.RunAt.After(now.Add(time.Second)) {
		opts = append(opts, jetstream.WithScheduleAt(*msg.RunAt), jetstream.WithScheduleTarget(subject))
		subject = ScheduleSubject(msg.JobID)
	}
	if _, err := js.Publish(ctx, subject, data, opts...); err != nil {
		return fmt.Errorf("queue job %s: %w", msg.JobID, err)
	}
	return nil
}

// LastEvent returns the last event of a job (one direct get, no consumer). found is false when the job
// has no event. A malformed last event is an error.
func LastEvent(ctx context.Context, events jetstream.Stream, owner, jobID string) (ev Event, found bool, err error) {
	m, err := events.GetLastMsgForSubject(ctx, EventSubject(owner, jobID))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return Event{}, false, nil
	case err != nil:
		return Event{}, false, fmt.Errorf("read last event of job %s: %w", jobID, err)
	}
	ev, err = DecodeEvent(m.Data, m.Sequence)
	return ev, true, err
}

// ReadEvents returns a job's raw events in stream order, read with direct gets (no consumer), up to
// but not including sequence before (0: all of them). More than limit events is ErrHistoryTooLarge.
func ReadEvents(ctx context.Context, events jetstream.Stream, owner, jobID string, before uint64, limit int) ([]*jetstream.RawStreamMsg, error) {
	subject := EventSubject(owner, jobID)
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); before == 0 || seq < before; {
		m, err := events.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read events of job %s: %w", jobID, err)
		}
		if before != 0 && m.Sequence >= before {
			break
		}
		if out = append(out, m); len(out) > limit {
			return nil, ErrHistoryTooLarge
		}
		seq = m.Sequence + 1
	}
	return out, nil
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
