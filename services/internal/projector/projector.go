// Package projector folds JOB_EVENTS into the JOB_STATE bucket: one durable consumer, compare-and-swap
// writes, idempotent on redelivery. A finished job's state is written with a per-message TTL, so it
// expires from the bucket after the retention and watchers receive a delete marker.
package projector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

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
	folded  prometheus.Histogram

	mu      sync.Mutex
	batches *streams.Batches
	stopped bool
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
		folded: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "jobwire_projector_batch_events",
			Help: "Events per batch the projector folds at once (one JOB_STATE write per job per batch).", Buckets: prometheus.ExponentialBuckets(1, 4, 6)}),
	}
	if reg != nil {
		reg.MustRegister(p.applied, p.skipped, p.bad, p.orphans, p.folded)
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
	batches, err := streams.ConsumeBatches(cons, maxBatch, p.foldBatch, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		p.log.Warn("projector consume", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	p.batches = batches
	p.log.Info("projector started", "consumer", streams.ConsumerProjector)
	return nil
}

// Stop stops consuming and waits for the events in hand. Safe to call twice or before Start.
func (p *Projector) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.batches != nil {
		p.batches.Stop()
		p.batches = nil
	}
}

// maxBatch bounds the events the projector folds at once: each time, every event that has arrived (up
// to maxBatch). An idle projector folds one event at a time, with no added wait; a busy one folds many,
// and a job with several events among them is written once.
const maxBatch = 512

// jobEvents are the events of one job in a batch, with their messages, in stream order.
type jobEvents struct {
	key    string
	events []streams.Event
	msgs   []jetstream.Msg
}

// foldBatch folds a batch: per job, its events into one compare-and-swap write; every write of the
// batch pipelined; each message acked once its job's write is stored. A job whose write fails (another
// writer moved it, NATS unavailable), or that needs reconciling, is done event by event instead (handle).
func (p *Projector) foldBatch(batch []jetstream.Msg) {
	p.folded.Observe(float64(len(batch)))
	jobs := p.groupByJob(batch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	folds, writes := p.foldJobs(ctx, jobs)
	spans := traceWrites(jobs, folds, writes)
	streams.PublishAll(ctx, p.js, writes)
	endWrites(spans, writes)
	for i, j := range jobs {
		if writes[i].Err != nil {
			p.writer.forget(j.key)
			for k, m := range j.msgs {
				p.handle(m, j.events[k])
			}
			continue
		}
		if folds[i].changed {
			p.writer.commit(folds[i], writes[i].Seq, nil)
		}
		for k, m := range j.msgs {
			p.settled(m, j.events[k].Seq, folds[i].applied[k])
		}
	}
}

// maxReads bounds the states foldJobs reads at once (of jobs this projector has not cached).
const maxReads = 16

// foldJobs folds each job's events into its state, reading the states it has not cached maxReads at a
// time, and returns the folds with their writes (no write for a job its events did not change; an
// error for a job to do event by event).
func (p *Projector) foldJobs(ctx context.Context, jobs []*jobEvents) ([]fold, []streams.Pipelined) {
	folds := make([]fold, len(jobs))
	writes := make([]streams.Pipelined, len(jobs))
	one := func(i int) {
		var err error
		j := jobs[i]
		if folds[i], err = p.writer.fold(ctx, j.key, j.events); err == nil && needsReconcile(j.events) {
			err = errReconcile
		}
		switch {
		case err != nil:
			writes[i].Err = err
		case folds[i].changed:
			writes[i].Msg, writes[i].Opts, writes[i].Err = p.writer.putMsg(folds[i])
		}
	}
	sem := make(chan struct{}, maxReads)
	var wg sync.WaitGroup
	for i, j := range jobs {
		if p.writer.cached(j.key) {
			one(i) // no read: no goroutine either
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			one(i)
		}()
	}
	wg.Wait()
	return folds, writes
}

// errReconcile sends a job with an orphaned submitted event down the event-by-event path.
var errReconcile = errors.New("the job needs reconciling")

func needsReconcile(events []streams.Event) bool {
	for _, ev := range events {
		if ev.Type == streams.EventSubmitted && ev.QueueSeq == 0 {
			return true
		}
	}
	return false
}

// groupByJob decodes the batch's events (terminating malformed ones) and groups them by job, in the
// order each job first appears; a job's events are sorted by stream sequence.
func (p *Projector) groupByJob(batch []jetstream.Msg) []*jobEvents {
	var jobs []*jobEvents
	byKey := map[string]*jobEvents{}
	for _, m := range batch {
		ev, ok := p.decode(m)
		if !ok {
			continue
		}
		key := streams.StateKey(ev.Owner, ev.JobID)
		j := byKey[key]
		if j == nil {
			j = &jobEvents{key: key}
			byKey[key] = j
			jobs = append(jobs, j)
		}
		j.events, j.msgs = append(j.events, ev), append(j.msgs, m)
	}
	for _, j := range jobs {
		if !slices.IsSortedFunc(j.events, bySeq) {
			idx := make([]int, len(j.events))
			for i := range idx {
				idx[i] = i
			}
			slices.SortStableFunc(idx, func(a, b int) int { return bySeq(j.events[a], j.events[b]) })
			evs, msgs := make([]streams.Event, len(idx)), make([]jetstream.Msg, len(idx))
			for i, k := range idx {
				evs[i], msgs[i] = j.events[k], j.msgs[k]
			}
			j.events, j.msgs = evs, msgs
		}
	}
	return jobs
}

func bySeq(a, b streams.Event) int { return cmp.Compare(a.Seq, b.Seq) }

// decode reads a message's event; a malformed one (or one whose body names another job than its
// subject) is terminated.
func (p *Projector) decode(msg jetstream.Msg) (streams.Event, bool) {
	meta, err := msg.Metadata()
	if err != nil {
		p.log.Error("projector: event without metadata", "err", err)
		_ = msg.Term()
		return streams.Event{}, false
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
		return streams.Event{}, false
	}
	return ev, true
}

// handle folds one event on its own: reconciled, written (re-reading on a concurrent write), and
// acked. It retries rather than Nak: a later event of the same job must not be applied before this one.
// Nak only after a minute, e.g. NATS down for long.
func (p *Projector) handle(msg jetstream.Msg, ev streams.Event) {
	var changed bool
	retry := streams.Retry{For: time.Minute, Timeout: 10 * time.Second, Final: func(error) bool { return false },
		OnRetry: func(err error, wait time.Duration) {
			p.log.Warn("projector: apply failed, retrying", "job", ev.JobID, "seq", ev.Seq, "err", err, "in", wait)
			_ = msg.InProgress()
		}}
	err := retry.Do(context.Background(), func(ctx context.Context) (err error) {
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
	p.settled(msg, ev.Seq, changed)
}

// settled acks an event whose effect is stored, and counts it.
func (p *Projector) settled(msg jetstream.Msg, seq uint64, changed bool) {
	if changed {
		p.applied.Inc()
	} else {
		p.skipped.Inc()
	}
	if err := msg.Ack(); err != nil {
		p.log.Warn("projector: ack", "seq", seq, "err", err)
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
