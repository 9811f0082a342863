package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/streams"
)

// SDK names this implementation of the worker protocol in the registry.
const SDK = "go"

// Worker runs the job types registered with it in this process: it takes jobs from their JOBS queues
// (never more than it can run now), writes their events to JOB_EVENTS and registers the types in
// JOB_TYPES, where gateways find them.
//
// Delivery is at least once: a job leaves its queue only when the worker acks it, and it acks only
// after the job's terminal event is stored. A job whose worker dies is redelivered to another after its
// lease (AckWait); a lost ack makes a finished job's message come back, and the worker then sees its
// terminal event and runs nothing. Handlers must therefore make their effects idempotent.
type Worker struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	id      string
	metrics *metrics

	mu        sync.Mutex
	runners   []*runner
	regErr    error
	active    map[string]*attempt // running here, by streams.StateKey(owner, job id)
	events    jetstream.Stream
	cancels   jetstream.Stream
	registry  *presence
	cancelSub *nats.Subscription
	started   bool
	stopped   bool
	// handBack is set when Stop's grace ran out: every attempt, also one still starting, is cancelled.
	handBack bool
}

// New returns a Worker on connection nc. Register job types, then Start it.
func New(nc *nats.Conn, cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("worker: jetstream: %w", err)
	}
	return &Worker{cfg: cfg, nc: nc, js: js, log: cfg.Logger, id: streams.NewWorkerID(time.Now()),
		metrics: newMetrics(), active: map[string]*attempt{}}, nil
}

// ID is this worker's id in the registry (a ULID, new for every process).
func (w *Worker) ID() string { return w.id }

// Collectors returns the worker's Prometheus collectors (jobwire_jobs_started_total,
// jobwire_jobs_finished_total, jobwire_jobs_retried_total, jobwire_job_duration_seconds,
// jobwire_jobs_running, jobwire_progress_events_total, ...), for the caller to register.
func (w *Worker) Collectors() []prometheus.Collector { return w.metrics.collectors() }

// Register adds a job type, a Type[T, R] value, before Start. It checks the type at once: its name,
// its schema (which must compile, at most 64 KiB) and its options; Start refuses to run a worker with a
// type that failed to register.
func (w *Worker) Register(t JobType) error {
	err := w.register(t)
	if err != nil {
		w.mu.Lock()
		w.regErr = errors.Join(w.regErr, err)
		w.mu.Unlock()
	}
	return err
}

func (w *Worker) register(t JobType) error {
	d, err := t.definition()
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	d.options = d.options.withDefaults(w.cfg.Defaults)
	if err := d.options.Validate(); err != nil {
		return fmt.Errorf("register %s: %w", d.name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return fmt.Errorf("register %s: the worker has started", d.name)
	}
	for _, r := range w.runners {
		if r.def.name == d.name {
			return fmt.Errorf("register %s: registered twice", d.name)
		}
	}
	w.runners = append(w.runners, &runner{w: w, def: d, opts: d.options, log: w.log.With("job_type", d.name)})
	w.metrics.serve(d.name)
	return nil
}

// Start registers the types in JOB_TYPES and starts taking jobs. It waits, until ctx ends, for the
// jobwire topology to exist (jobwire's services create it; `jobwire admin ensure` too). It returns an
// error for a type that failed to register, or when no type is registered.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.regErr != nil:
		return w.regErr
	case len(w.runners) == 0:
		return errors.New("worker: no job type registered")
	case w.started || w.stopped:
		return errors.New("worker: Start called twice")
	}
	if err := w.open(ctx); err != nil {
		return err
	}
	// One subscription per process for every cancel request; only jobs running here react.
	sub, err := w.nc.Subscribe(streams.CancelWildcard, w.onCancel)
	if err != nil {
		return fmt.Errorf("worker: subscribe to cancel requests: %w", err)
	}
	w.cancelSub = sub
	for _, r := range w.runners {
		if err := r.start(ctx); err != nil {
			w.stopRunners()
			_ = sub.Unsubscribe()
			return err
		}
	}
	if err := w.registry.start(ctx); err != nil {
		w.stopRunners()
		_ = sub.Unsubscribe()
		return err
	}
	w.started = true
	w.log.Info("worker started", "worker", w.cfg.Name, "id", w.id, "types", len(w.runners))
	return nil
}

// open finds the streams and bucket the worker uses, retrying while they do not exist yet.
func (w *Worker) open(ctx context.Context) error {
	return streams.Retry{Wait: time.Second, MaxWait: 10 * time.Second, Final: func(error) bool { return false },
		OnRetry: func(err error, wait time.Duration) {
			w.log.Warn("jobwire topology not found, retrying (is jobwire running against this NATS?)", "err", err, "in", wait)
		}}.Do(ctx, func(ctx context.Context) error {
		events, err := w.js.Stream(ctx, streams.StreamEvents)
		if err != nil {
			return fmt.Errorf("worker: open %s: %w", streams.StreamEvents, err)
		}
		cancels, err := w.js.Stream(ctx, streams.StreamCancels)
		if err != nil {
			return fmt.Errorf("worker: open %s: %w", streams.StreamCancels, err)
		}
		kv, err := w.js.KeyValue(ctx, streams.BucketJobTypes)
		if err != nil {
			return fmt.Errorf("worker: open %s: %w", streams.BucketJobTypes, err)
		}
		w.events, w.cancels = events, cancels
		w.registry = newPresence(w, kv)
		return nil
	})
}

// Stop stops taking jobs and removes this worker from the registry at once, lets running jobs finish
// for up to Config.ShutdownGrace, then cancels the rest (ErrStopping) and hands them back to the queue,
// where another worker takes them without waiting for their lease. It returns when every handler has
// returned, or with ctx's error when ctx ends first. Safe to call twice and before Start.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	if w.stopped || !w.started {
		w.stopped = true
		w.mu.Unlock()
		return nil
	}
	w.stopped = true
	w.mu.Unlock()
	w.registry.stop()
	w.stopRunners()
	err := w.drain(ctx)
	_ = w.cancelSub.Unsubscribe()
	w.log.Info("worker stopped", "worker", w.cfg.Name)
	return err
}

func (w *Worker) stopRunners() {
	for _, r := range w.runners {
		r.stopFetching()
	}
}

// drain waits for running jobs: the grace, then cancellation and hand-back.
func (w *Worker) drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		for _, r := range w.runners {
			r.running.Wait()
		}
		close(done)
	}()
	grace := time.NewTimer(w.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	w.mu.Lock()
	w.handBack = true
	for _, a := range w.active {
		a.cancel(ErrStopping)
	}
	w.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("worker stop: handlers still running: %w", ctx.Err())
	}
}

func (w *Worker) onCancel(m *nats.Msg) {
	owner, jobID, ok := streams.ParseCancelSubject(m.Subject)
	if !ok {
		return
	}
	w.mu.Lock()
	a := w.active[streams.StateKey(owner, jobID)]
	w.mu.Unlock()
	if a != nil && streams.DecodeCancelRequest(m.Data).AppliesSince(a.job.SinceSeq) {
		a.cancel(ErrCancelled)
	}
}

// track records a running attempt so cancel requests and Stop find it; untrack forgets it.
func (w *Worker) track(a *attempt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.active[streams.StateKey(a.job.Owner, a.job.JobID)] = a
	if w.handBack {
		a.cancel(ErrStopping)
	}
}

func (w *Worker) untrack(a *attempt) {
	w.mu.Lock()
	delete(w.active, streams.StateKey(a.job.Owner, a.job.JobID))
	w.mu.Unlock()
}
