package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jobwire/jobwire/streams"
)

// outcome is what one run of the handler came to.
type outcome struct {
	result json.RawMessage
	err    error
	cause  error // why the handler's context ended, if it did
	took   time.Duration
	// abandoned is set when the handler did not return within StopGrace of its context ending.
	abandoned bool
}

// run calls the handler with the attempt's context, which ends on a cancel request, at the job's
// timeout, or when the worker stops, keeping the job's lease while it runs. A handler that does not
// return within StopGrace of its context ending is abandoned: the attempt is settled without it and its
// slot freed; whatever it returns later is dropped.
func (a *attempt) run() outcome {
	r := a.r
	name := r.def.name
	r.w.metrics.started.WithLabelValues(name).Inc()
	r.w.metrics.running.WithLabelValues(name).Inc()
	defer r.w.metrics.running.WithLabelValues(name).Dec()
	stopLease := a.keepLease()
	defer stopLease()
	defer a.em.stop()
	ctx, cancel := context.WithTimeoutCause(a.ctx, a.timeout(), ErrTimeout)
	defer cancel()
	done := make(chan outcome, 1)
	go func() { done <- a.call(ctx) }()
	select {
	case out := <-done:
		return out
	case <-ctx.Done():
	}
	grace := time.NewTimer(r.opts.StopGrace)
	defer grace.Stop()
	select {
	case out := <-done:
		return out
	case <-grace.C:
	}
	r.w.metrics.abandoned.WithLabelValues(name).Inc()
	cause := context.Cause(ctx)
	a.log.Warn("handler abandoned: it did not return after its context ended", "cause", cause, "grace", r.opts.StopGrace)
	return outcome{cause: cause, abandoned: true,
		err: fmt.Errorf("the handler did not return within %s after %v, and was abandoned", r.opts.StopGrace, cause)}
}

// timeout is the job's own timeout, else the type's.
func (a *attempt) timeout() time.Duration {
	if a.job.Timeout > 0 {
		return a.job.Timeout
	}
	return a.r.opts.Timeout
}

// call runs the handler, turning a panic into an error so one bad job cannot kill the worker.
func (a *attempt) call(ctx context.Context) (out outcome) {
	begin := time.Now()
	defer func() {
		if p := recover(); p != nil {
			out.err = fmt.Errorf("handler panic: %v", p)
		}
		out.took, out.cause = time.Since(begin), context.Cause(ctx)
	}()
	info := jobInfo{id: a.job.JobID, owner: a.job.Owner, attempt: a.number, maxAttempts: a.max,
		createdAt: a.job.CreatedAt, input: a.job.Input}
	out.result, out.err = a.r.def.run(ctx, info, a.em)
	return out
}

// keepLease tells the server the job is still being worked on, at a third of AckWait, until stopped.
// Each renewal also looks for a cancel request the worker may have missed (a broadcast is delivered
// at most once, and not while the connection is down).
func (a *attempt) keepLease() (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(a.r.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = a.msg.InProgress()
				if a.cancelRequestedNow() {
					a.cancel(ErrCancelled)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// cancelRequestedNow is one bounded look for a cancel request.
func (a *attempt) cancelRequestedNow() bool {
	ctx, cancel := context.WithTimeout(context.Background(), a.r.opts.AckWait/3)
	defer cancel()
	yes, err := streams.CancelRequested(ctx, a.r.w.cancels, a.job.Owner, a.job.JobID, a.job.SinceSeq)
	if err != nil {
		a.log.Warn("read cancel request", "err", err)
	}
	return yes
}
