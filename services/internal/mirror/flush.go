package mirror

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// flushBatch is how many job writes go into one pipeline (one round trip). Each is still its own
// script call, so each job's writes stay atomic.
const flushBatch = 256

// flush writes the state of entries to Redis and acks or naks their held messages.
func (m *Mirror) flush(ctx context.Context, entries []*entry) {
	for len(entries) > 0 {
		n := min(len(entries), flushBatch)
		m.flushBatch(ctx, entries[:n])
		entries = entries[n:]
	}
}

func (m *Mirror) flushBatch(ctx context.Context, entries []*entry) {
	if !m.health.up {
		for _, e := range entries {
			m.nakHeld(e, m.health.delay)
		}
		return
	}
	now := m.now()
	ws := make([]write, 0, len(entries))
	es := make([]*entry, 0, len(entries))
	for _, e := range entries {
		w, err := buildWrite(e, m.keys, m.cfg.MaxAge, now)
		if err != nil { // cannot happen for a decoded event; never retry it
			m.log.Error("mirror: cannot build job write", "job", e.state.ID, "err", err)
			for _, h := range e.takeHeld() {
				m.term(h.msg, "unwritable job")
			}
			continue
		}
		ws, es = append(ws, w), append(es, e)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	results, errs := m.exec(ctx, ws)
	for i, e := range es {
		if errs[i] != nil {
			m.writeFailed(e, errs[i])
			continue
		}
		m.written(e, &ws[i], results[i])
	}
}

// exec runs the writes in one pipeline and returns each one's result (1 written, 0 skipped) or error.
// Scripts flushed from Redis (a restart, SCRIPT FLUSH) are loaded again and the writes retried once.
func (m *Mirror) exec(ctx context.Context, ws []write) ([]int64, []error) {
	results, errs := make([]int64, len(ws)), make([]error, len(ws))
	run := func(idx []int) {
		cmds := make([]*redis.Cmd, len(idx))
		_, _ = m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range idx {
				k, args := ws[i].scriptArgs(m.keys, m.cfg.MaxCount, m.cfg.EventsMaxLen)
				cmds[j] = writeScript.EvalSha(ctx, p, k, args...)
			}
			return nil
		}) // each command's own error is read below
		for j, i := range idx {
			results[i], errs[i] = cmds[j].Int64()
		}
	}
	all := make([]int, len(ws))
	for i := range all {
		all[i] = i
	}
	run(all)
	var again []int
	for i, err := range errs {
		if isNoScript(err) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		if err := writeScript.Load(ctx, m.rdb).Err(); err != nil {
			for _, i := range again {
				errs[i] = err
			}
			return results, errs
		}
		run(again)
	}
	return results, errs
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// written records a successful write and acks what it covers.
func (m *Mirror) written(e *entry, w *write, result int64) {
	e.written, e.writtenPercent, e.fresh = w.seq, w.percent, false
	if result == 0 {
		m.met.writes.WithLabelValues(writeSkipped).Inc()
	} else {
		m.met.writes.WithLabelValues(writeOK).Inc()
	}
	for _, h := range e.takeHeld() {
		m.ack(h.msg)
	}
	if w.mode == modeCompleted || w.mode == modeFailed {
		m.sweep.note(time.UnixMilli(w.finishedOn).Add(m.cfg.MaxAge))
	}
	if e.state.State.Terminal() {
		m.cache.finish(e)
	}
}

// writeFailed naks the held messages of e. When Redis itself is unreachable (or refuses all writes:
// loading, read-only, out of memory) the mirror stops writing until a probe succeeds; any other error
// concerns this job only and its events come back after a delay that grows with their deliveries.
func (m *Mirror) writeFailed(e *entry, err error) {
	m.met.writes.WithLabelValues(writeError).Inc()
	if serverDown(err) {
		if m.health.up { // the first failure of a batch; the others share its backoff
			m.markDown(err)
		}
		m.nakHeld(e, m.health.delay)
		return
	}
	m.log.Error("mirror: job write failed", "job", e.state.ID, "err", err)
	for _, h := range e.takeHeld() {
		delay := m.retryMax
		if meta, merr := h.msg.Metadata(); merr == nil {
			delay = backoff(m.retryMin, time.Minute, meta.NumDelivered)
		}
		if nerr := h.msg.NakWithDelay(delay); nerr != nil {
			m.log.Debug("mirror: nak", "err", nerr)
		}
	}
}

// serverDown reports whether err means Redis as a whole cannot take writes now, rather than that one
// write was wrong.
func serverDown(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) || errors.Is(err, context.DeadlineExceeded) {
		return true // network, timeout, closed pool: not a reply from Redis
	}
	return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) ||
		redis.IsOOMError(err) || redis.IsMaxClientsError(err) || redis.HasErrorPrefix(err, "BUSY")
}

// backoff is base doubled per earlier attempt, at most limit.
func backoff(base, limit time.Duration, attempt uint64) time.Duration {
	d := base
	for i := uint64(1); i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// health tracks whether Redis takes writes, and when to probe it again while it does not.
type health struct {
	up       bool
	delay    time.Duration // current backoff: the nak delay and the time to the next probe
	next     time.Time     // next probe
	min, max time.Duration
}

func (h *health) ok() { h.up, h.delay = true, 0 }

func (h *health) down(now time.Time) {
	if h.up || h.delay == 0 {
		h.delay = h.min
	} else {
		h.delay = min(2*h.delay, h.max)
	}
	h.up = false
	h.next = now.Add(h.delay)
}

// markDown notes that Redis failed: writes stop until a probe succeeds.
func (m *Mirror) markDown(err error) {
	wasUp := m.health.up || m.health.delay == 0
	m.health.down(m.now())
	m.met.up.Set(0)
	if msg := err.Error(); wasUp || msg != m.lastDown {
		m.log.Warn("mirror: redis unreachable; events wait in JetStream until it is back",
			"redis", m.redisURL, "err", err, "retry_in", m.health.delay)
		m.lastDown = msg
	}
}

// probe pings Redis while it is down. When it answers, writing resumes, and a sweep runs at once
// because Redis may have come back empty or with expired jobs.
func (m *Mirror) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := m.rdb.Ping(ctx).Err(); err != nil {
		m.markDown(err)
		return
	}
	m.health.ok()
	m.met.up.Set(1)
	m.lastDown = ""
	m.sweep.soon(m.now())
	m.loadScripts(ctx)
	m.log.Info("mirror: redis reachable again; catching up", "redis", m.redisURL)
}

// loadScripts loads both scripts into Redis's script cache (a restarted Redis has none), so the
// writes that follow do not fail with NOSCRIPT first. A failure here is harmless: exec and Run load
// them on NOSCRIPT.
func (m *Mirror) loadScripts(ctx context.Context) {
	_, err := m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ScriptLoad(ctx, writeSrc) // not Script.Load: in a pipeline it would store an empty digest
		p.ScriptLoad(ctx, sweepSrc)
		return nil
	})
	if err != nil {
		m.log.Debug("mirror: load scripts", "err", err)
	}
}
