package gateway

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/relay"
	"github.com/jobwire/jobwire/services/internal/sse"
)

// resetFrame tells a resuming client that its position cannot be resumed: a fresh snapshot follows.
var resetFrame = sse.AppendEvent(nil, "", "reset", []byte(`{"reason":"history_gone"}`))

// lastEventID reads the resume position from Last-Event-ID or ?lastEventId= (browsers send the header
// only on automatic reconnects). Anything that is not a revision number is ignored.
func lastEventID(c *fiber.Ctx) uint64 {
	s := c.Get("Last-Event-ID")
	if s == "" {
		s = c.Query("lastEventId")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// openStream checks the limits and prepares a stream for the caller; the returned release must run
// if the stream is not attached.
func (g *Gateway) openStream(c *fiber.Ctx, flavor sse.Flavor, jobScoped bool, job string) (*sse.Conn, func(), error) {
	id := identity(c)
	if err := g.limits.acquire(id.Owner); err != nil {
		if api.IsCode(err, api.CodeTooManyStreams) {
			retryAfter(c, 5)
		} else {
			retryAfter(c, 2)
		}
		return nil, nil, err
	}
	var (
		unsub func()
		once  sync.Once
	)
	// A stream ends with "event: expired" when the token that opened it expires, whatever its scope.
	expiry := id.ExpiresAt
	var conn *sse.Conn
	release := func(reason string, d time.Duration) {
		once.Do(func() {
			if unsub != nil {
				unsub()
			}
			g.limits.release(id.Owner)
			if reason != "" {
				g.log.Info("stream closed", "user", id.Owner, "job", job, "reason", reason, "duration", d.Round(time.Millisecond))
			}
		})
	}
	conn = g.pool.NewConn(flavor, jobScoped, expiry, release)
	setUnsub := func(u func()) { unsub = u }
	if jobScoped {
		setUnsub(g.hub.SubscribeJob(id.Owner, job, conn))
	} else {
		setUnsub(g.hub.SubscribeOwner(id.Owner, conn))
	}
	return conn, func() { release("", 0) }, nil
}

// attach hands the connection to the stream pool once the handler returns (no response is written by
// fasthttp); from then on the stream costs no goroutine while idle.
func (g *Gateway) attach(c *fiber.Ctx, conn *sse.Conn, job string) error {
	id := identity(c)
	head := sse.Header(g.streamCORS(c))
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(func(nc net.Conn) {
		if err := g.pool.Attach(conn, nc, head); err == nil {
			g.log.Info("stream opened", "user", id.Owner, "job", job, "remote", nc.RemoteAddr().String())
		}
	})
	return nil
}

// streamJob serves GET /v1/jobs/{id}/events and the legacy /library/sync/{id}/progress: the current
// state first, then every change, ending after the terminal state.
func (g *Gateway) streamJob(flavor sse.Flavor) fiber.Handler {
	return func(c *fiber.Ctx) error {
		job, err := jobID(c)
		if err != nil {
			return err
		}
		id := identity(c)
		if id.JobID != "" && id.JobID != job {
			return errJobNotFound
		}
		conn, release, err := g.openStream(c, flavor, true, job)
		if err != nil {
			return err
		}
		// Subscribed first, read second: a change between the two is not lost, and Offer keeps the newest.
		ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
		defer cancel()
		st, err := g.store.Get(ctx, id.Owner, job)
		if err != nil {
			release()
			return err
		}
		last := lastEventID(c)
		fromLog := st.Revision == 0 // folded from JOB_EVENTS: the KV state is not there (yet, or any more)
		if fromLog {
			st.Revision = g.hub.LastRevision()
		}
		switch {
		case last == 0:
		case last > max(g.hub.LastRevision(), st.Revision) || (fromLog && st.State.Terminal()):
			// The client's position is unknown here (another bucket, or the state expired): start over.
			conn.Control(resetFrame)
		case last >= st.Revision && st.State.Terminal():
			release()
			return c.SendStatus(fiber.StatusNoContent) // stops the EventSource's reconnect loop
		default:
			conn.MarkSent(job, last)
		}
		if st.Revision > 0 {
			conn.Offer(relay.StateMessage(&st, time.Time{}))
		}
		return g.attach(c, conn, job)
	}
}

// streamOwner serves GET /v1/events: every job of the caller over one connection.
func (g *Gateway) streamOwner(c *fiber.Ctx) error {
	id := identity(c)
	if id.JobID != "" {
		return api.Errorf(api.CodeForbidden, "this stream token is limited to one job")
	}
	conn, _, err := g.openStream(c, sse.FlavorV1, false, "")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	refs := g.ownerRefs(conn, id.Owner, lastEventID(c))
	for _, r := range refs {
		st, err := g.store.Get(ctx, id.Owner, r.ID)
		if err != nil {
			continue // removed meanwhile: the hub tells the stream
		}
		conn.Offer(relay.StateMessage(&st, time.Time{}))
	}
	return g.attach(c, conn, "")
}

// ownerRefs are the jobs a multiplexed stream starts with. Without a position: the SnapshotJobs newest.
// Resuming after revision last: every job of the owner changed since, oldest change first (so a stream
// cut half-way resumes where it was), and the removals since; when the position cannot be resumed here,
// or more than MaxResumeJobs changed, a reset and the snapshot instead.
func (g *Gateway) ownerRefs(conn *sse.Conn, owner string, last uint64) []relay.JobRef {
	if last == 0 {
		return g.hub.OwnerJobs(owner, g.cfg.SnapshotJobs)
	}
	removed, ok := g.hub.RemovedSince(owner, last)
	var changed []relay.JobRef
	if ok {
		changed = g.hub.ChangedSince(owner, last)
	}
	if !ok || len(changed) > g.cfg.MaxResumeJobs {
		conn.Control(resetFrame)
		return g.hub.OwnerJobs(owner, g.cfg.SnapshotJobs)
	}
	for _, r := range removed {
		conn.Offer(relay.RemovedMessage(r.JobID, r.Revision, time.Time{}))
	}
	return changed
}

// streamLimits counts open streams per user and in all, for this gateway process.
type streamLimits struct {
	perUser, total int
	mu             sync.Mutex
	byUser         map[string]int
	open           int
	refused        *prometheus.CounterVec
}

func newStreamLimits(perUser, total int, reg prometheus.Registerer) *streamLimits {
	l := &streamLimits{perUser: perUser, total: total, byUser: map[string]int{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_sse_streams_refused_total",
			Help: "Streams refused by a limit (user: per-user cap, global: gateway cap)."}, []string{"limit"})}
	if reg != nil {
		reg.MustRegister(l.refused)
	}
	return l
}

func (l *streamLimits) acquire(owner string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.total {
		l.refused.WithLabelValues("global").Inc()
		return api.Errorf(api.CodeServerBusy, "this gateway has reached its stream limit (%d), try another", l.total)
	}
	if l.byUser[owner] >= l.perUser {
		l.refused.WithLabelValues("user").Inc()
		return api.Errorf(api.CodeTooManyStreams, "too many open streams for this user (limit %d per gateway); close one or use GET /v1/events", l.perUser)
	}
	l.byUser[owner]++
	l.open++
	return nil
}

func (l *streamLimits) release(owner string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byUser[owner]--; l.byUser[owner] <= 0 {
		delete(l.byUser, owner)
	}
}
