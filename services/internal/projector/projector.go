// Package projector folds JOB_EVENTS into the JOB_STATE bucket: one durable consumer, compare-and-swap
// writes, idempotent on redelivery. A finished job's state is written with a per-message TTL, so it
// expires from the bucket after the retention and watchers receive a delete marker.
package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Config configures the projector.
type Config struct {
	// StateRetention is how long a finished job's state stays in JOB_STATE. Default 24 h.
	StateRetention time.Duration
	// AckWait of the durable consumer. Default 30 s.
	AckWait time.Duration
	// MaxAckPending bounds events in flight. Default 1000.
	MaxAckPending int
}

func (c *Config) setDefaults() {
	if c.StateRetention == 0 {
		c.StateRetention = streams.DefaultStateRetention
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 1000
	}
}

// ConsumerConfig is the durable consumer the projector reads JOB_EVENTS with.
func (c Config) ConsumerConfig() jetstream.ConsumerConfig {
	c.setDefaults()
	return jetstream.ConsumerConfig{
		Durable:       streams.ConsumerProjector,
		Description:   "jobwire projector: folds job events into JOB_STATE",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxAckPending: c.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: streams.EventSubject("*", "*"),
		MaxDeliver:    -1,
	}
}

// Projector is the long-running service that keeps JOB_STATE up to date.
type Projector struct {
	cfg     Config
	js      jetstream.JetStream
	log     *slog.Logger
	writer  *Writer
	applied prometheus.Counter
	skipped prometheus.Counter
	bad     prometheus.Counter
	orphans prometheus.Counter

	mu      sync.Mutex
	cc      jetstream.ConsumeContext
	stopped bool
	shards  []chan jetstream.Msg
	shardWG sync.WaitGroup
}

// New returns a Projector; reg may be nil.
func New(cfg Config, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger) *Projector {
	cfg.setDefaults()
	p := &Projector{
		cfg: cfg, js: js, log: log,
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_projector_events_applied_total", Help: "Events folded into JOB_STATE."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_projector_events_skipped_total", Help: "Events that changed nothing (redelivered, late or after a terminal state)."}),
		bad:     prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_projector_events_malformed_total", Help: "Events that could not be decoded and were terminated."}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_projector_orphans_failed_total", Help: "Submitted events without a queue message, whose jobs were failed with enqueue_failed."}),
	}
	if reg != nil {
		reg.MustRegister(p.applied, p.skipped, p.bad, p.orphans)
	}
	return p
}

