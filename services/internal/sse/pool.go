package sse

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobwire/jobwire/api"
)

// Defaults of Config.
const (
	DefaultWriters      = 64
	DefaultWriteTimeout = 10 * time.Second
	DefaultHeartbeat    = 15 * time.Second
	DefaultMaxDuration  = 30 * time.Minute
	DefaultRetryMS      = 2000
)

// Config configures a Pool.
type Config struct {
	// Writers is the number of writer goroutines shared by all streams. Default 64.
	Writers int
	// WriteTimeout is how long a client may take nothing of a pending write before it is dropped; the
	// write waits parked meanwhile, holding up no other stream. Default 10 s.
	WriteTimeout time.Duration
	// Heartbeat is the interval of ": ping" comments on an otherwise quiet stream. Default 15 s.
	Heartbeat time.Duration
	// MaxDuration ends every stream after this long (minus up to 10 % jitter, so reconnects spread out)
	// with "event: expired". Default 30 min.
	MaxDuration time.Duration
	// RetryMS is the reconnect delay sent to clients in the "retry:" field. Default 2000.
	RetryMS int
}

func (c *Config) setDefaults() {
	if c.Writers == 0 {
		c.Writers = DefaultWriters
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = DefaultMaxDuration
	}
	if c.RetryMS == 0 {
		c.RetryMS = DefaultRetryMS
	}
}

// Pool owns every open stream of a process: the writers, the sweeper and the accounting.
type Pool struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	queue   runQueue
	poll    *poller
	ping    []byte
	expired []byte

	clock atomic.Int64 // Unix nanoseconds as of the sweeper's last tick: heartbeats need no finer clock

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	stopped bool
	done    chan struct{}
	wg      sync.WaitGroup
}

// NewPool returns a pool; Start starts its goroutines.
func NewPool(cfg Config, m *Metrics, log *slog.Logger) *Pool {
	cfg.setDefaults()
	if m == nil {
		m = NewMetrics(nil)
	}
	p := &Pool{cfg: cfg, log: log, metrics: m, conns: map[*Conn]struct{}{}, done: make(chan struct{}),
		ping:    AppendComment(nil, "ping"),
		expired: AppendEvent(nil, "", api.EventExpired, Notice(api.ExpiredMaxDuration)),
	}
	p.queue.cond = sync.NewCond(&p.queue.mu)
	p.poll = newPoller(p)
	return p
}

// Config returns the pool's configuration with defaults applied.
func (p *Pool) Config() Config { return p.cfg }

// coarseNow is the time as of the sweeper's last tick.
func (p *Pool) coarseNow() time.Time { return time.Unix(0, p.clock.Load()) }

// Start starts the writers and the sweeper.
func (p *Pool) Start() {
	p.clock.Store(time.Now().UnixNano())
	for range p.cfg.Writers {
		p.wg.Add(1)
		go p.writer()
	}
	p.wg.Add(1)
	go p.sweeper()
	p.poll.start(&p.wg)
}

// Stop ends every stream (clients reconnect elsewhere with their Last-Event-ID) and stops the
// goroutines. Safe to call twice.
func (p *Pool) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	conns := make([]*Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		p.close(c, ReasonShutdown)
	}
	close(p.done)
	p.queue.close()
	p.poll.stop()
	p.wg.Wait()
}

// Open returns the number of open streams.
func (p *Pool) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// NewConn prepares a stream. Messages offered before Attach are kept and sent first. onClose runs once
// when the stream ends, with its reason and duration. maxExpiry, when not zero, ends the stream earlier
// than MaxDuration (e.g. when the client's token expires).
func (p *Pool) NewConn(flavor Flavor, endOnLast bool, maxExpiry time.Time, onClose func(reason string, d time.Duration)) *Conn {
	now := time.Now()
	d := p.cfg.MaxDuration
	d -= time.Duration(rand.Int64N(int64(d/10) + 1))
	exp := now.Add(d)
	if !maxExpiry.IsZero() && maxExpiry.Before(exp) {
		exp = maxExpiry
	}
	return &Conn{pool: p, flavor: flavor, endOnLast: endOnLast, onClose: onClose, opened: now, expiresAt: exp}
}

// ErrStopped is returned by Attach after Stop.
var ErrStopped = errors.New("sse pool stopped")

// Attach writes the response head and the retry field to nc and makes c writable. From here on the pool
// owns nc and closes it when the stream ends; on Linux it also watches nc for the client leaving.
func (p *Pool) Attach(c *Conn, nc net.Conn, head []byte) error {
	// A hijacked connection comes wrapped with the HTTP server's read buffer (fasthttp keeps it for
	// handlers that read on); a stream never reads, so it keeps only the socket and the buffer goes.
	if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
		nc = u.UnsafeConn()
	}
	// The socket is the Conn's from here on, so that a Stop running concurrently closes it; writers
	// leave it alone until the head is written (attached).
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		p.close(c, ReasonShutdown)
		return ErrStopped
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	p.metrics.open.Inc()
	p.metrics.opened.Inc()

	setKeepAlive(nc, p.cfg.Heartbeat)
	buf := AppendRetry(head, p.cfg.RetryMS)
	_ = nc.SetWriteDeadline(time.Now().Add(p.cfg.WriteTimeout))
	if _, err := nc.Write(buf); err != nil {
		p.close(c, ReasonClientGone)
		return err
	}
	_ = nc.SetWriteDeadline(time.Time{})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrStopped
	}
	p.poll.add(c) // a client gone already is reported at once
	c.attached = true
	c.nextPing = p.coarseNow().Add(p.cfg.Heartbeat)
	if c.hasWork() {
		c.queued = true
		p.queue.push(c)
	}
	return nil
}

