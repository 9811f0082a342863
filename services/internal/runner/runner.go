package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Config configures a Runner for one job type.
type Config struct {
	// JobType is the type this runner serves (its consumer is streams.WorkerConsumer(JobType)).
	JobType string
	// Concurrency is how many jobs run at once in this process (JOBWIRE_WORKER_CONCURRENCY). Default 4.
	Concurrency int
	// AckWait is the lease of a job: without an ack or a progress beat within it, the job is redelivered
	// to another worker. Default 30 s.
	AckWait time.Duration
	// MaxAttempts before a job fails for good and goes to JOBS_DLQ. Default 5.
	MaxAttempts int
	// BackoffBase and BackoffMax bound the exponential backoff (with full jitter) between attempts.
	// Defaults 1 s and 5 min.
	BackoffBase, BackoffMax time.Duration
	// ProgressInterval is the least time between two progress events of one job. Default 100 ms.
	ProgressInterval time.Duration
	// ShutdownGrace is how long Stop lets running jobs finish before handing them back. Default 25 s.
	ShutdownGrace time.Duration
	// Name identifies this worker in job.started events. Default the host name and pid.
	Name string
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = 100 * time.Millisecond
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 25 * time.Second
	}
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	switch {
	case !streams.ValidJobType(c.JobType):
		return fmt.Errorf("invalid job type %q", c.JobType)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1")
	case c.AckWait < time.Second:
		return fmt.Errorf("ack wait must be at least 1s")
	case c.MaxAttempts < 1:
		return fmt.Errorf("max attempts must be at least 1")
	}
	return nil
}

// ConsumerConfig is the durable pull consumer of this job type's workers.
func (c Config) ConsumerConfig() jetstream.ConsumerConfig {
	c.SetDefaults()
	return jetstream.ConsumerConfig{
		Durable:       streams.WorkerConsumer(c.JobType),
		Description:   "jobwire workers of " + c.JobType,
		FilterSubject: streams.QueueSubject(c.JobType),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		// Attempts are counted by the runner (NumDelivered), which ends a job that crashed its worker
		// on every attempt; the server never parks a message on its own.
		MaxDeliver:    -1,
		MaxAckPending: 10000,
	}
}

// Runner fetches and runs jobs of one type.
type Runner struct {
	cfg     Config
	js      jetstream.JetStream
	nc      *nats.Conn
	handler Handler
	log     *slog.Logger
	metrics *Metrics
	events  jetstream.Stream

	slots   chan struct{}
	running sync.WaitGroup

	mu               sync.Mutex
	active           map[string]*activeJob // by job id
	cancel           context.CancelFunc    // stops fetching
	loopDone         chan struct{}
	cancelSub        *nats.Subscription
	started, stopped bool
}

type activeJob struct {
	cancel   context.CancelCauseFunc
	shutdown bool
}

// errCancelled is the cause of a job context cancelled by a user's request.
var errCancelled = errors.New("cancelled by request")

// errShutdown is the cause of a job context cancelled because the worker stops.
var errShutdown = errors.New("worker shutting down")

// New returns a Runner for cfg.JobType with handler h.
func New(cfg Config, nc *nats.Conn, js jetstream.JetStream, h Handler, m *Metrics, log *slog.Logger) (*Runner, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("runner config: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Runner{cfg: cfg, nc: nc, js: js, handler: h, log: log.With("job_type", cfg.JobType), metrics: m,
		slots: make(chan struct{}, cfg.Concurrency), active: map[string]*activeJob{}}, nil
}

