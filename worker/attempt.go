package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Headers of a dead letter in JOBS_DLQ (its body is the job message as it was queued).
const (
	HeaderDeadJobID    = "Jobwire-Job-Id"
	HeaderDeadOwner    = "Jobwire-Owner"
	HeaderDeadError    = "Jobwire-Error"
	HeaderDeadAttempts = "Jobwire-Attempts"
)

// attempt is one delivery of a job that this worker runs.
type attempt struct {
	r      *runner
	msg    jetstream.Msg
	job    streams.JobMessage
	number int
	log    *slog.Logger
	em     *emitter
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// outcome is what one run of the handler came to.
type outcome struct {
	result json.RawMessage
	err    error
	cause  error // why the handler's context ended, if it did
	took   time.Duration
}

// process runs one delivery of a job: claim it, run the handler, settle the message.
func (r *runner) process(msg jetstream.Msg) {
	a := r.claim(msg)
	if a == nil {
		return
	}
	out := a.run()
	r.w.untrack(a)
	a.settle(out)
}

// claim decides whether the delivery is to run and, if so, records its start. It settles the message
// itself and returns nil when there is nothing to run: a message that is not a job (Term), a job that
// already ended (Ack), one whose attempts ran out (failed), or a start that could not be recorded
// (handed back for a retry in a second).
func (r *runner) claim(msg jetstream.Msg) *attempt {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error("job message without metadata", "err", err)
		_ = msg.Term()
		return nil
	}
	var jm streams.JobMessage
	if err := json.Unmarshal(msg.Data(), &jm); err != nil || jm.Validate() != nil || jm.Type != r.def.name {
		r.log.Error("malformed job message terminated", "seq", meta.Sequence.Stream, "err", errors.Join(err, jm.Validate()))
		_ = msg.Term()
		return nil
	}
	a := r.newAttempt(msg, jm, int(meta.NumDelivered))
	// A job can end while its message waits: cancelled while queued, or finished by an attempt whose
	// ack was lost. Its last event says so. A first delivery proves the opposite with its started
	// event instead (expected last sequence), saving a round trip.
	fast := a.number == 1 && jm.EventSeq != 0 && jm.Requeued == 0
	if !fast && a.endedOrRetry() {
		return nil
	}
	if a.number > r.opts.MaxAttempts {
		// Every earlier delivery ended without a verdict: the job crashed or hung its worker each time.
		a.fail(&api.JobError{Code: CodeAttemptsExhausted,
			Message: fmt.Sprintf("the job stopped its worker on every attempt (%d)", a.number-1)})
		return nil
	}
	// Listen for this job's cancellation before anyone can see it started: a cancel request that
	// follows the started event always finds the job here.
	r.w.track(a)
	started := a.em.event(streams.Event{Type: streams.EventStarted, Worker: r.w.cfg.Name})
	if fast {
		err = a.publish(started, jetstream.WithExpectLastSequencePerSubject(jm.EventSeq))
		if streams.IsWrongLastSequence(err) {
			// Something was written for the job since it was submitted: look before running it.
			if a.endedOrRetry() {
				r.w.untrack(a)
				return nil
			}
			err = a.publish(started)
		}
	} else {
		err = a.publish(started)
	}
	if err != nil {
		r.w.untrack(a)
		a.log.Warn("publish started, retrying", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return nil
	}
	return a
}

func (r *runner) newAttempt(msg jetstream.Msg, jm streams.JobMessage, number int) *attempt {
	a := &attempt{r: r, msg: msg, job: jm, number: number, log: r.log.With("job", jm.JobID, "attempt", number)}
	a.ctx, a.cancel = context.WithCancelCause(context.Background())
	a.em = &emitter{js: r.w.js, job: jm, attempt: number, interval: r.opts.ProgressInterval, onSend: func(err error) {
		if err != nil {
			r.w.metrics.publishErrors.Inc()
			a.log.Warn("publish progress", "err", err)
			return
		}
		r.w.metrics.progressEvents.Inc()
	}}
	return a
}

// endedOrRetry reports whether the delivery is settled already: the job's last event is terminal
// (acked), or it could not be read (handed back for a retry in a second).
func (a *attempt) endedOrRetry() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	last, found, err := streams.LastEvent(ctx, a.r.w.events, a.job.Owner, a.job.JobID)
	switch {
	case err != nil && found:
		return false // a malformed last event ends nothing
	case err != nil:
		a.log.Warn("read job events, retrying", "err", err)
		_ = a.msg.NakWithDelay(time.Second)
		return true
	case found && last.Terminal():
		_ = a.msg.Ack()
		return true
	}
	return false
}