// writer writes queued connections until the pool stops.
func (p *Pool) writer() {
	defer p.wg.Done()
	for {
		c, ok := p.queue.pop()
		if !ok {
			return
		}
		p.flush(c)
	}
}

// flush writes what c has without blocking: what the socket does not take stays in c.out and c is
// parked until the socket is writable again, so a client that does not read holds up nobody else.
func (p *Pool) flush(c *Conn) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if len(c.out) == 0 {
		c.fill()
	}
	c.mu.Unlock()

	blocked, err := p.write(c)
	if err != nil {
		p.close(c, ReasonClientGone)
		return
	}
	c.mu.Lock()
	if blocked {
		if c.parkedAt.IsZero() {
			c.parkedAt = time.Now()
		}
		c.waiting = true
		c.mu.Unlock()
		p.park(c)
		return
	}
	c.parkedAt = time.Time{}
	if !c.outAt.IsZero() {
		p.metrics.latency.Observe(time.Since(c.outAt).Seconds())
		c.outAt = time.Time{}
	}
	if reason := c.closing; reason != "" {
		c.mu.Unlock()
		p.close(c, reason)
		return
	}
	c.nextPing = p.coarseNow().Add(p.cfg.Heartbeat)
	if c.hasWork() {
		p.queue.push(c) // still queued: more arrived while writing
	} else {
		c.queued = false
	}
	c.mu.Unlock()
}

// park waits for c's socket to take more: the poller says when it is writable; a socket it does not
// poll is retried after fallbackRetry.
func (p *Pool) park(c *Conn) {
	if p.poll.wantWrite(c) {
		return
	}
	time.AfterFunc(fallbackRetry, func() { p.unpark(c) })
}

// unpark queues a parked connection again (its socket is writable, or it is time to retry).
func (p *Pool) unpark(c *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.waiting {
		return
	}
	c.waiting = false
	p.queue.push(c)
}

// close ends a stream once: closes the socket, forgets it and reports it.
func (p *Pool) close(c *Conn, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	nc := c.nc
	c.pending, c.sent, c.control, c.last = pendingSet{}, sentSet{}, nil, nil
	c.mu.Unlock()
	p.poll.remove(c)
	if nc != nil {
		if tc, ok := nc.(interface{ CloseWrite() error }); ok && reason != ReasonClientGone {
			_ = tc.CloseWrite()
		}
		nc.Close()
	}
	p.mu.Lock()
	_, tracked := p.conns[c]
	delete(p.conns, c)
	p.mu.Unlock()
	if tracked {
		p.metrics.open.Dec()
	}
	c.finish(reason)
}

func (c *Conn) finish(reason string) {
	c.pool.metrics.closed.WithLabelValues(reason).Inc()
	if c.onClose != nil {
		c.onClose(reason, time.Since(c.opened))
	}
}

// sweeper sends heartbeats to quiet streams, ends expired ones and drops clients that took nothing for
// the write timeout: one goroutine and one ticker for every stream of the process, never a timer per
// client.
func (p *Pool) sweeper() {
	defer p.wg.Done()
	tick := min(p.cfg.Heartbeat/4, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	var batch, slow []*Conn
	for {
		select {
		case <-p.done:
			return
		case now := <-t.C:
			p.clock.Store(now.UnixNano())
			batch, slow = p.snapshot(batch[:0]), slow[:0]
			for _, c := range batch {
				if p.sweep(c, now) {
					slow = append(slow, c)
				}
			}
			for _, c := range slow {
				p.close(c, ReasonTooSlow)
			}
		}
	}
}

// snapshot appends every open stream to batch.
func (p *Pool) snapshot(batch []*Conn) []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		batch = append(batch, c)
	}
	return batch
}

// sweep schedules c's heartbeat or expiry when due; it reports whether c is too slow to keep.
func (p *Pool) sweep(c *Conn, now time.Time) (tooSlow bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
	case !c.parkedAt.IsZero() && now.Sub(c.parkedAt) >= p.cfg.WriteTimeout:
		return true
	case c.ending != "":
	case !now.Before(c.expiresAt):
		c.last = append(c.last, p.expired)
		c.ending = ReasonExpired
		c.scheduleLocked()
	case !now.Before(c.nextPing) && !c.queued:
		c.control = append(c.control, p.ping)
		c.nextPing = now.Add(p.cfg.Heartbeat)
		c.scheduleLocked()
	}
	return false
}

// runQueue is an unbounded FIFO of connections with something to write. A connection is in it at most
// once (Conn.queued), so its length is bounded by the number of streams; pushing never blocks.
type runQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []*Conn
	head   int
	closed bool
}

func (q *runQueue) push(c *Conn) {
	q.mu.Lock()
	q.items = append(q.items, c)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *runQueue) pop() (*Conn, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, false
	}
	c := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return c, true
}

func (q *runQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
