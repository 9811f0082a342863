package runner

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

// Headers on dead letters.
const (
	HeaderDeadJobID    = "Jobwire-Job-Id"
	HeaderDeadOwner    = "Jobwire-Owner"
	HeaderDeadError    = "Jobwire-Error"
	HeaderDeadAttempts = "Jobwire-Attempts"
)

// process runs one delivery of a job and settles its message: Ack after a terminal event is stored,
// NakWithDelay for a retry, Nak when the worker shuts down, Term for a message that is not a job.
func (r *Runner) process(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error("job message without metadata", "err", err)
		_ = msg.Term()
		return
	}
	var jm streams.JobMessage
	if err := json.Unmarshal(msg.Data(), &jm); err != nil || jm.Validate() != nil || jm.Type != r.cfg.JobType {
		r.log.Error("malformed job message terminated", "seq", meta.Sequence.Stream, "err", errors.Join(err, jm.Validate()))
		_ = msg.Term()
		return
	}
	attempt := int(meta.NumDelivered)
	log := r.log.With("job", jm.JobID, "attempt", attempt)
	em := newEmitter(r, jm, attempt)
	ctx, cancelIO := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelIO()

	// A job can end while its message waits: cancelled while queued, or finished by an attempt whose
	// ack was lost. Its last event says so; then there is nothing to run. A first delivery proves the
	// opposite with its started event instead (see startedOpts), saving a round trip.
	fast := attempt == 1 && jm.EventSeq != 0 && jm.Requeued == 0
	if !fast {
		if ended, err := r.ended(ctx, jm); err != nil {
			log.Warn("read job events, retrying", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		} else if ended {
			_ = msg.Ack()
			return
		}
	}
	if attempt > r.cfg.MaxAttempts {
		// Every earlier delivery ended without a verdict: the job crashed or hung its worker each time.
		r.fail(ctx, msg, em, &api.JobError{Code: "attempts_exhausted",
			Message: fmt.Sprintf("the job stopped its worker on every attempt (%d)", attempt-1)}, log)
		return
	}
	// Listen for this job's cancellation before anyone can see it started: a cancel request that
	// follows the started event always finds the job here.
	jobCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	key := jm.Owner + "." + jm.JobID
	r.mu.Lock()
	r.active[key] = &activeJob{cancel: cancel}
	r.mu.Unlock()
	started := streams.Event{Type: streams.EventStarted, Worker: r.cfg.Name}
	if fast {
		err = r.publishHard(msg, func(ctx context.Context) error {
			return em.publish(ctx, started, jetstream.WithExpectLastSequencePerSubject(jm.EventSeq))
		})
		if isWrongLastSequence(err) {
			// Something was written for the job since it was submitted: look before running it.
			var ended bool
			if ended, err = r.ended(ctx, jm); err == nil && ended {
				r.mu.Lock()
				delete(r.active, key)
				r.mu.Unlock()
				_ = msg.Ack()
				return
			}
			if err == nil {
				err = r.publishHard(msg, func(ctx context.Context) error { return em.publish(ctx, started) })
			}
		}
	} else {
		err = r.publishHard(msg, func(ctx context.Context) error { return em.publish(ctx, started) })
	}
	if err != nil {
		r.mu.Lock()
		delete(r.active, key)
		r.mu.Unlock()
		log.Warn("publish started, retrying", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	r.metrics.started.WithLabelValues(jm.Type).Inc()
	begin := time.Now()
	stopLease := r.keepLease(msg)
	r.metrics.running.Inc()
	result, runErr := r.run(jobCtx, jm, attempt, em.progress)
	r.metrics.running.Dec()
	stopLease()
	r.mu.Lock()
	delete(r.active, key)
	r.mu.Unlock()
	em.stop()

	cause := context.Cause(jobCtx)
	ctx, cancelIO2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelIO2()
	switch {
	case runErr == nil:
		if err := r.publishHard(msg, func(ctx context.Context) error {
			return em.publish(ctx, streams.Event{Type: streams.EventCompleted, Result: result})
		}); err != nil {
			log.Warn("publish completed, retrying", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		r.metrics.finished.WithLabelValues(jm.Type, "completed").Inc()
		r.metrics.duration.WithLabelValues(jm.Type).Observe(time.Since(begin).Seconds())
		r.ack(ctx, msg, log)
	case errors.Is(cause, errCancelled):
		if err := r.publishHard(msg, func(ctx context.Context) error {
			return em.publish(ctx, streams.Event{Type: streams.EventCancelled, Result: result,
				Error: &api.JobError{Code: "cancelled", Message: "cancelled while running"}})
		}); err != nil {
			log.Warn("publish cancelled, retrying", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		r.metrics.finished.WithLabelValues(jm.Type, "cancelled").Inc()
		r.ack(ctx, msg, log)
	case errors.Is(cause, errShutdown):
		// Hand the job back now: another worker starts it without waiting for AckWait.
		_ = msg.Nak()
		log.Info("job handed back on shutdown")
	default:
		code, permanent := isPermanent(runErr)
		if permanent || attempt >= r.cfg.MaxAttempts {
			if code == "" {
				code = "attempts_exhausted"
			}
			r.fail(ctx, msg, em, jobError(code, runErr), log)
			return
		}
		delay := backoff(r.cfg, attempt)
		var ra *RetryAfterError
		if errors.As(runErr, &ra) && ra.After > delay {
			delay = ra.After
		}
		retryAt := time.Now().Add(delay).UTC()
		if err := em.publish(ctx, streams.Event{Type: streams.EventFailed, Error: jobError("attempt_failed", runErr), RetryAt: &retryAt}); err != nil {
			log.Warn("publish failed attempt", "err", err)
		}
		r.metrics.retried.WithLabelValues(jm.Type).Inc()
		log.Info("job attempt failed, will retry", "err", runErr, "retry_in", delay)
		_ = msg.NakWithDelay(delay)
	}
}

// run calls the handler, turning a panic into an error so one bad job cannot kill the worker.
func (r *Runner) run(ctx context.Context, jm streams.JobMessage, attempt int, progress ProgressFunc) (res json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return r.handler.Run(ctx, Job{ID: jm.JobID, Type: jm.Type, Owner: jm.Owner, Input: jm.Input, Attempt: attempt}, progress)
}

// fail ends the job as failed for good, keeps its message in JOBS_DLQ and acks it.
func (r *Runner) fail(ctx context.Context, msg jetstream.Msg, em *emitter, jerr *api.JobError, log *slog.Logger) {
	dead := nats.NewMsg(streams.DeadLetterSubject(em.job.Owner, em.job.JobID))
	dead.Data = msg.Data()
	dead.Header.Set(HeaderDeadJobID, em.job.JobID)
	dead.Header.Set(HeaderDeadOwner, em.job.Owner)
	dead.Header.Set(HeaderDeadError, jerr.Code+": "+jerr.Message)
	dead.Header.Set(HeaderDeadAttempts, strconv.Itoa(em.attempt))
	if _, err := r.js.PublishMsg(ctx, dead, jetstream.WithMsgID(em.job.JobID+":dlq:"+strconv.Itoa(em.job.Requeued)+":"+strconv.Itoa(em.attempt))); err != nil {
		log.Warn("dead-letter job, retrying", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if err := em.publish(ctx, streams.Event{Type: streams.EventFailed, Error: jerr, Final: true}); err != nil {
		log.Warn("publish failed, retrying", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	r.metrics.finished.WithLabelValues(em.job.Type, "failed").Inc()
	log.Info("job failed", "code", jerr.Code, "reason", jerr.Message)
	_ = msg.Ack()
}

// publishHard publishes an event of a job in hand, retrying with backoff for up to a minute while
// keeping the job's lease: during a NATS leader election a publish fails for a few seconds, and handing
// the job back instead (Nak) would count as one more attempt.
func (r *Runner) publishHard(msg jetstream.Msg, publish func(context.Context) error) error {
	wait := 100 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := publish(ctx)
		cancel()
		if err == nil || isWrongLastSequence(err) || time.Now().After(deadline) {
			return err
		}
		_ = msg.InProgress()
		time.Sleep(wait)
		wait = min(wait*2, 5*time.Second)
	}
}

func (r *Runner) ack(_ context.Context, msg jetstream.Msg, log *slog.Logger) {
	// A plain ack: if it is lost, the job is redelivered after AckWait and ended() sees its terminal
	// event, so nothing runs twice.
	if err := msg.Ack(); err != nil {
		log.Warn("ack job", "err", err)
	}
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// ended reports whether the job's last event is terminal.
func (r *Runner) ended(ctx context.Context, jm streams.JobMessage) (bool, error) {
	m, err := r.events.GetLastMsgForSubject(ctx, streams.EventSubject(jm.Owner, jm.JobID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ev, err := streams.DecodeEvent(m.Data, m.Sequence)
	if err != nil {
		return false, nil
	}
	return ev.Terminal(), nil
}

// keepLease tells the server the job is still being worked on, well inside AckWait, until stopped.
func (r *Runner) keepLease(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(r.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
