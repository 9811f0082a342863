package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/worker"
	"github.com/jobwire/jobwire/worker/workertest"
)

// A handler that ignores its context loses its slot after the stop grace: the attempt is recorded as
// timed out, the next job runs, and a metric counts the abandoned handler.
func TestAHandlerThatIgnoresItsContextIsAbandoned(t *testing.T) {
	env := workertest.New(t)
	release := make(chan struct{})
	defer close(release)
	w := env.Start(t, worker.Config{Defaults: worker.TypeOptions{Concurrency: 1, Timeout: time.Second, StopGrace: 200 * time.Millisecond, MaxAttempts: 1}},
		rawType(func(_ context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
			if string(job.Input) == `"hang"` {
				<-release // ignores ctx
			}
			return json.RawMessage(`{}`), nil
		}))
	hung := env.Submit(t, testType, "hang")
	next := env.Submit(t, testType, "ok")
	st := env.Await(t, hung)
	if st.State != api.StateFailed || st.Error.Code != worker.CodeTimeout {
		t.Fatalf("hung job: %+v %+v", st, st.Error)
	}
	if st := env.Await(t, next); st.State != api.StateCompleted {
		t.Fatalf("the next job on the freed slot: %+v", st)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.Collectors()...)
	if n := testutil.ToFloat64(mustCounter(t, reg, "jobwire_handlers_abandoned_total")); n != 1 {
		t.Fatalf("%v abandoned handlers counted", n)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			v := 0.0
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name}, func() float64 { return v })
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func TestAJobsOwnTimeoutAndAttempts(t *testing.T) {
	env := workertest.New(t)
	env.Start(t, worker.Config{Defaults: worker.TypeOptions{MaxAttempts: 5}}, rawType(func(ctx context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
		if string(job.Input) == `"sleep"` {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("attempt %d of %d fails", job.Attempt, job.MaxAttempts)
	}))
	st := env.Await(t, env.Submit(t, testType, "sleep", workertest.WithTimeout(time.Second), workertest.WithMaxAttempts(1)))
	if st.State != api.StateFailed || st.Error.Code != worker.CodeTimeout || st.Attempt != 1 {
		t.Fatalf("a 1s timeout: %+v %+v", st, st.Error)
	}
	st = env.Await(t, env.Submit(t, testType, "fail", workertest.WithMaxAttempts(2)))
	if st.State != api.StateFailed || st.Attempt != 2 || st.Error.Message != "attempt 2 of 2 fails" {
		t.Fatalf("2 attempts of the type's 5: %+v %+v", st, st.Error)
	}
}

// A retry waiting out its backoff holds no consumer slot: with MaxInFlight 4 and 20 jobs waiting for a
// retry, a new job starts at once.
func TestRetriesWaitingOutTheirBackoffHoldNoSlot(t *testing.T) {
	env := workertest.New(t)
	var failures atomic.Int32
	env.Start(t, worker.Config{Defaults: worker.TypeOptions{MaxInFlight: 4, Concurrency: 4}}, rawType(func(_ context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
		if string(job.Input) == `"fail"` {
			failures.Add(1)
			return nil, worker.RetryAfter(time.Hour, errors.New("upstream down"))
		}
		return json.RawMessage(`{}`), nil
	}))
	var failing []string
	for range 20 {
		failing = append(failing, env.Submit(t, testType, "fail"))
	}
	for _, id := range failing {
		env.AwaitState(t, id, func(s api.JobState) bool { return s.State == api.StateQueued && s.Attempt == 1 && s.Error != nil })
	}
	cons, err := env.JS.Consumer(context.Background(), streams.StreamJobs, streams.WorkerConsumer(testType))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil || info.NumAckPending != 0 {
		t.Fatalf("%d messages pending while every job waits for its retry: %v", info.NumAckPending, err)
	}
	begin := time.Now()
	if st := env.Await(t, env.Submit(t, testType, "ok")); st.State != api.StateCompleted {
		t.Fatalf("%+v", st)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("a new job took %s behind 20 waiting retries", d)
	}
	if n := failures.Load(); n != 20 {
		t.Fatalf("%d failed attempts, want 20 (one each: the retries wait an hour)", n)
	}
}

// A cancel sent while no worker holds a running job (its worker died) is kept: the next worker to take
// the job ends it cancelled without running it again.
func TestACancelWhileNoWorkerHoldsTheJobIsKept(t *testing.T) {
	env := workertest.New(t)
	started := make(chan string, 4)
	id := runThenVanish(t, env, started)
	env.Cancel(t, id)
	env.Start(t, worker.Config{Defaults: worker.TypeOptions{AckWait: 2 * time.Second}}, blockUntilCancelled(started))
	st := env.Await(t, id)
	if st.State != api.StateCancelled {
		t.Fatalf("%+v", st)
	}
	select {
	case <-started:
		t.Fatal("the cancelled job ran again")
	default:
	}
	starts := 0
	for _, ev := range env.History(t, id) {
		if ev.Type == streams.EventStarted {
			starts++
		}
	}
	if starts != 1 {
		t.Fatalf("%d started events, want 1", starts)
	}
}

// A worker that misses a cancel's broadcast learns it at its next lease renewal. The worker's own
// connection publishes the request with NoEcho, so the broadcast never reaches it.
func TestAMissedCancelIsFoundAtTheNextLeaseRenewal(t *testing.T) {
	env := workertest.New(t)
	nc, err := nats.Connect(env.Server.URL(), nats.NoEcho())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	started := make(chan string, 1)
	w, err := worker.New(nc, worker.Config{Logger: workertest.Logger(), Defaults: worker.TypeOptions{AckWait: 1500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Register(blockUntilCancelled(started)); err != nil {
		t.Fatal(err)
	}
	workertest.Run(t, w)
	id := env.Submit(t, testType, 1)
	<-started
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	events, err := js.Stream(context.Background(), streams.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Cancel(context.Background(), js, events, workertest.Owner, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	if st := env.Await(t, id); st.State != api.StateCancelled || string(st.Result) != `{"done":3}` {
		t.Fatalf("%+v", st)
	}
}

// Racing a job that completes at once, cancels never relabel it; concurrent cancels of a queued job
// make exactly one transition, and every caller gets done or "already finished", never an error.
func TestCancelStormsMakeOneTransition(t *testing.T) {
	env := workertest.New(t)
	queued := env.Submit(t, testType, 1) // no worker yet
	if errs := cancelStorm(env, queued, 20); errs[nil] != 1 || errs[streams.ErrJobFinished] != 19 {
		t.Fatalf("cancels of a queued job: %v", errs)
	}
	cancelled := 0
	for _, ev := range env.History(t, queued) {
		if ev.Type == streams.EventCancelled {
			cancelled++
		}
	}
	if cancelled != 1 {
		t.Fatalf("%d cancelled events", cancelled)
	}
	env.Start(t, worker.Config{}, rawType(ok))
	for range 10 {
		id := env.Submit(t, testType, 1)
		errs := cancelStorm(env, id, 10)
		st := env.Await(t, id)
		if len(errs) > 2 || errs[nil]+errs[streams.ErrJobFinished] != 10 {
			t.Fatalf("cancels racing completion: %v", errs)
		}
		if st.State == api.StateCancelled && st.StartedAt != nil && st.Result != nil {
			t.Fatalf("a completed job was relabelled: %+v", st)
		}
	}
	// The worker took the cancelled job's message before the later ones: it never started it.
	for _, ev := range env.History(t, queued) {
		if ev.Type == streams.EventStarted {
			t.Fatal("a job cancelled while queued started once a worker came")
		}
	}
}

func cancelStorm(env *workertest.Env, id string, n int) map[error]int {
	var mu sync.Mutex
	errs := map[error]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := env.TryCancel(id)
			mu.Lock()
			errs[err]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errs
}

// Every delivery that runs the handler writes job.started with its attempt: a crash re-run shows.
func TestEveryRunIsVisible(t *testing.T) {
	env := workertest.New(t)
	started := make(chan string, 4)
	id := runThenVanish(t, env, started)
	env.Start(t, worker.Config{Defaults: worker.TypeOptions{AckWait: 2 * time.Second}}, rawType(ok))
	st := env.Await(t, id)
	var attempts []int
	for _, ev := range env.History(t, id) {
		if ev.Type == streams.EventStarted {
			attempts = append(attempts, ev.Attempt)
		}
	}
	if st.State != api.StateCompleted || fmt.Sprint(attempts) != "[1 2]" {
		t.Fatalf("%+v, started attempts %v", st, attempts)
	}
}

// runThenVanish starts a job on a worker with a 2 s lease, then closes that worker's connection
// without a word, as a process that dies would: the job is held by nobody until its lease ends.
func runThenVanish(t *testing.T, env *workertest.Env, started chan string) string {
	t.Helper()
	nc, _ := env.Server.Connect(t)
	w, err := worker.New(nc, worker.Config{Logger: workertest.Logger(), Defaults: worker.TypeOptions{AckWait: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Register(blockUntilCancelled(started)); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := env.Submit(t, testType, 1)
	<-started
	nc.Close()
	return id
}