// run calls the handler with the attempt's context (cancelled on request, at the timeout, or on
// shutdown), keeping the job's lease while it runs. A panic is a failed attempt, not a crash.
func (a *attempt) run() (out outcome) {
	r := a.r
	name := r.def.name
	r.w.metrics.started.WithLabelValues(name).Inc()
	r.w.metrics.running.WithLabelValues(name).Inc()
	defer r.w.metrics.running.WithLabelValues(name).Dec()
	stopLease := a.keepLease()
	defer stopLease()
	defer a.em.stop()
	ctx, cancel := context.WithTimeoutCause(a.ctx, r.opts.Timeout, ErrTimeout)
	defer cancel()
	begin := time.Now()
	defer func() {
		if p := recover(); p != nil {
			out.err = fmt.Errorf("handler panic: %v", p)
		}
		out.took, out.cause = time.Since(begin), context.Cause(ctx)
	}()
	info := jobInfo{id: a.job.JobID, owner: a.job.Owner, attempt: a.number, maxAttempts: r.opts.MaxAttempts,
		createdAt: a.job.CreatedAt, input: a.job.Input}
	out.result, out.err = r.def.run(ctx, info, a.em)
	return out
}

// settle records the outcome and settles the message: Ack after a terminal event is stored,
// NakWithDelay for a retry, Nak to hand the job back on shutdown.
func (a *attempt) settle(out outcome) {
	r := a.r
	name := r.def.name
	_, selfCancelled := errorsAs[*CancelledError](out.err)
	switch {
	case out.err == nil:
		if a.finish(streams.Event{Type: streams.EventCompleted, Result: out.result}) {
			r.w.metrics.finished.WithLabelValues(name, string(api.StateCompleted)).Inc()
			r.w.metrics.duration.WithLabelValues(name).Observe(out.took.Seconds())
		}
	case errors.Is(out.cause, ErrCancelled) || selfCancelled:
		msg := "cancelled while running"
		if selfCancelled {
			msg = out.err.Error()
		}
		if a.finish(streams.Event{Type: streams.EventCancelled, Result: out.result, Error: &api.JobError{Code: CodeCancelled, Message: msg}}) {
			r.w.metrics.finished.WithLabelValues(name, string(api.StateCancelled)).Inc()
		}
	case errors.Is(out.cause, ErrStopping):
		// Hand the job back now: another worker starts it without waiting for its lease.
		_ = a.msg.Nak()
		a.log.Info("job handed back on shutdown")
	default:
		a.failed(out)
	}
}