// Start ensures the durable consumer and starts folding events. It returns once consuming has begun.
func (p *Projector) Start(ctx context.Context) error {
	kv, err := p.js.KeyValue(ctx, streams.BucketState)
	if err != nil {
		return fmt.Errorf("projector: open %s: %w", streams.BucketState, err)
	}
	p.writer = NewWriter(p.js, kv, p.cfg.StateRetention)
	// Opened now: the shards share the writer.
	if p.writer.stream, err = p.js.Stream(ctx, streams.KVStream(kv.Bucket())); err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	cons, err := p.js.CreateOrUpdateConsumer(ctx, streams.StreamEvents, p.cfg.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("projector: ensure consumer: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	// Events of one job share a subject and so a shard: per-job order is kept, jobs run in parallel.
	p.shards = make([]chan jetstream.Msg, projectorShards)
	for i := range p.shards {
		ch := make(chan jetstream.Msg, 128)
		p.shards[i] = ch
		p.shardWG.Add(1)
		go func() {
			defer p.shardWG.Done()
			for m := range ch {
				p.handle(m)
			}
		}()
	}
	dispatch := func(m jetstream.Msg) {
		h := fnv.New32a()
		h.Write([]byte(m.Subject()))
		p.shards[h.Sum32()%uint32(len(p.shards))] <- m
	}
	cc, err := cons.Consume(dispatch, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		p.log.Warn("projector consume", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("projector: consume: %w", err)
	}
	p.cc = cc
	p.log.Info("projector started", "consumer", streams.ConsumerProjector)
	return nil
}

// Stop stops consuming and waits for the event in hand. Safe to call twice or before Start.
func (p *Projector) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.cc != nil {
		p.cc.Drain()
		<-p.cc.Closed()
		p.cc = nil
		for _, ch := range p.shards {
			close(ch)
		}
		p.shardWG.Wait()
	}
}

// projectorShards is how many jobs the projector folds at once.
const projectorShards = 8

func (p *Projector) handle(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		p.log.Error("projector: event without metadata", "err", err)
		_ = msg.Term()
		return
	}
	ev, err := streams.DecodeEvent(msg.Data(), meta.Sequence.Stream)
	owner, jobID, ok := streams.ParseEventSubject(msg.Subject())
	if err == nil && (!ok || owner != ev.Owner || jobID != ev.JobID) {
		err = fmt.Errorf("event body names %s.%s but subject is %s", ev.Owner, ev.JobID, msg.Subject())
	}
	if err != nil {
		p.bad.Inc()
		p.log.Error("projector: malformed event terminated", "seq", meta.Sequence.Stream, "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	// Retry here rather than Nak: a later event of the same job must not be applied before this one
	// (its shard waits, the other shards go on). Nak only after a minute, e.g. NATS down for long.
	var changed bool
	retry := streams.Retry{For: time.Minute, Timeout: 10 * time.Second, Final: func(error) bool { return false },
		OnRetry: func(err error, wait time.Duration) {
			p.log.Warn("projector: apply failed, retrying", "job", ev.JobID, "seq", ev.Seq, "err", err, "in", wait)
			_ = msg.InProgress()
		}}
	err = retry.Do(context.Background(), func(ctx context.Context) (err error) {
		if err := p.reconcile(ctx, ev); err != nil {
			return err
		}
		changed, err = p.writer.Apply(ctx, ev)
		return err
	})
	if err != nil {
		p.log.Error("projector: apply failed, handing the event back", "job", ev.JobID, "seq", ev.Seq, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if changed {
		p.applied.Inc()
	} else {
		p.skipped.Inc()
	}
	if err := msg.Ack(); err != nil {
		p.log.Warn("projector: ack", "seq", ev.Seq, "err", err)
	}
}

// reconcile fails an orphan: a job.submitted event that names no JOBS message. jobwire stores a job's
// message before its submitted event, and the event names the message's sequence, so no such job can
// run; its failure (code enqueue_failed) is written only while the submitted event is still the job's
// last, and the job ends failed as soon as the projector reads the orphan. This costs nothing for a
// job with a message: a field of the event the projector decodes anyway.
func (p *Projector) reconcile(ctx context.Context, ev streams.Event) error {
	if ev.Type != streams.EventSubmitted || ev.QueueSeq != 0 {
		return nil
	}
	failed := streams.Event{V: streams.EventVersion, Type: streams.EventFailed, JobID: ev.JobID, JobType: ev.JobType,
		Owner: ev.Owner, At: time.Now().UTC(), Final: true,
		Error: &api.JobError{Code: CodeEnqueueFailed, Message: "the job has no queue message: it was never queued"}}
	_, err := streams.PublishEventAfter(ctx, p.js, failed, failed.MsgID(0, 0), ev.Seq)
	switch {
	case errors.Is(err, streams.ErrConflict):
		return nil // the job moved on (or another projector failed it first)
	case err != nil:
		return err
	}
	p.orphans.Inc()
	p.log.Warn("projector: failed an orphaned job (a submitted event without a queue message)", "job", ev.JobID)
	return nil
}

// CodeEnqueueFailed is the error code of a job whose submitted event has no queue message.
const CodeEnqueueFailed = "enqueue_failed"

// Writer applies events to a JOB_STATE-shaped bucket with compare-and-swap; one goroutine at a time
// may use it. It is shared by the live
// projector and the rebuild.
type Writer struct {
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	bucket    string
	retention time.Duration
	stream    jetstream.Stream // the bucket's stream, opened on first need
	// cache holds the state and revision this writer last wrote per running job, so folding the next
	// event needs no read. A write by anyone else makes the compare-and-swap fail: the entry is dropped
	// and the key read again.
	mu    sync.Mutex
	cache map[string]cachedState
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

// Apply folds ev into the job's stored state and writes it back if it changed. A concurrent write
// (another projector, a rebuild) makes the compare-and-swap fail; Apply then re-reads and retries.
func (w *Writer) Apply(ctx context.Context, ev streams.Event) (bool, error) {
	key := streams.StateKey(ev.Owner, ev.JobID)
	for attempt := 0; attempt < 5; attempt++ {
		var st api.JobState
		var rev uint64
		w.mu.Lock()
		c, cached := w.cache[key]
		w.mu.Unlock()
		var entry jetstream.KeyValueEntry
		var err error
		if !cached || attempt > 0 {
			entry, err = w.kv.Get(ctx, key)
		}
		switch {
		case cached && attempt == 0:
			st, rev = c.st, c.rev
		case err == nil:
			if st, err = streams.DecodeState(entry.Value(), 0); err != nil {
				return false, fmt.Errorf("state of %s: %w", key, err)
			}
			rev = entry.Revision()
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// A deleted or expired key keeps a marker as its last message: CAS against that.
			if rev, err = w.lastSeq(ctx, key); err != nil {
				return false, err
			}
			if ev.Type != streams.EventSubmitted {
				// The state expired (or was lost) but the job goes on: start from its history.
				if st, err = w.history(ctx, ev); err != nil {
					return false, err
				}
			}
		default:
			return false, fmt.Errorf("read state of %s: %w", key, err)
		}
		if !streams.Apply(&st, ev) {
			return false, nil
		}
		st.Revision = 0
		newRev, err := w.put(ctx, key, st, rev)
		w.mu.Lock()
		if err == nil && !st.State.Terminal() {
			if w.cache == nil || len(w.cache) >= maxCached {
				w.cache = map[string]cachedState{}
			}
			w.cache[key] = cachedState{st: st, rev: newRev}
		} else {
			delete(w.cache, key)
		}
		w.mu.Unlock()
		if err == nil {
			return true, nil
		}
		if !streams.IsWrongLastSequence(err) {
			return false, err
		}
	}
	return false, fmt.Errorf("write state of %s: too many concurrent updates", key)
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
	if w.stream == nil {
		s, err := w.js.Stream(ctx, streams.KVStream(w.bucket))
		if err != nil {
			return 0, fmt.Errorf("open bucket stream: %w", err)
		}
		w.stream = s
	}
	m, err := w.stream.GetLastMsgForSubject(ctx, streams.KVSubject(w.bucket, key))
	switch {
	case err == nil:
		return m.Sequence, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, nil
	}
	return 0, fmt.Errorf("read last revision of %s: %w", key, err)
}

func (w *Writer) put(ctx context.Context, key string, st api.JobState, lastRev uint64) (uint64, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("encode state: %w", err)
	}
	m := nats.NewMsg(streams.KVSubject(w.bucket, key))
	m.Data = data
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(lastRev)}
	if st.State.Terminal() && w.retention > 0 {
		// KV Put would clear a TTL: publish the value ourselves with one, still compare-and-swap.
		opts = append(opts, jetstream.WithMsgTTL(w.retention))
	}
	ack, err := w.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return 0, fmt.Errorf("write state of %s: %w", key, err)
	}
	return ack.Sequence, nil
}
