package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
)

// A job type's rate limit is a stream of start tickets, RateStream(type): at most Limit messages, each
// kept for Interval (MaxAge), new ones refused when it is full (DiscardNew). A worker stores a ticket
// before each start; the stream's leader decides, so the limit holds over every worker of the type,
// and a ticket counts until it has aged out, so at most Limit jobs start in any window of Interval.
// The server removes aged tickets at least every 250 ms: a start may wait up to that much longer than
// the limit asks, never shorter. Tickets are kept in memory: after a restart of the stream's leader the
// window begins empty.

// RateStreamConfig is the ticket stream of jobType under limit, replicated like the rest (replicas).
func RateStreamConfig(jobType string, limit api.RateLimit, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        RateStream(jobType),
		Description: fmt.Sprintf("jobwire rate limit of %s: one ticket per job start, at most %d per %s", jobType, limit.Limit, time.Duration(limit.Interval)),
		Subjects:    []string{RateSubject(jobType)},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.MemoryStorage,
		Replicas:    replicas,
		MaxMsgs:     int64(limit.Limit),
		MaxAge:      time.Duration(limit.Interval),
		Discard:     jetstream.DiscardNew,
	}
}

// minTicketWait spaces the tries of a worker whose ticket was refused.
const minTicketWait = 10 * time.Millisecond

// TakeTicket stores one start ticket of jobType. It returns 0 when the start may go ahead (also when
// the type has no ticket stream: its limit was just removed), or how long to wait before the next try
// when the window is full: until the oldest ticket ages out.
func TakeTicket(ctx context.Context, js jetstream.JetStream, jobType string) (time.Duration, error) {
	_, err := js.Publish(ctx, RateSubject(jobType), nil)
	switch {
	case err == nil, errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return 0, nil
	case !isWindowFull(err):
		return 0, fmt.Errorf("take a start ticket of %s: %w", jobType, err)
	}
	s, err := js.Stream(ctx, RateStream(jobType))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", RateStream(jobType), err)
	}
	info := s.CachedInfo()
	wait := time.Until(info.State.FirstTime.Add(info.Config.MaxAge))
	return max(wait, minTicketWait), nil
}

// errCodeStoreFailed is JetStream's "failed to store the message" (JSStreamStoreFailedF), which a
// DiscardNew stream answers when it is full; nats.go names no constant for it.
const errCodeStoreFailed jetstream.ErrorCode = 10077

// isWindowFull reports the refusal of a full ticket stream.
func isWindowFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed &&
		strings.Contains(apiErr.Description, "maximum messages exceeded")
}