// failed settles a failed attempt: a retry after the backoff, or the end of the job.
func (a *attempt) failed(out outcome) {
	r := a.r
	code, final := CodeAttemptFailed, a.number >= r.opts.MaxAttempts
	if errors.Is(out.cause, ErrTimeout) {
		code = CodeTimeout
		out.err = fmt.Errorf("attempt %d ran past its timeout of %s: %w", a.number, r.opts.Timeout, out.err)
	} else if final {
		code = CodeAttemptsExhausted
	}
	if p, ok := errorsAs[*PermanentError](out.err); ok {
		code, final = p.Code, true
		if !validCode(code) {
			code = CodePermanent
		}
	}
	if final {
		a.fail(&api.JobError{Code: code, Message: out.err.Error()})
		return
	}
	delay := r.backoff(a.number)
	if ra, ok := errorsAs[*RetryAfterError](out.err); ok && ra.After > delay {
		delay = ra.After
	}
	retryAt := time.Now().Add(delay).UTC()
	ev := a.em.event(streams.Event{Type: streams.EventFailed, Error: &api.JobError{Code: code, Message: out.err.Error()}, RetryAt: &retryAt})
	if err := a.publish(ev); err != nil {
		a.log.Warn("publish failed attempt", "err", err)
	}
	r.w.metrics.retried.WithLabelValues(r.def.name).Inc()
	a.log.Info("job attempt failed, will retry", "err", out.err, "retry_in", delay)
	_ = a.msg.NakWithDelay(delay)
}

// finish stores a terminal event and acks the message; if the event cannot be stored the job is
// handed back for a retry in a second. It reports whether the job ended.
func (a *attempt) finish(ev streams.Event) bool {
	if err := a.publish(a.em.event(ev)); err != nil {
		a.log.Warn("publish "+string(ev.Type)+", retrying", "err", err)
		_ = a.msg.NakWithDelay(time.Second)
		return false
	}
	// A plain ack: if it is lost, the job is redelivered after its lease and the worker that gets it
	// sees the terminal event, so nothing runs twice.
	if err := a.msg.Ack(); err != nil {
		a.log.Warn("ack job", "err", err)
	}
	return true
}

// fail ends the job as failed for good: its message goes to JOBS_DLQ, then the final failed event is
// stored and the message acked.
func (a *attempt) fail(jerr *api.JobError) {
	dead := nats.NewMsg(streams.DeadLetterSubject(a.job.Owner, a.job.JobID))
	dead.Data = a.msg.Data()
	dead.Header.Set(HeaderDeadJobID, a.job.JobID)
	dead.Header.Set(HeaderDeadOwner, a.job.Owner)
	dead.Header.Set(HeaderDeadError, jerr.Code+": "+jerr.Message)
	dead.Header.Set(HeaderDeadAttempts, strconv.Itoa(a.number))
	msgID := a.job.JobID + ":dlq:" + strconv.Itoa(a.job.Requeued) + ":" + strconv.Itoa(a.number)
	err := a.retry(func(ctx context.Context) error {
		_, err := a.r.w.js.PublishMsg(ctx, dead, jetstream.WithMsgID(msgID))
		return err
	})
	if err != nil {
		a.log.Warn("dead-letter job, retrying", "err", err)
		_ = a.msg.NakWithDelay(time.Second)
		return
	}
	if a.finish(streams.Event{Type: streams.EventFailed, Error: jerr, Final: true}) {
		a.r.w.metrics.finished.WithLabelValues(a.r.def.name, string(api.StateFailed)).Inc()
		a.log.Info("job failed", "code", jerr.Code, "reason", jerr.Message)
	}
}

// publish stores an event of the job in hand (see retry).
func (a *attempt) publish(ev streams.Event, opts ...jetstream.PublishOpt) error {
	return a.retry(func(ctx context.Context) error {
		_, err := streams.PublishEvent(ctx, a.r.w.js, ev, a.job.Requeued, opts...)
		return err
	})
}

// retry runs a write for the job in hand for up to a minute, renewing its lease between tries: during a
// NATS leader election writes fail for a few seconds, and handing the job back instead would count as
// one more attempt.
func (a *attempt) retry(op func(context.Context) error) error {
	return streams.Retry{Wait: 100 * time.Millisecond, For: time.Minute, Timeout: 10 * time.Second,
		OnRetry: func(error, time.Duration) { _ = a.msg.InProgress() }}.Do(context.Background(), op)
}

// keepLease tells the server the job is still being worked on, well inside AckWait, until stopped.
func (a *attempt) keepLease() (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(a.r.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = a.msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
