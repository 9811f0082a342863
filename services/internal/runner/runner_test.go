package runner_test

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

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/jobstore"
	"github.com/jobwire/jobwire/services/internal/projector"
	"github.com/jobwire/jobwire/services/internal/runner"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

const testType = "test.job"

type bundle struct {
	srv   *streamstest.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	store *jobstore.Store
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := streamstest.RunServer(t)
	nc, js := srv.Ensure(t)
	p := projector.New(projector.Config{}, js, nil, stacktest.Logger())
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	store, err := jobstore.New(context.Background(), nc, js)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{srv: srv, nc: nc, js: js, store: store}
}

func (b *bundle) runner(t *testing.T, cfg runner.Config, h runner.Handler) *runner.Runner {
	t.Helper()
	cfg.JobType = testType
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = 20 * time.Millisecond
	}
	r, err := runner.New(cfg, b.nc, b.js, h, nil, stacktest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func (b *bundle) submit(t *testing.T, input string, runAt *time.Time) string {
	t.Helper()
	st, _, err := b.store.Submit(context.Background(), jobstore.Submission{Owner: "alice", Type: testType, Input: json.RawMessage(input), RunAt: runAt})
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}

func (b *bundle) waitFor(t *testing.T, id string, cond func(api.JobState) bool) api.JobState {
	t.Helper()
	var st api.JobState
	streamstest.WaitFor(t, 20*time.Second, func() error {
		var err error
		st, err = b.store.Get(context.Background(), "alice", id)
		if err != nil {
			return err
		}
		if !cond(st) {
			return fmt.Errorf("state %s attempt %d error %+v", st.State, st.Attempt, st.Error)
		}
		return nil
	})
	return st
}

func terminal(st api.JobState) bool { return st.State.Terminal() && st.Revision > 0 }

func TestRetriesWithBackoffThenSucceeds(t *testing.T) {
	b := setup(t)
	var calls atomic.Int32
	b.runner(t, runner.Config{MaxAttempts: 5}, runner.HandlerFunc(func(ctx context.Context, job runner.Job, _ runner.ProgressFunc) (json.RawMessage, error) {
		if calls.Add(1) < 3 {
			return nil, errors.New("catalogue unavailable")
		}
		return json.RawMessage(`{"ok":true}`), nil
	}))
	id := b.submit(t, `{}`, nil)
	st := b.waitFor(t, id, terminal)
	if st.State != api.StateCompleted || st.Attempt != 3 || st.Error != nil {
		t.Fatalf("want completed on attempt 3, got %+v", st)
	}
}

func TestAttemptsRunOutIntoDeadLettersAndRetry(t *testing.T) {
	b := setup(t)
	var fail atomic.Bool
	fail.Store(true)
	b.runner(t, runner.Config{MaxAttempts: 3}, runner.HandlerFunc(func(ctx context.Context, job runner.Job, _ runner.ProgressFunc) (json.RawMessage, error) {
		if fail.Load() {
			return nil, errors.New("boom")
		}
		return json.RawMessage(`{}`), nil
	}))
	id := b.submit(t, `{}`, nil)
	st := b.waitFor(t, id, terminal)
	if st.State != api.StateFailed || st.Attempt != 3 || st.Error == nil || st.Error.Message != "boom" {
		t.Fatalf("want failed after 3 attempts with the reason, got %+v", st)
	}
	dlq, _ := b.js.Stream(context.Background(), streams.StreamDeadLetters)
	dead, err := dlq.GetLastMsgForSubject(context.Background(), streams.DeadLetterSubject("alice", id))
	if err != nil || dead.Header.Get(runner.HeaderDeadAttempts) != "3" {
		t.Fatalf("dead letter: %v %v", err, dead)
	}
	// An operator re-queues it; this time it works.
	fail.Store(false)
	if _, err := b.store.Retry(context.Background(), "alice", id); err != nil {
		t.Fatal(err)
	}
	st = b.waitFor(t, id, func(s api.JobState) bool { return s.State == api.StateCompleted })
	if st.Attempt != 1 || st.Error != nil {
		t.Fatalf("after retry: %+v", st)
	}
	if _, err := b.store.Retry(context.Background(), "alice", id); !errors.Is(err, jobstore.ErrNotDeadLettered) {
		t.Fatalf("retry of a completed job: %v", err)
	}
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	b := setup(t)
	b.runner(t, runner.Config{MaxAttempts: 5}, runner.HandlerFunc(func(ctx context.Context, job runner.Job, _ runner.ProgressFunc) (json.RawMessage, error) {
		return nil, runner.Permanent("invalid_input", errors.New("line 3: not a playlist"))
	}))
	st := b.waitFor(t, b.submit(t, `{}`, nil), terminal)
	if st.State != api.StateFailed || st.Attempt != 1 || st.Error.Code != "invalid_input" {
		t.Fatalf("%+v", st)
	}
}

func TestPanicIsAFailedAttemptNotACrash(t *testing.T) {
	b := setup(t)
	b.runner(t, runner.Config{MaxAttempts: 2}, runner.HandlerFunc(func(ctx context.Context, job runner.Job, _ runner.ProgressFunc) (json.RawMessage, error) {
		panic("nil map")
	}))
	st := b.waitFor(t, b.submit(t, `{}`, nil), terminal)
	if st.State != api.StateFailed || st.Attempt != 2 {
		t.Fatalf("%+v", st)
	}
}

// blockUntilCancelled runs until its context ends and reports the work done so far.
func blockUntilCancelled(started chan<- string) runner.Handler {
	return runner.HandlerFunc(func(ctx context.Context, job runner.Job, progress runner.ProgressFunc) (json.RawMessage, error) {
		progress(3, 10, "")
		if started != nil {
			started <- job.ID
		}
		<-ctx.Done()
		return json.RawMessage(`{"done":3}`), ctx.Err()
	})
}

func TestCancelRunningAndQueuedJobs(t *testing.T) {
	b := setup(t)
	started := make(chan string, 1)
	b.runner(t, runner.Config{}, blockUntilCancelled(started))
	id := b.submit(t, `{}`, nil)
	<-started
	begin := time.Now()
	if _, err := b.store.Cancel(context.Background(), "alice", id); err != nil {
		t.Fatal(err)
	}
	st := b.waitFor(t, id, terminal)
	if st.State != api.StateCancelled || string(st.Result) != `{"done":3}` || st.Progress.Done != 3 {
		t.Fatalf("%+v", st)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("cancellation took %s", d)
	}
	if _, err := b.store.Cancel(context.Background(), "alice", id); !errors.Is(err, jobstore.ErrFinished) {
		t.Fatalf("cancel finished: %v", err)
	}
	// A scheduled job is queued; cancelled, it never starts.
	runAt := time.Now().Add(1500 * time.Millisecond)
	later := b.submit(t, `{}`, &runAt)
	if st, _ := b.store.Get(context.Background(), "alice", later); st.State != api.StateQueued {
		t.Fatalf("scheduled job %s", st.State)
	}
	if _, err := b.store.Cancel(context.Background(), "alice", later); err != nil {
		t.Fatal(err)
	}
	st = b.waitFor(t, later, terminal)
	if st.State != api.StateCancelled || st.StartedAt != nil {
		t.Fatalf("%+v", st)
	}
	// After runAt has passed, the worker took the message and skipped it: nothing started.
	streamstest.WaitFor(t, 10*time.Second, func() error {
		cons, err := b.js.Consumer(context.Background(), streams.StreamJobs, streams.WorkerConsumer(testType))
		if err != nil {
			return err
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.Delivered.Stream < 2 || info.NumAckPending != 0 {
			return fmt.Errorf("delivered %d, pending %d", info.Delivered.Stream, info.NumAckPending)
		}
		return nil
	})
	select {
	case id := <-started:
		t.Fatalf("cancelled job %s started", id)
	default:
	}
}

func TestScheduledJobWaitsForRunAt(t *testing.T) {
	b := setup(t)
	var startedAt atomic.Int64
	b.runner(t, runner.Config{}, runner.HandlerFunc(func(ctx context.Context, job runner.Job, _ runner.ProgressFunc) (json.RawMessage, error) {
		startedAt.Store(time.Now().UnixNano())
		return json.RawMessage(`{}`), nil
	}))
	runAt := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	id := b.submit(t, `{}`, &runAt)
	if st, _ := b.store.Get(context.Background(), "alice", id); st.State != api.StateQueued || st.RunAt == nil {
		t.Fatalf("%+v", st)
	}
	st := b.waitFor(t, id, terminal)
	if st.State != api.StateCompleted {
		t.Fatalf("%+v", st)
	}
	if got := time.Unix(0, startedAt.Load()); got.Before(runAt) {
		t.Fatalf("started at %s, before runAt %s", got, runAt)
	}
}

func TestSlowJobDoesNotBlockOthers(t *testing.T) {
	b := setup(t)
	release := make(chan struct{})
	b.runner(t, runner.Config{Concurrency: 2}, runner.HandlerFunc(func(ctx context.Context, job runner.Job, _ runner.ProgressFunc) (json.RawMessage, error) {
		if string(job.Input) == `{"slow":true}` {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return json.RawMessage(`{}`), nil
	}))
	slow := b.submit(t, `{"slow":true}`, nil)
	b.waitFor(t, slow, func(s api.JobState) bool { return s.State == api.StateActive })
	var fast []string
	for i := 0; i < 5; i++ {
		fast = append(fast, b.submit(t, `{}`, nil))
	}
	for _, id := range fast {
		b.waitFor(t, id, func(s api.JobState) bool { return s.State == api.StateCompleted })
	}
	if st, _ := b.store.Get(context.Background(), "alice", slow); st.State != api.StateActive {
		t.Fatalf("slow job %s", st.State)
	}
	close(release)
	b.waitFor(t, slow, func(s api.JobState) bool { return s.State == api.StateCompleted })
}

func TestShutdownHandsRunningJobsBackAtOnce(t *testing.T) {
	b := setup(t)
	started := make(chan string, 1)
	first := b.runner(t, runner.Config{AckWait: 30 * time.Second, ShutdownGrace: 100 * time.Millisecond}, blockUntilCancelled(started))
	id := b.submit(t, `{}`, nil)
	<-started
	first.Stop()
	// Another worker takes it now, not after the 30 s lease.
	begin := time.Now()
	b.runner(t, runner.Config{}, runner.HandlerFunc(func(ctx context.Context, job runner.Job, _ runner.ProgressFunc) (json.RawMessage, error) {
		return json.RawMessage(`{}`), nil
	}))
	st := b.waitFor(t, id, terminal)
	if st.State != api.StateCompleted || st.Attempt != 2 || time.Since(begin) > 10*time.Second {
		t.Fatalf("%+v after %s", st, time.Since(begin))
	}
}

func TestProgressIsCoalesced(t *testing.T) {
	b := setup(t)
	b.runner(t, runner.Config{ProgressInterval: 50 * time.Millisecond}, runner.HandlerFunc(func(ctx context.Context, job runner.Job, progress runner.ProgressFunc) (json.RawMessage, error) {
		for i := 1; i <= 2000; i++ {
			progress(i, 2000, "")
			if i%100 == 0 {
				time.Sleep(5 * time.Millisecond) // about 100 ms of work in all
			}
		}
		return json.RawMessage(`{}`), nil
	}))
	id := b.submit(t, `{}`, nil)
	st := b.waitFor(t, id, terminal)
	if st.Progress.Done != 2000 || st.Progress.Percent != 100 {
		t.Fatalf("final progress %+v", st.Progress)
	}
	h, err := b.store.History(context.Background(), "alice", id)
	if err != nil {
		t.Fatal(err)
	}
	progressEvents := 0
	for _, raw := range h {
		var ev struct{ Type string }
		json.Unmarshal(raw, &ev)
		if ev.Type == "job.progress" {
			progressEvents++
		}
	}
	if progressEvents < 1 || progressEvents > 10 {
		t.Fatalf("%d progress events for 2000 updates over ~100 ms at one per 50 ms", progressEvents)
	}
}

func TestNATSRestartLosesNothing(t *testing.T) {
	b := setup(t)
	var mu sync.Mutex
	ran := map[string]int{}
	b.runner(t, runner.Config{Concurrency: 4}, runner.HandlerFunc(func(ctx context.Context, job runner.Job, progress runner.ProgressFunc) (json.RawMessage, error) {
		mu.Lock()
		ran[job.ID]++
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		return json.RawMessage(`{}`), nil
	}))
	var ids []string
	for i := 0; i < 20; i++ {
		ids = append(ids, b.submit(t, `{}`, nil))
	}
	b.srv.Restart()
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if !b.nc.IsConnected() {
			return errors.New("not reconnected")
		}
		return nil
	})
	for i := 0; i < 20; i++ {
		var id string
		streamstest.WaitFor(t, 10*time.Second, func() error {
			st, _, err := b.store.Submit(context.Background(), jobstore.Submission{Owner: "alice", Type: testType, Input: json.RawMessage(`{}`)})
			id = st.ID
			return err
		})
		ids = append(ids, id)
	}
	for _, id := range ids {
		st := b.waitFor(t, id, terminal)
		if st.State != api.StateCompleted {
			t.Fatalf("%s: %+v", id, st)
		}
	}
}
