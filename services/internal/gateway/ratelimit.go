package gateway

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/api"
)

// Rate is N events per Per. A negative N means no limit.
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate reads "10/s", "600/m", "1000/h" (a bare number means per second) or "off".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "off" || s == "none" || s == "unlimited" {
		return Rate{N: -1}, nil
	}
	num, unit, found := strings.Cut(s, "/")
	per := time.Second
	if found {
		switch unit {
		case "s", "sec", "second":
		case "m", "min", "minute":
			per = time.Minute
		case "h", "hour":
			per = time.Hour
		default:
			d, err := time.ParseDuration(unit)
			if err != nil || d <= 0 {
				return Rate{}, fmt.Errorf("rate %q: unit must be s, m, h or a duration", s)
			}
			per = d
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("rate %q: want a positive count such as 10/s, or off", s)
	}
	return Rate{N: n, Per: per}, nil
}

// String writes r the way ParseRate reads it: "10/s", "600/m", "5/2s" or "off".
func (r Rate) String() string {
	switch {
	case r.N < 0:
		return "off"
	case r.Per == time.Second:
		return fmt.Sprintf("%d/s", r.N)
	case r.Per == time.Minute:
		return fmt.Sprintf("%d/m", r.N)
	case r.Per == time.Hour:
		return fmt.Sprintf("%d/h", r.N)
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

// maxLimitedUsers bounds the users the submit limiter remembers. Past it, users whose bucket has
// refilled are forgotten first (forgetting them changes nothing), then arbitrary ones.
const maxLimitedUsers = 100_000

// submitLimiter is a token bucket per user, in memory, for this gateway process.
type submitLimiter struct {
	perSec  float64
	burst   float64
	max     int
	now     func() time.Time
	limited prometheus.Counter

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newSubmitLimiter returns nil when r turns the limit off.
func newSubmitLimiter(r Rate, burst int, reg prometheus.Registerer) *submitLimiter {
	if r.N < 0 || r.Per <= 0 {
		return nil
	}
	l := &submitLimiter{perSec: float64(r.N) / r.Per.Seconds(), burst: float64(burst), max: maxLimitedUsers,
		now: time.Now, buckets: map[string]*bucket{},
		limited: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_submits_rate_limited_total",
			Help: "Submissions refused by the per-user rate limit."})}
	if reg != nil {
		reg.MustRegister(l.limited)
	}
	return l
}

// allow takes n tokens from owner's bucket, or says how long until they are there. n must be at most
// the burst.
func (l *submitLimiter) allow(owner string, n int) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[owner]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evictLocked(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[owner] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.perSec)
	}
	b.last = now
	if want := float64(n); b.tokens >= want {
		b.tokens -= want
		return true, 0
	}
	l.limited.Inc()
	return false, time.Duration((float64(n) - b.tokens) / l.perSec * float64(time.Second))
}

// evictLocked forgets every user whose bucket is full by now, then, if that freed less than a tenth
// of the room, arbitrary users (map order) until it has.
func (l *submitLimiter) evictLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.perSec >= l.burst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.max-l.max/10 {
			break
		}
		delete(l.buckets, k)
	}
}

func (l *submitLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// limitSubmits answers 429 rate_limited with Retry-After when the caller submits faster than the
// configured rate. It runs after authenticate, so it counts per verified user.
func (g *Gateway) limitSubmits(c *fiber.Ctx) error {
	if err := g.takeSubmits(c, identity(c).Owner, 1); err != nil {
		return err
	}
	return c.Next()
}

// takeSubmits takes n submits from owner's allowance: 429 rate_limited with Retry-After when they are
// not there yet, 422 when n is more than the burst (a batch that can never pass).
func (g *Gateway) takeSubmits(c *fiber.Ctx, owner string, n int) error {
	if g.submits == nil {
		return nil
	}
	if n > g.cfg.SubmitBurst {
		return api.Errorf(api.CodeInvalidInput, "a batch of %d jobs is more than the per-user submit burst of %d: send smaller batches", n, g.cfg.SubmitBurst)
	}
	ok, wait := g.submits.allow(owner, n)
	if !ok {
		retryAfter(c, max(1, int(math.Ceil(wait.Seconds()))))
		return api.Errorf(api.CodeRateLimited, "too many submissions: at most %s with bursts of %d per user", g.cfg.SubmitRate, g.cfg.SubmitBurst)
	}
	return nil
}
