package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Writer applies events to a JOB_STATE-shaped bucket with compare-and-swap writes. It may fold
// different jobs at once; one job's events are folded by one caller at a time, in stream order. It is
// shared by the live projector and the rebuild.
type Writer struct {
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	bucket    string
	retention time.Duration
	// cache holds the state and revision this writer last wrote per running job, so folding the next
	// events needs no read. A write by anyone else makes the compare-and-swap fail: the entry is dropped
	// and the key read again.
	mu     sync.Mutex
	cache  map[string]cachedState
	stream jetstream.Stream // the bucket's stream, opened on first need
}

type cachedState struct {
	st  api.JobState
	rev uint64
}

// maxCached bounds the cache (running jobs); past it, it starts over.
const maxCached = 100000

// NewWriter returns a Writer for bucket kv; finished jobs are written with a TTL of retention.
func NewWriter(js jetstream.JetStream, kv jetstream.KeyValue, retention time.Duration) *Writer {
	return &Writer{js: js, kv: kv, bucket: kv.Bucket(), retention: retention}
}

// fold is one job's events folded into its state, ready to be written once.
type fold struct {
	key     string
	st      api.JobState
	rev     uint64 // the revision the write expects (0: the key has never been written)
	applied []bool // per event: whether it changed the state
	changed bool
}

// Apply folds ev into the job's stored state and writes it back if it changed. A concurrent write
// (another projector, a rebuild) makes the compare-and-swap fail; Apply then re-reads and retries.
func (w *Writer) Apply(ctx context.Context, ev streams.Event) (bool, error) {
	key := streams.StateKey(ev.Owner, ev.JobID)
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			w.forget(key)
		}
		f, err := w.fold(ctx, key, []streams.Event{ev})
		if err != nil || !f.changed {
			return false, err
		}
		seq, err := w.write(ctx, f)
		w.commit(f, seq, err)
		if err == nil {
			return true, nil
		}
		if !streams.IsWrongLastSequence(err) {
			return false, fmt.Errorf("write state of %s: %w", key, err)
		}
	}
	return false, fmt.Errorf("write state of %s: too many concurrent updates", key)
}

// fold folds events, one job's in stream order, into the job's state as this writer last wrote it, or
// as stored.
func (w *Writer) fold(ctx context.Context, key string, events []streams.Event) (fold, error) {
	f := fold{key: key, applied: make([]bool, len(events))}
	w.mu.Lock()
	c, cached := w.cache[key]
	w.mu.Unlock()
	if cached {
		f.st, f.rev = c.st, c.rev
	} else if err := w.read(ctx, &f, events[0]); err != nil {
		return f, err
	}
	for i, ev := range events {
		f.applied[i] = streams.Apply(&f.st, ev)
		f.changed = f.changed || f.applied[i]
	}
	f.st.Revision = 0
	return f, nil
}

// read loads the job's stored state and revision into f. A job whose state is gone (expired, or lost)
// while it goes on starts from its history before first.
func (w *Writer) read(ctx context.Context, f *fold, first streams.Event) error {
	entry, err := w.kv.Get(ctx, f.key)
	switch {
	case err == nil:
		if f.st, err = streams.DecodeState(entry.Value(), 0); err != nil {
			return fmt.Errorf("state of %s: %w", f.key, err)
		}
		f.rev = entry.Revision()
		return nil
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("read state of %s: %w", f.key, err)
	}
	// A deleted or expired key keeps a marker as its last message: CAS against that.
	if f.rev, err = w.lastSeq(ctx, f.key); err != nil {
		return err
	}
	if first.Type != streams.EventSubmitted {
		f.st, err = w.history(ctx, first)
	}
	return err
}

// commit records the outcome of f's write (at seq, or err): running jobs stay cached, finished jobs
// and failed writes are dropped.
func (w *Writer) commit(f fold, seq uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || f.st.State.Terminal() {
		delete(w.cache, f.key)
		return
	}
	if w.cache == nil || len(w.cache) >= maxCached {
		w.cache = map[string]cachedState{}
	}
	w.cache[f.key] = cachedState{st: f.st, rev: seq}
}

// cached reports whether folding key's next events needs no read.
func (w *Writer) cached(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.cache[key]
	return ok
}

func (w *Writer) forget(key string) {
	w.mu.Lock()
	delete(w.cache, key)
	w.mu.Unlock()
}

// history folds the job's events that came before ev, read with batched direct gets from JOB_EVENTS.
func (w *Writer) history(ctx context.Context, ev streams.Event) (api.JobState, error) {
	raws, _, err := streams.ReadEvents(ctx, w.js, ev.Owner, ev.JobID, 0, math.MaxInt32)
	if err != nil {
		return api.JobState{}, err
	}
	var st api.JobState
	for _, e := range streams.DecodeEvents(raws) {
		if e.Seq < ev.Seq {
			streams.Apply(&st, e)
		}
	}
	return st, nil
}

// lastSeq returns the sequence of the last message on key's subject (0 when there is none).
func (w *Writer) lastSeq(ctx context.Context, key string) (uint64, error) {
	w.mu.Lock()
	stream := w.stream
	w.mu.Unlock()
	if stream == nil {
		s, err := w.js.Stream(ctx, streams.KVStream(w.bucket))
		if err != nil {
			return 0, fmt.Errorf("open bucket stream: %w", err)
		}
		w.mu.Lock()
		w.stream, stream = s, s
		w.mu.Unlock()
	}
	m, err := stream.GetLastMsgForSubject(ctx, streams.KVSubject(w.bucket, key))
	switch {
	case err == nil:
		return m.Sequence, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, nil
	}
	return 0, fmt.Errorf("read last revision of %s: %w", key, err)
}

// write stores f's state (one compare-and-swap write) and returns its revision.
func (w *Writer) write(ctx context.Context, f fold) (uint64, error) {
	m, opts, err := w.putMsg(f)
	if err != nil {
		return 0, err
	}
	ack, err := w.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// putMsg is f's state as its compare-and-swap write to the bucket.
func (w *Writer) putMsg(f fold) (*nats.Msg, []jetstream.PublishOpt, error) {
	data, err := json.Marshal(f.st)
	if err != nil {
		return nil, nil, fmt.Errorf("encode state: %w", err)
	}
	m := nats.NewMsg(streams.KVSubject(w.bucket, f.key))
	m.Data = data
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(f.rev)}
	if f.st.State.Terminal() && w.retention > 0 {
		// KV Put would clear a TTL: publish the value ourselves with one, still compare-and-swap.
		opts = append(opts, jetstream.WithMsgTTL(w.retention))
	}
	return m, opts, nil
}

// writeAll writes states to keys never written before, pipelined a thousand at a time.
func (w *Writer) writeAll(ctx context.Context, keys []string, states map[string]api.JobState) error {
	for start := 0; start < len(keys); start += 1000 {
		chunk := keys[start:min(start+1000, len(keys))]
		writes := make([]streams.Pipelined, len(chunk))
		for i, key := range chunk {
			writes[i].Msg, writes[i].Opts, writes[i].Err = w.putMsg(fold{key: key, st: states[key]})
		}
		streams.PublishAll(ctx, w.js, writes)
		for i, wr := range writes {
			if wr.Err != nil {
				return fmt.Errorf("write state of %s: %w", chunk[i], wr.Err)
			}
		}
	}
	return nil
}
