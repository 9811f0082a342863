package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Headers of a dead letter in JOBS_DLQ (its body is the job message as it was queued): the protocol's
// names, kept in streams.
const (
	HeaderDeadJobID    = streams.HeaderDeadJobID
	HeaderDeadOwner    = streams.HeaderDeadOwner
	HeaderDeadError    = streams.HeaderDeadError
	HeaderDeadAttempts = streams.HeaderDeadAttempts
	// HeaderDeadQueueSubject and HeaderDeadQueueSeq say where a malformed message was queued.
	HeaderDeadQueueSubject = streams.HeaderDeadQueueSubject
	HeaderDeadQueueSeq     = streams.HeaderDeadQueueSeq
)

// settle records the outcome and settles the message: Ack after a terminal event is stored, or after
// the retry of a failed attempt is scheduled; Nak to hand the job back on shutdown.
func (a *attempt) settle(out outcome) {
	self, selfCancelled := errorsAs[*CancelledError](out.err)
	switch {
	case out.err == nil:
		if a.end(streams.Event{Type: streams.EventCompleted, Result: out.result}) {
			a.observeDuration(out.took)
		}
	case errors.Is(out.cause, ErrCancelled) || selfCancelled:
		msg := "cancelled while running"
		if selfCancelled {
			msg = self.Error()
		}
		a.end(streams.Event{Type: streams.EventCancelled, Result: out.result, Error: &api.JobError{Code: CodeCancelled, Message: msg}})
	case errors.Is(out.cause, ErrStopping):
		// Hand the job back now: another worker starts it without waiting for its lease.
		_ = a.msg.Nak()
		a.log.Info("job handed back on shutdown")
	default:
		a.failed(out)
	}
}

// failed settles a failed attempt: the end of the job, or its next attempt scheduled for after the
// backoff, which frees this attempt's consumer slot (a retry waiting out its backoff holds none).
func (a *attempt) failed(out outcome) {
	code, final := CodeAttemptFailed, a.number >= a.max
	if errors.Is(out.cause, ErrTimeout) {
		code = CodeTimeout
		out.err = fmt.Errorf("attempt %d ran past its timeout of %s: %w", a.number, a.timeout(), out.err)
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
	delay := a.r.backoff(a.number)
	if ra, ok := errorsAs[*RetryAfterError](out.err); ok && ra.After > delay {
		delay = ra.After
	}
	retryAt := time.Now().Add(delay).UTC()
	ev := a.em.event(streams.Event{Type: streams.EventFailed, Error: &api.JobError{Code: code, Message: out.err.Error()}, RetryAt: &retryAt})
	if err := a.publish(ev); err != nil {
		a.log.Warn("publish failed attempt, retrying", "err", err)
		_ = a.msg.NakWithDelay(time.Second)
		return
	}
	a.r.w.metrics.retried.WithLabelValues(a.r.def.name).Inc()
	a.log.Info("job attempt failed, will retry", "err", out.err, "retry_in", delay)
	testPause("failed", a)
	a.reschedule(retryAt)
}

// reschedule queues the job's next attempt for at and acks this message. If the retry cannot be
// queued the message is handed back for then instead (it then holds its slot while it waits).
func (a *attempt) reschedule(at time.Time) {
	next := a.job
	next.Attempts = a.number
	if at.Before(time.Now()) {
		at = time.Now()
	}
	if err := a.retry(func(ctx context.Context) error { return streams.ScheduleRetry(ctx, a.r.w.js, next, at, time.Now()) }); err != nil {
		a.log.Warn("schedule retry, handing the job back instead", "err", err)
		_ = a.msg.NakWithDelay(time.Until(at))
		return
	}
	testPause("rescheduled", a)
	if err := a.msg.Ack(); err != nil {
		a.log.Warn("ack job", "err", err)
	}
}

// end stores a terminal event and acks the message; if the event cannot be stored the job is handed
// back for a retry in a second. It reports whether the job ended.
func (a *attempt) end(ev streams.Event, opts ...jetstream.PublishOpt) bool {
	ev = a.em.event(ev)
	if err := a.publish(ev, opts...); err != nil {
		if !streams.IsWrongLastSequence(err) {
			a.log.Warn("publish "+string(ev.Type)+", retrying", "err", err)
		}
		_ = a.msg.NakWithDelay(time.Second)
		return false
	}
	testPause("ended", a)
	// A plain ack: if it is lost, the job is redelivered after its lease and the worker that gets it
	// sees the terminal event, so nothing runs twice.
	if err := a.msg.Ack(); err != nil {
		a.log.Warn("ack job", "err", err)
	}
	state := api.StateCompleted
	switch {
	case ev.Type == streams.EventCancelled:
		state = api.StateCancelled
	case ev.Type == streams.EventFailed:
		state = api.StateFailed
	}
	a.r.w.metrics.finished.WithLabelValues(a.r.def.name, string(state)).Inc()
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
	streams.InjectTrace(a.traceContext(), dead)
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
	if a.end(streams.Event{Type: streams.EventFailed, Error: jerr, Final: true}) {
		a.log.Info("job failed", "code", jerr.Code, "reason", jerr.Message)
	}
}

// publish stores an event of the job in hand (see retry).
func (a *attempt) publish(ev streams.Event, opts ...jetstream.PublishOpt) error {
	err := a.retry(func(ctx context.Context) error {
		_, err := streams.PublishEvent(ctx, a.r.w.js, ev, a.job.Requeued, opts...)
		return err
	})
	if err == nil && endsAttempt(ev.Type) {
		a.outcome, a.code = string(ev.Type), ""
		if ev.Error != nil {
			a.code = ev.Error.Code
		}
	}
	return err
}

// endsAttempt reports whether an event of type t is an attempt's outcome (its span's jobwire.outcome).
func endsAttempt(t streams.EventType) bool {
	return t == streams.EventCompleted || t == streams.EventFailed || t == streams.EventCancelled
}

// retry runs a write for the job in hand for up to a minute, renewing its lease between tries: during a
// NATS leader election writes fail for a few seconds, and handing the job back instead would count as
// one more attempt.
func (a *attempt) retry(op func(context.Context) error) error {
	return streams.Retry{Wait: 100 * time.Millisecond, For: time.Minute, Timeout: 10 * time.Second,
		OnRetry: func(error, time.Duration) { _ = a.msg.InProgress() }}.Do(a.traceContext(), op)
}
