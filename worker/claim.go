package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// attempt is one delivery of a job that this worker handles.
type attempt struct {
	r      *runner
	msg    jetstream.Msg
	job    streams.JobMessage
	number int // the attempt's number: attempts made before this message + its delivery count
	max    int // the job's attempts: its own limit, at most the type's
	log    *slog.Logger
	em     *emitter
	ctx    context.Context
	cancel context.CancelCauseFunc
	// trace carries the attempt's span (startAttemptSpan) for its writes; outcome and code are what
	// its last lifecycle event said, for the span.
	trace         context.Context
	span          trace.Span
	outcome, code string
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
	a.cancel(nil)
	a.endAttemptSpan()
}

// verdict is what claim decides to do with a delivery, from the job's last event.
type verdict int

const (
	runIt        verdict = iota
	skipIt               // the job ended, or this message is stale: ack it
	cancelIt             // a cancel request is waiting for this job: end it cancelled
	rescheduleIt         // the message came back before the retry time of a failed attempt
	exhaustIt            // every attempt is spent: fail the job
)

// claimTries bounds how often claim reads the job again after another writer moved it on.
const claimTries = 5

// claim decides whether the delivery is to run and, if so, records its start with job.started, written
// only if the job's last event is still the one the decision was made on. It settles the message itself
// and returns nil when there is nothing to run.
func (r *runner) claim(msg jetstream.Msg) (claimed *attempt) {
	a := r.newAttempt(msg)
	if a == nil {
		return nil
	}
	defer func() {
		if claimed == nil && a.span != nil { // started, then lost to another writer: the span ends here
			a.endAttemptSpan()
		}
	}()
	ticketed := false
	for range claimTries {
		last, ok := a.lastEvent()
		if !ok {
			return nil
		}
		switch a.decide(last) {
		case skipIt:
			_ = msg.Ack()
			return nil
		case cancelIt:
			a.end(streams.Event{Type: streams.EventCancelled, Error: &api.JobError{Code: CodeCancelled, Message: "cancelled while it was not running"}},
				jetstream.WithExpectLastSequencePerSubject(last.Seq))
			return nil
		case rescheduleIt:
			a.reschedule(*last.RetryAt)
			return nil
		case exhaustIt:
			// Every earlier delivery ended without a verdict: the job crashed or hung its worker each time.
			a.fail(&api.JobError{Code: CodeAttemptsExhausted, Message: fmt.Sprintf("the job stopped its worker on every attempt (%d)", a.number-1)})
			return nil
		}
		if !ticketed {
			ok, waited := a.waitForTicket()
			if !ok {
				return nil
			}
			ticketed = true
			if waited {
				continue // the job may have moved on meanwhile: decide again on its last event
			}
		}
		testPause("claimed", a)
		if a.span == nil {
			a.startAttemptSpan(msg)
		}
		// Listen for this job's cancellation before anyone can see it started: a cancel request that
		// follows the started event always finds the job here.
		r.w.track(a)
		err := a.publish(a.em.event(streams.Event{Type: streams.EventStarted, Worker: r.w.cfg.Name}),
			jetstream.WithExpectLastSequencePerSubject(last.Seq))
		if err == nil {
			testPause("started", a)
			return a
		}
		r.w.untrack(a)
		if !streams.IsWrongLastSequence(err) {
			a.log.Warn("publish started, retrying", "err", err)
			break
		}
	}
	_ = msg.NakWithDelay(time.Second)
	return nil
}

// newAttempt decodes the delivery; a message that is not a job is dead-lettered (nil).
func (r *runner) newAttempt(msg jetstream.Msg) *attempt {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error("job message without metadata terminated", "err", err)
		_ = msg.Term()
		return nil
	}
	var jm streams.JobMessage
	if err := decodeJobMessage(msg.Data(), &jm, r.def.name); err != nil {
		r.deadLetterMalformed(msg, meta.Sequence.Stream, err)
		return nil
	}
	number := jm.Attempts + int(meta.NumDelivered)
	a := &attempt{r: r, msg: msg, job: jm, number: number, max: r.opts.MaxAttempts, log: r.log.With("job", jm.JobID, "attempt", number)}
	if jm.MaxAttempts > 0 {
		a.max = min(jm.MaxAttempts, a.max)
	}
	a.ctx, a.cancel = context.WithCancelCause(context.Background())
	a.em = &emitter{js: r.w.js, job: jm, attempt: number, interval: r.opts.ProgressInterval, onSend: r.progressSent(a), lastSend: time.Now()}
	return a
}

