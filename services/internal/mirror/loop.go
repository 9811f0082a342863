package mirror

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/streams"
)

// run is the mirror's one goroutine with state: it folds messages into the cache, writes on the
// ticker (coalescing) or at once (terminal states), sweeps, and stops. Only it touches the cache, the
// health and the sweeper, so none of them needs a lock.
func (m *Mirror) run(cc jetstream.ConsumeContext) {
	defer close(m.done)
	ctx := context.Background()
	ticker := time.NewTicker(m.cfg.ProgressInterval)
	defer ticker.Stop()
	quit := m.quit
	closed := cc.Closed()
	var drainTimeout <-chan time.Time
	stopped := false // the drain took too long and the consumer was stopped
	for {
		select {
		case <-quit:
			quit = nil
			if cc == nil {
				m.shutdown(ctx)
				return
			}
			wait := drainWait
			if nc := m.js.Conn(); nc != nil && !nc.IsConnected() {
				// A drain needs the server; without it only Stop can end the consumer.
				stopped, wait = true, stopWait
				cc.Stop()
			} else {
				cc.Drain() // buffered messages are still handled below
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			drainTimeout = t.C
		case <-drainTimeout:
			if stopped {
				// Not even Stop closed it (it can wait for a server that is gone): leave anyway. The
				// messages not acked come back to the next mirror after AckWait.
				m.shutdown(ctx)
				return
			}
			stopped = true
			cc.Stop()
			drainTimeout = time.After(stopWait)
		case <-closed:
			if quit == nil {
				m.shutdown(ctx)
				return
			}
			// The consumer went away underneath us (deleted by an operator, say): re-create it.
			m.log.Error("mirror: consumer stopped unexpectedly; re-creating it", "consumer", streams.ConsumerMirror)
			cc, closed = nil, nil
			m.resubAt = m.now().Add(time.Second)
		case msg := <-m.msgs:
			m.handle(ctx, msg)
		case <-ticker.C:
			m.tick(ctx)
			if cc == nil && !m.now().Before(m.resubAt) {
				if cc = m.resubscribe(ctx); cc != nil {
					closed = cc.Closed()
				}
			}
		}
	}
}

// resubscribe re-creates the consumer and consumes it again, or returns nil and retries later.
func (m *Mirror) resubscribe(ctx context.Context) jetstream.ConsumeContext {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	c, err := m.ensureConsumer(ctx)
	if err == nil {
		var cc jetstream.ConsumeContext
		if cc, err = m.consume(c); err == nil {
			m.log.Info("mirror: consuming again", "consumer", streams.ConsumerMirror)
			return cc
		}
	}
	m.log.Error("mirror: re-create consumer", "err", err)
	m.resubAt = m.now().Add(m.retryMax)
	return nil
}

// handle folds one message into its job's entry and decides when it is acked:
//   - an event that changes nothing Redis shows (a duplicate, a late progress after the end) is acked
//     at once;
//   - any other event is held until a write that covers it succeeds, then acked; a terminal state is
//     written at once, anything else on the next tick (at most one write per job per interval);
//   - when a write fails, or Redis is known to be down, the held events are nakked with a backoff
//     delay and come back later. No event is acked before Redis holds its effect, except a progress
//     event superseded by a newer one of the same job (see entry.hold).
func (m *Mirror) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		m.log.Error("mirror: message without JetStream metadata", "subject", msg.Subject(), "err", err)
		m.term(msg, "no metadata")
		return
	}
	ev, err := streams.DecodeEvent(msg.Data(), meta.Sequence.Stream)
	if err != nil {
		// Permanent: redelivering it would give the same error. Terminating it skips the event.
		m.log.Error("mirror: dropping an event that does not decode", "seq", meta.Sequence.Stream, "err", err)
		m.term(msg, "undecodable event")
		return
	}
	e := m.cache.get(ev.JobID)
	changed := streams.Apply(&e.state, ev)
	if changed && ev.Type == streams.EventSubmitted {
		e.named = true
	}
	if ev.Type == streams.EventRequeued && ev.Seq > e.written {
		// Redis may hold the finished run even when the cache did not know it (after a restart), in
		// which case Apply ignores the requeue: clear it either way with the next write.
		e.fresh = true
		if !changed && ev.Seq > e.state.EventSeq {
			e.state.EventSeq, changed = ev.Seq, true
		}
	}
	// A redelivery of an event folded earlier but not yet written (its write failed) still needs one.
	unwritten := ev.Seq <= e.state.EventSeq && ev.Seq > e.written
	if !changed && !unwritten {
		m.ack(msg)
		return
	}
	if old := e.hold(msg, ev.Seq, ev.Type == streams.EventProgress); old != nil {
		m.ack(old)
	}
	switch {
	case !m.health.up:
		m.nakHeld(e, m.health.delay)
	case e.state.State.Terminal():
		delete(m.cache.dirty, ev.JobID)
		e.dirty = false
		m.flush(ctx, []*entry{e})
	default:
		m.cache.markDirty(e)
	}
}

// tick runs once per ProgressInterval: it probes Redis while it is down, writes the coalesced
// changes, sweeps expired jobs when one is due and checks the command rate.
func (m *Mirror) tick(ctx context.Context) {
	now := m.now()
	if !m.health.up && !now.Before(m.health.next) {
		m.probe(ctx)
	}
	m.flush(ctx, m.cache.takeDirty())
	if m.health.up && m.sweep.due(now) {
		m.runSweep(ctx, now)
	}
	m.rate.check(now, m.met.total.Load(), m.rateWindow, m.cfg.WarnCommandsPerSec, m.log)
	if n := m.cache.evicted; n > m.evictedLogged {
		m.log.Warn("mirror: more unfinished jobs than the cache holds; idle ones were forgotten (their next "+
			"write lacks the fields only earlier events knew)", "evicted", n, "max", maxJobs)
		m.evictedLogged = n
	}
}

// shutdown writes what is pending, within opTimeout. Events it cannot write are nakked with no or a
// short delay, so the next mirror gets them soon.
func (m *Mirror) shutdown(ctx context.Context) {
	m.health.delay = 0
	m.flush(ctx, m.cache.takeDirty())
}

// ack acks msg; a lost ack only means a redelivery, which the write script skips.
func (m *Mirror) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		m.log.Debug("mirror: ack", "err", err)
	}
}

// term terminates a message that can never be mirrored.
func (m *Mirror) term(msg jetstream.Msg, reason string) {
	if err := msg.TermWithReason(reason); err != nil {
		m.log.Debug("mirror: term", "err", err)
	}
}

// nakHeld naks e's held messages with delay, so JetStream redelivers them then.
func (m *Mirror) nakHeld(e *entry, delay time.Duration) {
	for _, h := range e.takeHeld() {
		if err := h.msg.NakWithDelay(delay); err != nil {
			m.log.Debug("mirror: nak", "err", err)
		}
	}
}
