package streams

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Retry retries an operation on JetStream that fails for a while and then works again: a publish
// while a clustered stream elects a new leader after a node is lost, a read while the connection is
// re-established. The zero value retries until ctx ends, waiting 50 ms after the first failure and
// doubling up to 5 s.
type Retry struct {
	// Wait is the pause after the first failure; it doubles after each further one, up to MaxWait.
	// Defaults 50 ms and 5 s.
	Wait, MaxWait time.Duration
	// For bounds the whole retry; after it the last error is returned. Default: until ctx ends.
	For time.Duration
	// Timeout bounds each attempt with its own context (derived from context.WithoutCancel(ctx) when
	// For is set, so an attempt is never cut short by an earlier deadline). Default: ctx alone.
	Timeout time.Duration
	// Final reports an error that retrying cannot fix; it is returned at once. Default:
	// IsWrongLastSequence (someone else wrote first).
	Final func(error) bool
	// OnRetry, when set, is called before each pause, e.g. to renew the lease of a job in hand.
	OnRetry func(err error, wait time.Duration)
}

// Do calls op until it returns nil or a final error, the retry's time runs out, or ctx ends, and
// returns op's last error.
func (r Retry) Do(ctx context.Context, op func(context.Context) error) error {
	wait, maxWait := r.Wait, r.MaxWait
	if wait <= 0 {
		wait = 50 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	final := r.Final
	if final == nil {
		final = IsWrongLastSequence
	}
	base := ctx
	var deadline time.Time
	if r.For > 0 {
		deadline = time.Now().Add(r.For)
		base = context.WithoutCancel(ctx)
	}
	for {
		err := r.attempt(base, op)
		if err == nil || final(err) || ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
			return err
		}
		if r.OnRetry != nil {
			r.OnRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait = min(wait*2, maxWait)
	}
}

func (r Retry) attempt(ctx context.Context, op func(context.Context) error) error {
	if r.Timeout <= 0 {
		return op(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	return op(ctx)
}

// IsWrongLastSequence reports whether err is JetStream refusing a write whose expected last sequence
// (per subject, or a KV revision) did not match: someone else wrote first.
func IsWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists)
}
