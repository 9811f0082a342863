package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/streams"
)

// control keeps what operators set for one job type (streams.ControlEntry) current, through a watch of
// its key in JOB_TYPES: a pause or a rate limit reaches every worker of the type at once, without
// polling.
type control struct {
	log    *slog.Logger
	paused prometheus.Gauge

	mu      sync.Mutex
	entry   streams.ControlEntry
	changed chan struct{} // closed at every change, then replaced
	stop    func()
}

func newControl(log *slog.Logger, paused prometheus.Gauge) *control {
	return &control{log: log, paused: paused, changed: make(chan struct{}), stop: func() {}}
}

// watch opens the watch of jobType's control key and returns once its current value is known, so a
// worker of a paused type fetches nothing from its start.
func (c *control) watch(ctx context.Context, kv jetstream.KeyValue, jobType string) error {
	wctx, cancel := context.WithCancel(context.Background())
	w, err := kv.Watch(wctx, streams.ControlKey(jobType))
	if err != nil {
		cancel()
		return fmt.Errorf("worker: watch %s: %w", streams.ControlKey(jobType), err)
	}
	loaded := make(chan struct{})
	done := make(chan struct{})
	c.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		defer func() { _ = w.Stop() }()
		for e := range w.Updates() {
			if e == nil {
				close(loaded)
				continue
			}
			c.apply(e)
		}
	}()
	select {
	case <-loaded:
		return nil
	case <-ctx.Done():
		c.stop()
		return fmt.Errorf("worker: load %s: %w", streams.ControlKey(jobType), ctx.Err())
	}
}

// apply takes one change of the key. An entry that cannot be read changes nothing: the type keeps
// running as it did.
func (c *control) apply(e jetstream.KeyValueEntry) {
	var next streams.ControlEntry
	if e.Operation() == jetstream.KeyValuePut {
		if err := streams.DecodeRegistryEntry(e.Value(), &next); err != nil {
			c.log.Warn("ignoring a control entry", "key", e.Key(), "err", err)
			return
		}
	}
	c.mu.Lock()
	was := c.entry.Paused
	c.entry = next
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	switch {
	case next.Paused && !was:
		c.paused.Set(1)
		c.log.Info("job type paused by an operator: fetching no jobs (running ones finish)", "by", next.PausedBy)
	case !next.Paused && was:
		c.paused.Set(0)
		c.log.Info("job type resumed: fetching jobs again")
	}
}

// current returns the entry and a channel closed at its next change.
func (c *control) current() (streams.ControlEntry, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entry, c.changed
}

// waitRunning returns true at once while the type runs; while it is paused, it waits for a resume
// (true) or for ctx to end (false).
func (c *control) waitRunning(ctx context.Context) bool {
	for {
		e, changed := c.current()
		if !e.Paused {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}
