package worker

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// emitter writes the events of one attempt of one job. Progress is coalesced: at most one event per
// interval, the first one interval after the attempt started (lastSend), published asynchronously; the
// latest value always reaches the log, at the latest with the terminal event, which carries the final
// progress. So a job that finishes within the interval writes no progress event at all.
type emitter struct {
	js       jetstream.JetStream
	job      streams.JobMessage
	attempt  int
	interval time.Duration
	onSend   func(err error)
	trace    context.Context // the attempt's span, for the events' trace headers; nil: none

	mu       sync.Mutex
	last     *api.Progress // latest value reported by the handler
	sent     *api.Progress // latest value published
	lastSend time.Time     // when the last progress event was sent, or the attempt started
	timer    *time.Timer
	n        int // progress events published
	stopped  bool
}

// Report is the Progress handed to the handler.
func (e *emitter) Report(done, total int, message string) {
	p := api.NewProgress(done, total, message)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	e.last = &p
	if wait := e.interval - time.Since(e.lastSend); wait > 0 {
		if e.timer == nil {
			e.timer = time.AfterFunc(wait, e.flushLatest)
		}
		return
	}
	e.sendLocked()
}

func (e *emitter) flushLatest() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.timer = nil
	if !e.stopped && e.last != nil && e.last != e.sent {
		e.sendLocked()
	}
}

func (e *emitter) sendLocked() {
	e.n++
	e.lastSend = time.Now()
	e.sent = e.last
	ev := e.event(streams.Event{Type: streams.EventProgress, Progress: e.last})
	m, err := ev.Msg()
	if err == nil {
		if e.trace != nil {
			streams.InjectTrace(e.trace, m)
		}
		_, err = e.js.PublishMsgAsync(m, jetstream.WithMsgID(ev.MsgID(e.job.Requeued, e.n)))
	}
	e.onSend(err)
}

// stop ends progress reporting. It does not wait for the last progress event's ack: publishes of one
// connection to one stream are stored in order, so the terminal event that follows comes after it in
// the log, and it carries the final progress anyway.
func (e *emitter) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

// event fills in the envelope of an event of this attempt; lifecycle events after the start carry the
// latest progress.
func (e *emitter) event(ev streams.Event) streams.Event {
	ev.V = streams.EventVersion
	ev.JobID, ev.JobType, ev.Owner, ev.Attempt = e.job.JobID, e.job.Type, e.job.Owner, e.attempt
	ev.At = time.Now().UTC()
	if ev.Type != streams.EventStarted && ev.Type != streams.EventProgress && ev.Progress == nil {
		e.mu.Lock()
		ev.Progress = e.last
		e.mu.Unlock()
	}
	return ev
}
