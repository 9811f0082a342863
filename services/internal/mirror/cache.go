package mirror

import (
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
)

// Cache bounds. A finished job is kept as a small tombstone (so a late or redelivered event of it is
// recognised without a Redis command) until maxFinished newer jobs have finished.
const (
	maxFinished = 4096
	maxJobs     = 100_000
)

// entry is the mirror's view of one job: its folded state and what of it is in Redis.
type entry struct {
	state api.JobState
	// named: a job.submitted was folded, so data ({"name":...}) can be written.
	named bool
	// written is the EventSeq of the state last written to Redis (0: nothing yet).
	written uint64
	// writtenPercent is the progress percent in Redis; a progress event is appended only on change.
	writtenPercent int
	// fresh: a job.requeued was folded since the last write, so the next write first removes what
	// Redis holds of the finished run (hash fields and set entry).
	fresh bool
	// held are the messages folded into state but not yet acked: acked once a write covering them
	// succeeds, nakked when it fails.
	held []heldMsg
	// dirty: state has changes for the next tick's flush.
	dirty bool
}

// heldMsg is a message waiting for its write.
type heldMsg struct {
	msg      jetstream.Msg
	seq      uint64
	progress bool
}

// hold keeps msg until the entry's next write. A newer job.progress supersedes a held older one, which
// is acked at once: that keeps at most one held progress message per job, and it is safe, because a
// progress event carries the absolute progress, so the newer message (still unacked, redelivered after
// a crash) restores everything the older one said. Other events (submitted, started, ...) carry facts
// the next event does not repeat, so they stay held until a write covering them succeeds. It returns
// the superseded message, if any, for the caller to ack.
func (e *entry) hold(msg jetstream.Msg, seq uint64, progress bool) (superseded jetstream.Msg) {
	for i := range e.held {
		h := &e.held[i]
		if h.seq == seq { // a redelivery of a message already held: keep the newest delivery
			h.msg = msg
			return nil
		}
		if progress && h.progress && h.seq < seq {
			superseded, h.msg, h.seq = h.msg, msg, seq
			return superseded
		}
	}
	e.held = append(e.held, heldMsg{msg: msg, seq: seq, progress: progress})
	return nil
}

// takeHeld returns and clears the held messages.
func (e *entry) takeHeld() []heldMsg {
	h := e.held
	e.held = nil
	return h
}

// cache holds the entries of the jobs the mirror has seen. It is owned by the mirror's loop goroutine.
type cache struct {
	jobs     map[string]*entry
	dirty    map[string]*entry
	finished []string // ids of finished jobs in finishing order: a FIFO of tombstones
	evicted  int      // unfinished entries dropped because of maxJobs
}

func newCache() *cache {
	return &cache{jobs: make(map[string]*entry), dirty: make(map[string]*entry)}
}

// get returns the entry of a job, creating an empty one.
func (c *cache) get(id string) *entry {
	if e, ok := c.jobs[id]; ok {
		return e
	}
	if len(c.jobs) >= maxJobs {
		c.evictIdle()
	}
	e := &entry{}
	c.jobs[id] = e
	return e
}

// markDirty schedules e for the next flush.
func (c *cache) markDirty(e *entry) {
	e.dirty = true
	c.dirty[e.state.ID] = e
}

// takeDirty returns the entries to flush and clears the dirty set.
func (c *cache) takeDirty() []*entry {
	out := make([]*entry, 0, len(c.dirty))
	for id, e := range c.dirty {
		e.dirty = false
		out = append(out, e)
		delete(c.dirty, id)
	}
	return out
}

// finish turns e, whose terminal state was just written, into a tombstone: the bulky parts of its
// state are dropped and the oldest tombstone beyond maxFinished is forgotten.
func (c *cache) finish(e *entry) {
	e.state.Result, e.state.Error, e.state.Progress.Message = nil, nil, ""
	c.finished = append(c.finished, e.state.ID)
	for len(c.finished) > maxFinished {
		id := c.finished[0]
		c.finished = c.finished[1:]
		if old, ok := c.jobs[id]; ok && old.state.State.Terminal() && !old.dirty && len(old.held) == 0 {
			delete(c.jobs, id)
		}
	}
}

// evictIdle drops a tenth of the unfinished entries that have nothing pending. Forgetting one is safe:
// what was written is in Redis, and a later event of the job is folded from what it carries and
// written without the fields it cannot know (see hashFields).
func (c *cache) evictIdle() {
	n := maxJobs / 10
	for id, e := range c.jobs {
		if n == 0 {
			break
		}
		if e.dirty || len(e.held) > 0 {
			continue
		}
		delete(c.jobs, id)
		c.evicted++
		n--
	}
}
