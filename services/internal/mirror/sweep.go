package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// sweeper knows when the oldest finished job in Redis expires, so it sweeps exactly then: expiry is
// enforced when no further job finishes, and an idle mirror sends Redis nothing at all.
type sweeper struct {
	at   time.Time // when the next sweep is due
	idle bool      // no finished job is known to be in Redis: nothing is due
}

// note records that a finished job written now expires at t.
func (s *sweeper) note(t time.Time) {
	if s.idle || t.Before(s.at) {
		s.at, s.idle = t, false
	}
}

// soon makes a sweep due now (at start, and when Redis comes back: it may hold anything).
func (s *sweeper) soon(now time.Time) { s.at, s.idle = now, false }

// due reports whether a sweep should run now. A new sweeper is due at once.
func (s *sweeper) due(now time.Time) bool { return !s.idle && !now.Before(s.at) }

// runSweep removes the finished jobs older than MaxAge, hash and set entry together in one script,
// and learns from its answer when the next one expires.
func (m *Mirror) runSweep(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	oldest, more, err := m.sweepOnce(ctx, now.Add(-m.cfg.MaxAge))
	if err != nil {
		m.log.Warn("mirror: sweep", "err", err)
		if serverDown(err) && m.health.up {
			m.markDown(err)
		}
		m.sweep.at = now.Add(m.retryMax)
		return
	}
	switch {
	case more:
		m.sweep.at = now // more than a batch expired: continue next tick
	case oldest < 0:
		m.sweep.idle = true
	default:
		m.sweep.at = time.UnixMilli(oldest).Add(m.cfg.MaxAge)
	}
}

// sweepOnce runs sweepScript with cutoff and returns the oldest remaining finishedOn (-1: none).
func (m *Mirror) sweepOnce(ctx context.Context, cutoff time.Time) (oldest int64, more bool, err error) {
	k := m.keys
	res, err := sweepScript.Run(ctx, m.rdb, []string{k.completed, k.failed},
		strconv.FormatInt(cutoff.UnixMilli(), 10), k.prefix, sweepLimit).Slice()
	if err != nil {
		return 0, false, fmt.Errorf("sweep script: %w", err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("sweep script: unexpected reply %v", res)
	}
	s, _ := res[0].(string)
	if oldest, err = strconv.ParseInt(s, 10, 64); err != nil {
		f, ferr := strconv.ParseFloat(s, 64) // a score Redis printed as a float
		if ferr != nil {
			return 0, false, fmt.Errorf("sweep script: oldest score %q: %w", s, err)
		}
		oldest = int64(f)
	}
	n, _ := res[1].(int64)
	return oldest, n == 1, nil
}

// rateWatch warns when the Redis command rate over a window exceeds the configured threshold.
type rateWatch struct {
	start time.Time
	base  uint64
}

func (r *rateWatch) check(now time.Time, total uint64, window time.Duration, limit float64, log *slog.Logger) {
	if r.start.IsZero() {
		r.start, r.base = now, total
		return
	}
	elapsed := now.Sub(r.start)
	if elapsed < window {
		return
	}
	if rate := float64(total-r.base) / elapsed.Seconds(); rate > limit {
		log.Warn("mirror: redis command rate above the warning threshold",
			"commands_per_sec", rate, "threshold", limit, "window", elapsed)
	}
	r.start, r.base = now, total
}