// decodeJobMessage decodes a job message of jobType, saying what is wrong with one that is not.
func decodeJobMessage(data []byte, jm *streams.JobMessage, jobType string) error {
	if err := json.Unmarshal(data, jm); err != nil {
		return fmt.Errorf("not a JSON job message: %w", err)
	}
	if err := jm.Validate(); err != nil {
		return err
	}
	if jm.Type != jobType {
		return fmt.Errorf("job type %q queued for %q", jm.Type, jobType)
	}
	return nil
}

// deadLetterMalformed keeps a queued message that is not a job message in JOBS_DLQ with the reason,
// then terminates it: it never runs, and an operator can see what was queued and by whom. If the copy
// cannot be stored, the message is handed back to be tried again.
func (r *runner) deadLetterMalformed(msg jetstream.Msg, seq uint64, reason error) {
	dead := nats.NewMsg(streams.MalformedDeadLetterSubject(seq))
	dead.Data = msg.Data()
	dead.Header.Set(HeaderDeadError, CodeInvalidJobMessage+": "+reason.Error())
	dead.Header.Set(HeaderDeadQueueSubject, msg.Subject())
	dead.Header.Set(HeaderDeadQueueSeq, strconv.FormatUint(seq, 10))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.w.js.PublishMsg(ctx, dead, jetstream.WithMsgID("malformed:"+strconv.FormatUint(seq, 10))); err != nil {
		r.log.Warn("dead-letter a malformed job message, retrying", "seq", seq, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	r.log.Error("malformed job message dead-lettered", "seq", seq, "subject", msg.Subject(), "reason", reason)
	_ = msg.Term()
}

func (r *runner) progressSent(a *attempt) func(error) {
	return func(err error) {
		if err != nil {
			r.w.metrics.publishErrors.Inc()
			a.log.Warn("publish progress", "err", err)
			return
		}
		r.w.metrics.progressEvents.Inc()
	}
}

// lastEvent reads the job's last event. A job message without any event is a job whose submitted event
// was never stored: it is written now, from the message. ok is false when the message was handed back.
func (a *attempt) lastEvent() (streams.Event, bool) {
	for {
		var last streams.Event
		var found bool
		err := a.retry(func(ctx context.Context) (err error) {
			last, found, err = streams.LastEvent(ctx, a.r.w.events, a.job.Owner, a.job.JobID)
			if err != nil && found {
				err = nil // a malformed last event decides nothing: run
			}
			return err
		})
		if err == nil && found {
			return last, true
		}
		if err == nil {
			meta, _ := a.msg.Metadata()
			err = a.publish(a.job.SubmittedEvent(meta.Sequence.Stream), jetstream.WithExpectLastSequencePerSubject(0))
			if err == nil || streams.IsWrongLastSequence(err) {
				continue
			}
		}
		a.log.Warn("read job events, retrying", "err", err)
		_ = a.msg.NakWithDelay(time.Second)
		return streams.Event{}, false
	}
}

// decide is claim's verdict on the delivery given the job's last event.
func (a *attempt) decide(last streams.Event) verdict {
	running := last.Type == streams.EventStarted || last.Type == streams.EventProgress || last.Type == streams.EventFailed
	switch {
	case last.Terminal():
		return skipIt
	case running && last.Attempt >= a.number:
		return skipIt // a stale copy of a message whose attempt already ran
	case last.Type == streams.EventFailed && last.RetryAt != nil && last.RetryAt.After(time.Now().Add(time.Second)):
		return rescheduleIt
	case running && a.cancelRequested():
		return cancelIt
	case a.number > a.max:
		return exhaustIt
	}
	return runIt
}

// cancelRequested reports whether JOB_CANCELS holds a cancel request for this run of the job.
func (a *attempt) cancelRequested() bool {
	var yes bool
	err := a.retry(func(ctx context.Context) (err error) {
		yes, err = streams.CancelRequested(ctx, a.r.w.cancels, a.job.Owner, a.job.JobID, a.job.SinceSeq)
		return err
	})
	if err != nil {
		a.log.Warn("read cancel request", "err", err)
	}
	return yes
}
