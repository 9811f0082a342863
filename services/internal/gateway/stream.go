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
var resetFrame = sse.AppendEvent(nil, "", api.EventReset, sse.Notice(api.ResetHistoryGone))

// lastEventID reads the resume position from Last-Event-ID or ?lastEventId= (browsers send the header
// only on automatic reconnects). Anything that is not a revision number is ignored.
func lastEventID(c *fiber.Ctx) uint64 {
	s := c.Get(api.HeaderLastEventID)
	if s == "" {
		s = c.Query(api.QueryLastEventID)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// openStream checks the limits and prepares a stream for the caller, fed by what subscribe subscribes
// it to; the returned release must run if the stream is not attached. endOnLast ends the stream after
// a terminal message (job streams).
func (g *Gateway) openStream(c *fiber.Ctx, flavor sse.Flavor, endOnLast bool, job string, subscribe func(relay.Subscriber) func()) (*sse.Conn, func(), error) {
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
	// A stream ends with "event: expired" when the token that opened it expires, whatever its scope.
	conn := g.pool.NewConn(flavor, endOnLast, id.ExpiresAt, release)
	unsub = subscribe(conn)
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
		conn, release, err := g.openStream(c, flavor, true, job, func(s relay.Subscriber) func() { return g.hub.SubscribeJob(id.Owner, job, s) })
		if err != nil {
			return err
		}
		// Subscribed first, read second: a change between the two is not lost, and Offer keeps the newest.
		ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
		defer cancel()
		snap, fromLog, err := g.jobSnapshot(ctx, id.Owner, job)
		if err != nil {
			release()
			return err
		}
		last := lastEventID(c)
		switch {
		case last == 0:
		case last > max(g.hub.LastRevision(), snap.Revision) || (fromLog && snap.Terminal):
			// The client's position is unknown here (another bucket, or the state expired): start over.
			conn.Control(resetFrame)
		case last >= snap.Revision && snap.Terminal:
			release()
			return c.SendStatus(fiber.StatusNoContent) // stops the EventSource's reconnect loop
		default:
			conn.MarkSent(job, last)
		}
		if snap.Revision > 0 {
			conn.Offer(snap)
		}
		return g.attach(c, conn, job)
	}
}

// jobSnapshot is the state a job stream starts with: the hub's, shared by every stream, or, when the
// hub does not hold it, read from the store. fromLog says it was folded from JOB_EVENTS (the KV state
// is not there yet, or any more); it then carries the hub's last revision.
func (g *Gateway) jobSnapshot(ctx context.Context, owner, job string) (snap *sse.Message, fromLog bool, err error) {
	if snap, ok := g.hub.Snapshot(owner, job); ok {
		return snap, false, nil
	}
	st, err := g.store.Get(ctx, owner, job)
	if err != nil {
		return nil, false, err
	}
	if st.Revision == 0 {
		st.Revision, fromLog = g.hub.LastRevision(), true
	}
	return relay.StateMessage(&st, time.Time{}), fromLog, nil
}

// streamOwner serves GET /v1/events: every job of the caller over one connection.
func (g *Gateway) streamOwner(c *fiber.Ctx) error {
	id := identity(c)
	if id.JobID != "" {
		return api.Errorf(api.CodeForbidden, "this stream token is limited to one job")
	}
	conn, _, err := g.openStream(c, sse.FlavorV1, false, "", func(s relay.Subscriber) func() { return g.hub.SubscribeOwner(id.Owner, s) })
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	for _, r := range g.ownerRefs(conn, id.Owner, lastEventID(c)) {
		// A job removed meanwhile is skipped (the hub tells the stream); a state folded from the log has
		// no revision of its own to resume from.
		if snap, fromLog, err := g.jobSnapshot(ctx, id.Owner, r.ID); err == nil && !fromLog {
			conn.Offer(snap)
		}
	}
	return g.attach(c, conn, "")
}

// streamConsole serves GET /v1/operator/events: the operators' console, a snapshot now and at every
// change, all made by the gateway's one sampler (package console).
func (g *Gateway) streamConsole(c *fiber.Ctx) error {
	conn, _, err := g.openStream(c, sse.FlavorV1, false, "", g.console.Subscribe)
	if err != nil {
		return err
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
