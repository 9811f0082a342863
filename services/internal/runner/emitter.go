package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// emitter publishes the events of one attempt of one job. Progress is coalesced: at most one event per
// ProgressInterval, published asynchronously; the latest value always reaches the log, at the latest
// with the terminal event, which carries the final progress.
type emitter struct {
	r       *Runner
	job     streams.JobMessage
	attempt int

	mu       sync.Mutex
	last     *api.Progress // latest value reported by the handler
	sent     *api.Progress // latest value published
	lastSend time.Time
	timer    *time.Timer
	n        int // progress events published
	stopped  bool
}

func newEmitter(r *Runner, job streams.JobMessage, attempt int) *emitter {
	return &emitter{r: r, job: job, attempt: attempt}
}

// progress is the ProgressFunc handed to the handler.
func (e *emitter) progress(done, total int, message string) {
	p := api.NewProgress(done, total, message)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	e.last = &p
	if wait := e.r.cfg.ProgressInterval - time.Since(e.lastSend); wait > 0 {
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
	m, err := e.msg(ev)
	if err != nil {
		return
	}
	_, err = e.r.js.PublishMsgAsync(m, jetstream.WithMsgID(ev.MsgID(e.job.Requeued, e.n)))
	if err != nil {
		e.r.log.Warn("publish progress", "job", e.job.JobID, "err", err)
		return
	}
	e.r.metrics.progressEvents.Inc()
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

// publish stores a lifecycle event synchronously. Terminal events carry the latest progress.
func (e *emitter) publish(ctx context.Context, ev streams.Event, opts ...jetstream.PublishOpt) error {
	e.mu.Lock()
	if ev.Type != streams.EventStarted && ev.Progress == nil && e.last != nil {
		ev.Progress = e.last
	}
	e.mu.Unlock()
	ev = e.event(ev)
	m, err := e.msg(ev)
	if err != nil {
		return err
	}
	opts = append(opts, jetstream.WithMsgID(ev.MsgID(e.job.Requeued, 0)))
	if _, err := e.r.js.PublishMsg(ctx, m, opts...); err != nil {
		return fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return nil
}

func (e *emitter) event(ev streams.Event) streams.Event {
	ev.V = streams.EventVersion
	ev.JobID, ev.JobType, ev.Owner, ev.Attempt = e.job.JobID, e.job.Type, e.job.Owner, e.attempt
	ev.At = time.Now().UTC()
	return ev
}

func (e *emitter) msg(ev streams.Event) (*nats.Msg, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ev.Type, err)
	}
	m := nats.NewMsg(ev.Subject())
	m.Data = data
	m.Header.Set(streams.HeaderEventType, string(ev.Type))
	return m, nil
}