// Start ensures the consumer, subscribes to cancel requests and starts the fetch loop.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return nil
	}
	events, err := r.js.Stream(ctx, streams.StreamEvents)
	if err != nil {
		return fmt.Errorf("runner: open %s: %w", streams.StreamEvents, err)
	}
	r.events = events
	cons, err := r.js.CreateOrUpdateConsumer(ctx, streams.StreamJobs, r.cfg.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("runner: ensure consumer %s: %w", streams.WorkerConsumer(r.cfg.JobType), err)
	}
	// One subscription per process for every cancel request; only jobs running here react.
	sub, err := r.nc.Subscribe(streams.CancelWildcard, r.onCancel)
	if err != nil {
		return fmt.Errorf("runner: subscribe to cancel requests: %w", err)
	}
	r.cancelSub = sub
	loopCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.loopDone = make(chan struct{})
	r.started = true
	go r.fetchLoop(loopCtx, cons)
	r.log.Info("worker started", "consumer", streams.WorkerConsumer(r.cfg.JobType), "concurrency", r.cfg.Concurrency)
	return nil
}

// Stop stops fetching, lets running jobs finish for up to ShutdownGrace, then cancels the rest and hands
// them back to the queue (Nak) so another worker takes them at once. Safe to call twice or before Start.
func (r *Runner) Stop() {
	r.mu.Lock()
	if r.stopped || !r.started {
		r.stopped = true
		r.mu.Unlock()
		return
	}
	r.stopped = true
	r.cancel()
	r.mu.Unlock()
	<-r.loopDone

	done := make(chan struct{})
	go func() { r.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.cfg.ShutdownGrace):
		r.mu.Lock()
		for _, a := range r.active {
			a.shutdown = true
			a.cancel(errShutdown)
		}
		r.mu.Unlock()
		<-done
	}
	if r.cancelSub != nil {
		_ = r.cancelSub.Unsubscribe()
	}
	r.log.Info("worker stopped")
}

// fetchLoop asks the server for exactly as many jobs as there are free slots, so no job waits in a
// local buffer while its AckWait runs.
func (r *Runner) fetchLoop(ctx context.Context, cons jetstream.Consumer) {
	defer close(r.loopDone)
	for ctx.Err() == nil {
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1
		for free < cap(r.slots) {
			select {
			case r.slots <- struct{}{}:
				free++
				continue
			default:
			}
			break
		}
		fetchCtx, cancelFetch := context.WithTimeout(ctx, 2*time.Second)
		batch, err := cons.Fetch(free, jetstream.FetchContext(fetchCtx))
		if err != nil {
			cancelFetch()
			r.release(free)
			if ctx.Err() == nil {
				r.log.Warn("fetch jobs", "err", err)
				sleepCtx(ctx, 250*time.Millisecond)
			}
			continue
		}
		for msg := range batch.Messages() {
			free--
			r.running.Add(1)
			go func() {
				defer r.running.Done()
				defer func() { <-r.slots }()
				r.process(msg)
			}()
		}
		cancelFetch()
		r.release(free)
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			r.log.Warn("fetch jobs", "err", err)
			sleepCtx(ctx, 250*time.Millisecond)
		}
	}
}

func (r *Runner) release(n int) {
	for range n {
		<-r.slots
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (r *Runner) onCancel(m *nats.Msg) {
	owner, jobID, ok := parseCancelSubject(m.Subject)
	if !ok {
		return
	}
	r.mu.Lock()
	a := r.active[owner+"."+jobID]
	r.mu.Unlock()
	if a != nil {
		a.cancel(errCancelled)
	}
}

func parseCancelSubject(subject string) (string, string, bool) {
	const prefix = "jobs.cancel."
	if len(subject) <= len(prefix) {
		return "", "", false
	}
	return streams.ParseStateKey(subject[len(prefix):])
}

func backoff(cfg Config, attempt int) time.Duration {
	d := cfg.BackoffBase << min(attempt-1, 20)
	if d <= 0 || d > cfg.BackoffMax {
		d = cfg.BackoffMax
	}
	// Full jitter keeps retries of many failed jobs from arriving together.
	return d/2 + rand.N(d/2+1)
}

// result helpers
func jobError(code string, err error) *api.JobError {
	return &api.JobError{Code: code, Message: err.Error()}
}

func marshalResult(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
