package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/streams"
)

// tracker watches JOB_STATE (one KV watch, updates only) and records when each job was first seen in
// a terminal state. It is how the jobs benchmark observes "completed": the same place the gateway's
// relay reads from.
type tracker struct {
	mu     sync.Mutex
	cond   *sync.Cond
	done   map[string]time.Time
	failed map[string]bool
	count  int
	stop   context.CancelFunc
	closed chan struct{}
}

var (
	completedMark = []byte(`"state":"completed"`)
	failedMark    = []byte(`"state":"failed"`)
	cancelledMark = []byte(`"state":"cancelled"`)
)

func startTracker(ctx context.Context, js jetstream.JetStream) (*tracker, error) {
	kv, err := js.KeyValue(ctx, streams.BucketState)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx, jetstream.UpdatesOnly())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch %s: %w", streams.BucketState, err)
	}
	t := &tracker{done: map[string]time.Time{}, failed: map[string]bool{}, stop: cancel, closed: make(chan struct{})}
	t.cond = sync.NewCond(&t.mu)
	go func() {
		defer close(t.closed)
		defer w.Stop()
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			now := time.Now()
			v := e.Value()
			ok := bytes.Contains(v, completedMark)
			if !ok && !bytes.Contains(v, failedMark) && !bytes.Contains(v, cancelledMark) {
				continue
			}
			_, id, valid := streams.ParseStateKey(e.Key())
			if !valid {
				continue
			}
			t.mu.Lock()
			if _, seen := t.done[id]; !seen {
				t.done[id] = now
				if !ok {
					t.failed[id] = true
				}
				t.count++
				t.cond.Broadcast()
			}
			t.mu.Unlock()
		}
	}()
	return t, nil
}

// Count returns how many jobs ended since the tracker started.
func (t *tracker) Count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// waitCount waits until n jobs ended in all, or timeout passes.
func (t *tracker) waitCount(n int, timeout time.Duration) error {
	timer := time.AfterFunc(timeout, func() { t.mu.Lock(); t.cond.Broadcast(); t.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.count < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d jobs ended within %s", t.count, n, timeout)
		}
		t.cond.Wait()
	}
	return nil
}

// ended returns when id ended and whether it failed.
func (t *tracker) ended(id string) (time.Time, bool, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.done[id]
	return at, ok, t.failed[id]
}

func (t *tracker) Stop() {
	t.stop()
	<-t.closed
}
