package sse

import (
	"net"
	"slices"
	"sync"
	"time"
)

// Message is one change fanned out to streams: encoded once, shared read-only by every connection.
type Message struct {
	// Key identifies what changed (a job); a connection keeps only the newest Message per Key.
	Key string
	// Revision orders messages; a connection never sends a revision it already sent for a Key.
	Revision uint64
	// Frame is the encoded event for /v1 streams; LegacyFrame the one for the legacy routes.
	Frame, LegacyFrame []byte
	// Terminal marks the last message of a key (the job ended or was removed).
	Terminal bool
	// StoredAt is when the change was stored in NATS (for the relay latency metric).
	StoredAt time.Time
}

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
	attached bool // the response head is written: writers may use nc
	pending  map[string]*Message
	control  [][]byte // frames sent before pending messages (reset, removed)
	last     [][]byte // frames sent after pending messages, then the stream ends (expired)
	sent     map[string]uint64
	queued   bool
	ending   string // reason to close after the next write
	closed   bool
	nextPing time.Time
}

// Offer records m for sending. An older or already sent revision of the same key is dropped; a newer one
// replaces a pending one (a slow reader skips intermediate states but always gets the latest).
func (c *Conn) Offer(m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ending != "" || m.Revision <= c.sent[m.Key] {
		return
	}
	if p, ok := c.pending[m.Key]; ok {
		if p.Revision >= m.Revision {
			return
		}
		c.pool.metrics.coalesced.Inc()
	}
	if c.pending == nil {
		c.pending = make(map[string]*Message, 1)
	}
	c.pending[m.Key] = m
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
	return c.sent[key]
}

// MarkSent records that the client already has revision rev of key (from Last-Event-ID), so it is not
// sent again.
func (c *Conn) MarkSent(key string, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent == nil {
		c.sent = make(map[string]uint64, 1)
	}
	c.sent[key] = max(c.sent[key], rev)
}

func (c *Conn) scheduleLocked() {
	if !c.attached || c.queued {
		return
	}
	c.queued = true
	c.pool.queue.push(c)
}

// take collects what to write, in revision order, and whether the stream ends after it.
func (c *Conn) take() (net.Conn, net.Buffers, string, *Message) {
	var bufs net.Buffers
	bufs = append(bufs, c.control...)
	c.control = nil
	var newest *Message
	if len(c.pending) > 0 {
		msgs := make([]*Message, 0, len(c.pending))
		for _, m := range c.pending {
			msgs = append(msgs, m)
		}
		clear(c.pending)
		slices.SortFunc(msgs, func(a, b *Message) int {
			switch {
			case a.Revision < b.Revision:
				return -1
			case a.Revision > b.Revision:
				return 1
			}
			return 0
		})
		if c.sent == nil {
			c.sent = make(map[string]uint64, len(msgs))
		}
		for _, m := range msgs {
			if m.Revision <= c.sent[m.Key] {
				continue
			}
			c.sent[m.Key] = m.Revision
			if c.flavor == FlavorLegacy {
				bufs = append(bufs, m.LegacyFrame)
			} else {
				bufs = append(bufs, m.Frame)
			}
			newest = m
			if c.endOnLast && m.Terminal && c.ending == "" {
				c.ending = ReasonTerminal
			}
		}
	}
	ending := c.ending
	if ending != "" {
		bufs = append(bufs, c.last...)
		c.last = nil
	}
	return c.nc, bufs, ending, newest
}
