// Package workertest runs jobwire workers in a Go test, the way rivertest does for River: a real
// embedded NATS server with the jobwire topology, a worker serving your job types, and helpers to
// submit jobs and await their terminal state, all folded from the job's events as jobwire's projector
// would. Nothing is mocked.
//
//	func TestCount(t *testing.T) {
//		env := workertest.New(t)
//		env.Start(t, worker.Config{}, countType)
//		id := env.Submit(t, "demo.count", map[string]any{"n": 3})
//		st := env.Await(t, id)
//		if st.State != api.StateCompleted { t.Fatalf("%+v", st) }
//	}
package workertest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
	"github.com/jobwire/jobwire/worker"
)

// Owner is the owner token of the jobs Submit makes unless WithOwner says otherwise.
const Owner = "test"

// DefaultTimeout bounds Await and AwaitState.
const DefaultTimeout = 30 * time.Second

// Env is a NATS server with the jobwire topology, for one test.
type Env struct {
	Server *streamstest.Server
	NC     *nats.Conn
	JS     jetstream.JetStream
	events jetstream.Stream
}

// New starts an embedded NATS server on random loopback ports with its store in t.TempDir(), creates
// the jobwire topology, and shuts it all down when the test ends.
func New(t testing.TB) *Env {
	t.Helper()
	srv := streamstest.RunServer(t)
	nc, js := srv.Ensure(t)
	events, err := js.Stream(context.Background(), streams.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Server: srv, NC: nc, JS: js, events: events}
}

// Logger is silent unless JOBWIRE_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("JOBWIRE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start runs a worker serving types until the test ends. Zero fields of cfg take test-friendly
// values: a quiet logger, 20 ms progress interval and backoff, a 1 s shutdown grace.
func (e *Env) Start(t testing.TB, cfg worker.Config, types ...worker.JobType) *worker.Worker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = Logger()
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = time.Second
	}
	if cfg.Defaults.ProgressInterval == 0 {
		cfg.Defaults.ProgressInterval = 20 * time.Millisecond
	}
	if cfg.Defaults.BackoffBase == 0 {
		cfg.Defaults.BackoffBase = 20 * time.Millisecond
	}
	w, err := worker.New(e.NC, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range types {
		if err := w.Register(typ); err != nil {
			t.Fatal(err)
		}
	}
	Run(t, w)
	return w
}

// Run starts w, whose types are registered, and stops it when the test ends.
func Run(t testing.TB, w *worker.Worker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("stop worker: %v", err)
		}
	})
}

// Option changes a job that Submit makes, or names the owner of the job Cancel, Await and History look at.
type Option func(*streams.JobMessage)

// WithOwner submits the job for another owner token.
func WithOwner(owner string) Option { return func(m *streams.JobMessage) { m.Owner = owner } }

// WithRunAt delays the job's start until at.
func WithRunAt(at time.Time) Option {
	return func(m *streams.JobMessage) { at := at.UTC(); m.RunAt = &at }
}

// WithTimeout gives the job its own timeout.
func WithTimeout(d time.Duration) Option { return func(m *streams.JobMessage) { m.Timeout = d } }

// WithMaxAttempts gives the job its own attempt limit (at most the type's).
func WithMaxAttempts(n int) Option { return func(m *streams.JobMessage) { m.MaxAttempts = n } }

// Submit queues a job of jobType with input (any value, encoded as JSON; a json.RawMessage as it is)
// the way the gateway does (streams.Submit), without validating it, and returns its id.
func (e *Env) Submit(t testing.TB, jobType string, input any, opts ...Option) string {
	t.Helper()
	raw, ok := input.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(input); err != nil {
			t.Fatalf("encode input: %v", err)
		}
	}
	now := time.Now().UTC()
	msg := streams.JobMessage{V: 1, JobID: streams.NewJobID(now), Type: jobType, Owner: Owner, Input: raw, CreatedAt: now}
	for _, o := range opts {
		o(&msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Submit(ctx, e.JS, msg, now); err != nil {
		t.Fatalf("submit: %v", err)
	}
	return msg.JobID
}

// Cancel asks for a job to stop, as POST /v1/jobs/{id}/cancel does, and fails the test if it cannot.
func (e *Env) Cancel(t testing.TB, jobID string, opts ...Option) {
	t.Helper()
	if err := e.TryCancel(jobID, opts...); err != nil {
		t.Fatalf("cancel %s: %v", jobID, err)
	}
}

// TryCancel asks for a job to stop (streams.Cancel) and returns its error: streams.ErrJobFinished for
// a job that had ended, or that another cancel ended first.
func (e *Env) TryCancel(jobID string, opts ...Option) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := streams.Cancel(ctx, e.JS, e.events, ownerOf(opts), jobID, time.Now())
	return err
}

// Await waits up to DefaultTimeout for the job to reach a terminal state and returns it.
func (e *Env) Await(t testing.TB, jobID string, opts ...Option) api.JobState {
	t.Helper()
	return e.AwaitState(t, jobID, func(st api.JobState) bool { return st.State.Terminal() }, opts...)
}

// AwaitState waits up to DefaultTimeout until the job's state, folded from its events, satisfies
// cond, and returns that state.
func (e *Env) AwaitState(t testing.TB, jobID string, cond func(api.JobState) bool, opts ...Option) api.JobState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	cons, err := e.events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{streams.EventSubject(ownerOf(opts), jobID)}})
	if err != nil {
		t.Fatalf("await %s: %v", jobID, err)
	}
	var st api.JobState
	for {
		m, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("await %s: %v (state so far: %+v)", jobID, err, st)
		}
		meta, err := m.Metadata()
		if err != nil {
			t.Fatalf("await %s: %v", jobID, err)
		}
		if ev, err := streams.DecodeEvent(m.Data(), meta.Sequence.Stream); err == nil {
			streams.Apply(&st, ev)
		}
		if cond(st) {
			return st
		}
	}
}

// History returns the job's events so far, in order.
func (e *Env) History(t testing.TB, jobID string, opts ...Option) []streams.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raws, _, err := streams.ReadEvents(ctx, e.JS, ownerOf(opts), jobID, 0, 100000)
	if err != nil {
		t.Fatalf("history of %s: %v", jobID, err)
	}
	return streams.DecodeEvents(raws)
}

// ownerOf is the owner token that opts name (Owner unless WithOwner).
func ownerOf(opts []Option) string {
	msg := streams.JobMessage{Owner: Owner}
	for _, o := range opts {
		o(&msg)
	}
	return msg.Owner
}
