package sse

import (
	"net"
	"sync"
	"time"
)

// Message is one change fanned out to streams: encoded once, shared read-only by every connection.
type Message struct {
	// Key identifies what changed (a job); a connection keeps only the newest Message per Key.
	Key string
	// Revision orders messages; a connection never sends a revision it already sent for a Key.
	Revision uint64
	// Frame is the encoded event for /v1 streams.
	Frame []byte
	// MakeLegacy, when not nil, encodes the frame for the legacy routes. It runs at most once per
	// message, and only when a legacy stream takes the message; nil means Frame serves both.
	MakeLegacy func() []byte
	// Terminal marks the last message of a key (the job ended or was removed).
	Terminal bool
	// StoredAt is when the change was stored in NATS (for the relay latency metric).
	StoredAt time.Time

	legacyOnce  sync.Once
	legacyFrame []byte
}

// frame returns the message's frame for a stream of flavor f.
func (m *Message) frame(f Flavor) []byte {
	if f != FlavorLegacy || m.MakeLegacy == nil {
		return m.Frame
	}
	m.legacyOnce.Do(func() { m.legacyFrame = m.MakeLegacy() })
	return m.legacyFrame
}

// Size is about the memory a message holds, for caches that bound it. A legacy frame made later is not
// counted: it exists only while legacy streams are open.
func (m *Message) Size() int {
	return len(m.Key) + len(m.Frame) + messageOverhead
}

// messageOverhead approximates a Message's fixed size and its allocation headers.
const messageOverhead = 160

// Flavor selects which frame of a Message a connection writes.
type Flavor uint8

// The flavors of stream.
const (
	FlavorV1 Flavor = iota
	FlavorLegacy
)

// Close reasons, used as metric labels and in logs.
const (
	ReasonTerminal   = "terminal"
	ReasonClientGone = "client_gone"
	ReasonExpired    = "expired"
	ReasonShutdown   = "shutdown"
	ReasonRemoved    = "removed"
	// ReasonTooSlow: the client took nothing of a pending write for Config.WriteTimeout.
	ReasonTooSlow = "too_slow"
)

// Conn is one SSE stream. Offer and End never block: they record what to send and queue the connection
// for a writer. A Conn is created by Pool.NewConn and becomes writable after Pool.Attach.
type Conn struct {
	pool      *Pool
	flavor    Flavor
	endOnLast bool // end the stream after a Terminal message (job streams)
	onClose   func(reason string, d time.Duration)
	opened    time.Time
	expiresAt time.Time

	mu       sync.Mutex
	nc       net.Conn
	sock     *rawSocket // the socket itself, when the pool writes and polls it directly
	token    int32      // the socket's key in the pool's poller; 0 when not polled
	attached bool       // the response head is written: writers may use nc
	pending  pendingSet
	control  [][]byte // frames sent before pending messages (reset, removed)
	last     [][]byte // frames sent after pending messages, then the stream ends (expired)
	sent     sentSet
	queued   bool   // in the run queue, being written, or parked: Offer need not schedule it
	ending   string // reason to close once the frames taken so far are written
	closed   bool
	nextPing time.Time

	// out holds the taken frames the socket has not accepted yet; only the writer that holds the stream
	// touches it (and slots, its backing array, kept for the next write).
	out      net.Buffers
	slots    net.Buffers
	closing  string    // the stream ends when out is written (its final frames are in out)
	outAt    time.Time // StoredAt of the newest message in out (relay latency)
	parkedAt time.Time // when a write last found the socket full; zero when not parked
	waiting  bool      // parked and waiting for the socket to become writable
}

// Offer records m for sending. An older or already sent revision of the same key is dropped; a newer one
// replaces a pending one (a slow reader skips intermediate states but always gets the latest).
func (c *Conn) Offer(m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ending != "" || m.Revision <= c.sent.get(m.Key) {
		return
	}
	if p, ok := c.pending.get(m.Key); ok {
		if p.Revision >= m.Revision {
			return
		}
		c.pool.metrics.coalesced.Inc()
	}
	c.pending.put(m)
	c.scheduleLocked()
}

// Control sends frame before any pending message (e.g. "event: reset").
func (c *Conn) Control(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ending != "" {
		return
	}
	c.control = append(c.control, frame)
	c.scheduleLocked()
}

// End sends the pending messages, then frame (may be nil), then closes the stream with reason.
func (c *Conn) End(frame []byte, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ending != "" {
		return
	}
	if frame != nil {
		c.last = append(c.last, frame)
	}
	c.ending = reason
	c.scheduleLocked()
}

// Sent returns the revision last sent for key.
func (c *Conn) Sent(key string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent.get(key)
}

// MarkSent records that the client already has revision rev of key (from Last-Event-ID), so it is not
// sent again.
func (c *Conn) MarkSent(key string, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent.set(key, max(c.sent.get(key), rev))
}

func (c *Conn) scheduleLocked() {
	if !c.attached || c.queued {
		return
	}
	c.queued = true
	c.pool.queue.push(c)
}

// fill moves what there is to write into out, in revision order, and records whether the stream ends
// after it.
func (c *Conn) fill() {
	c.out = append(c.slots[:0], c.control...)
	c.control = nil
	var newest *Message
	var one [1]*Message
	for _, m := range c.pending.take(one[:0]) {
		if m.Revision <= c.sent.get(m.Key) {
			continue
		}
		c.sent.set(m.Key, m.Revision)
		c.out = append(c.out, m.frame(c.flavor))
		newest = m
		if c.endOnLast && m.Terminal && c.ending == "" {
			c.ending = ReasonTerminal
		}
	}
	if newest != nil && newest.StoredAt.After(c.opened) {
		c.outAt = newest.StoredAt // a live change, not a snapshot stored before the stream opened
	}
	if c.ending != "" {
		c.out = append(c.out, c.last...)
		c.last = nil
		c.closing = c.ending
	}
	c.slots = c.out[:0]
	c.pool.metrics.frames.Add(float64(len(c.out)))
}

// hasWork reports whether something is waiting to be taken or written.
func (c *Conn) hasWork() bool {
	return len(c.out) > 0 || c.pending.len() > 0 || len(c.control) > 0 || (c.ending != "" && c.closing == "")
}
