package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
	"github.com/jobwire/jobwire/worker"
	"github.com/jobwire/jobwire/worker/workertest"
)

const testType = "test.job"

type sumInput struct {
	Numbers []int  `json:"numbers" jsonschema:"minItems=1,maxItems=100"`
	Label   string `json:"label,omitempty" jsonschema:"maxLength=20"`
}

type sumResult struct {
	Sum   int    `json:"sum"`
	Label string `json:"label"`
}

// sumType adds up its input, reporting progress per number.
var sumType = worker.Type[sumInput, sumResult]{
	Name:        "test.sum",
	Description: "adds numbers",
	Handle: func(ctx context.Context, job *worker.Job[sumInput], progress worker.Progress) (sumResult, error) {
		res := sumResult{Label: job.Input.Label}
		for i, n := range job.Input.Numbers {
			res.Sum += n
			progress.Report(i+1, len(job.Input.Numbers), "adding")
		}
		return res, nil
	},
}

// rawType returns a Type of testType that runs fn.
func rawType(fn func(ctx context.Context, job *worker.Job[json.RawMessage], p worker.Progress) (json.RawMessage, error)) worker.Type[json.RawMessage, json.RawMessage] {
	return worker.Type[json.RawMessage, json.RawMessage]{Name: testType, Handle: fn}
}

func ok(context.Context, *worker.Job[json.RawMessage], worker.Progress) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}

func TestTypedInputAndResultWithProgress(t *testing.T) {
	env := workertest.New(t)
	env.Start(t, worker.Config{}, sumType)
	id := env.Submit(t, "test.sum", sumInput{Numbers: []int{1, 2, 3, 4}, Label: "four"})
	st := env.Await(t, id)
	if st.State != api.StateCompleted || st.Attempt != 1 || st.Error != nil {
		t.Fatalf("want completed on attempt 1, got %+v", st)
	}
	var res sumResult
	if err := json.Unmarshal(st.Result, &res); err != nil || res != (sumResult{Sum: 10, Label: "four"}) {
		t.Fatalf("result %s: %v", st.Result, err)
	}
	if st.Progress != api.NewProgress(4, 4, "adding") {
		t.Fatalf("final progress %+v", st.Progress)
	}
	if evs := env.History(t, id); evs[1].Type != streams.EventStarted || evs[1].Attempt != 1 || evs[len(evs)-1].Type != streams.EventCompleted {
		t.Fatalf("history %+v", evs)
	}
}

func TestInputThatMissesTheSchemaFailsAtOnce(t *testing.T) {
	env := workertest.New(t)
	env.Start(t, worker.Config{}, sumType)
	for input, pointer := range map[string]string{
		`{"numbers":[]}`:             "/numbers",
		`{"numbers":["x"]}`:          "/numbers/0",
		`{"numbers":[1],"extra":1}`:  "extra",
		`{"numbers":[1],"label":""}`: "",
		`null`:                       "object",
	} {
		id := env.Submit(t, "test.sum", json.RawMessage(input))
		st := env.Await(t, id)
		if input == `{"numbers":[1],"label":""}` {
			if st.State != api.StateCompleted {
				t.Errorf("%s: %+v", input, st)
			}
			continue
		}
		if st.State != api.StateFailed || st.Attempt != 1 || st.Error.Code != worker.CodeInvalidInput || !strings.Contains(st.Error.Message, pointer) {
			t.Errorf("%s: want failed invalid_input naming %q, got %+v %+v", input, pointer, st, st.Error)
		}
	}
}

func TestRetriesWithBackoffThenSucceeds(t *testing.T) {
	env := workertest.New(t)
	var calls atomic.Int32
	env.Start(t, worker.Config{}, rawType(func(ctx context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
		if n := calls.Add(1); int(n) != job.Attempt || n < 3 {
			return nil, fmt.Errorf("catalogue unavailable (call %d, attempt %d)", n, job.Attempt)
		}
		return json.RawMessage(`{"ok":true}`), nil
	}))
	id := env.Submit(t, testType, map[string]any{})
	st := env.Await(t, id)
	if st.State != api.StateCompleted || st.Attempt != 3 || st.Error != nil || string(st.Result) != `{"ok":true}` {
		t.Fatalf("want completed on attempt 3, got %+v", st)
	}
	failed := 0
	for _, ev := range env.History(t, id) {
		if ev.Type == streams.EventFailed {
			failed++
			if ev.Final || ev.RetryAt == nil || ev.Error.Code != worker.CodeAttemptFailed {
				t.Errorf("a retried failure: %+v", ev)
			}
		}
	}
	if failed != 2 {
		t.Fatalf("%d failed events, want 2", failed)
	}
}

func TestAttemptsRunOutIntoDeadLetters(t *testing.T) {
	env := workertest.New(t)
	env.Start(t, worker.Config{Defaults: worker.TypeOptions{MaxAttempts: 3}}, rawType(func(context.Context, *worker.Job[json.RawMessage], worker.Progress) (json.RawMessage, error) {
		return nil, errors.New("boom")
	}))
	id := env.Submit(t, testType, map[string]any{})
	st := env.Await(t, id)
	if st.State != api.StateFailed || st.Attempt != 3 || st.Error.Code != worker.CodeAttemptsExhausted || st.Error.Message != "boom" {
		t.Fatalf("want failed after 3 attempts with the reason, got %+v %+v", st, st.Error)
	}
	dlq, _ := env.JS.Stream(context.Background(), streams.StreamDeadLetters)
	dead, err := dlq.GetLastMsgForSubject(context.Background(), streams.DeadLetterSubject(workertest.Owner, id))
	if err != nil || dead.Header.Get(worker.HeaderDeadAttempts) != "3" || dead.Header.Get(worker.HeaderDeadError) != "attempts_exhausted: boom" {
		t.Fatalf("dead letter: %v %+v", err, dead)
	}
}

func TestPermanentErrorFailsAtOnceWithItsCode(t *testing.T) {
	env := workertest.New(t)
	env.Start(t, worker.Config{}, rawType(func(_ context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
		if string(job.Input) == `"bad code"` {
			return nil, worker.Permanent("Not A Code!", errors.New("no"))
		}
		return nil, fmt.Errorf("parse: %w", worker.Permanent("malformed_playlist", errors.New("line 3: not a playlist")))
	}))
	st := env.Await(t, env.Submit(t, testType, "x"))
	if st.State != api.StateFailed || st.Attempt != 1 || st.Error.Code != "malformed_playlist" || st.Error.Message != "parse: line 3: not a playlist" {
		t.Fatalf("%+v %+v", st, st.Error)
	}
	st = env.Await(t, env.Submit(t, testType, "bad code"))
	if st.Error.Code != worker.CodePermanent {
		t.Fatalf("an unusable code: %+v", st.Error)
	}
}

func TestRetryAfterDelaysTheNextAttempt(t *testing.T) {
	env := workertest.New(t)
	var first atomic.Int64
	env.Start(t, worker.Config{}, rawType(func(_ context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
		if job.Attempt == 1 {
			first.Store(time.Now().UnixNano())
			return nil, worker.RetryAfter(700*time.Millisecond, errors.New("429 from upstream"))
		}
		return json.RawMessage(fmt.Sprint(time.Now().UnixNano() - first.Load())), nil
	}))
	st := env.Await(t, env.Submit(t, testType, 1))
	var gap int64
	if err := json.Unmarshal(st.Result, &gap); err != nil || st.Attempt != 2 || time.Duration(gap) < 700*time.Millisecond {
		t.Fatalf("second attempt %s after the first, want at least 700ms: %+v", time.Duration(gap), st)
	}
}

func TestPanicIsAFailedAttemptNotACrash(t *testing.T) {
	env := workertest.New(t)
	env.Start(t, worker.Config{Defaults: worker.TypeOptions{MaxAttempts: 2}}, rawType(func(context.Context, *worker.Job[json.RawMessage], worker.Progress) (json.RawMessage, error) {
		panic("nil map")
	}))
	st := env.Await(t, env.Submit(t, testType, 1))
	if st.State != api.StateFailed || st.Attempt != 2 || !strings.Contains(st.Error.Message, "handler panic: nil map") {
		t.Fatalf("%+v %+v", st, st.Error)
	}
}

// blockUntilCancelled reports progress 3/10, then runs until its context ends and returns that work.
func blockUntilCancelled(started chan<- string) worker.Type[json.RawMessage, json.RawMessage] {
	return rawType(func(ctx context.Context, job *worker.Job[json.RawMessage], progress worker.Progress) (json.RawMessage, error) {
		progress.Report(3, 10, "")
		if started != nil {
			started <- job.ID
		}
		<-ctx.Done()
		return json.RawMessage(`{"done":3}`), ctx.Err()
	})
}

func TestCancelRunningAndQueuedJobs(t *testing.T) {
	env := workertest.New(t)
	started := make(chan string, 1)
	env.Start(t, worker.Config{}, blockUntilCancelled(started))
	id := env.Submit(t, testType, 1)
	<-started
	env.Cancel(t, id)
	st := env.Await(t, id)
	if st.State != api.StateCancelled || string(st.Result) != `{"done":3}` || st.Progress.Done != 3 || st.Error.Code != worker.CodeCancelled {
		t.Fatalf("%+v", st)
	}
	// A scheduled job is queued; cancelled, it never starts, also after its runAt.
	later := env.Submit(t, testType, 1, workertest.WithRunAt(time.Now().Add(1500*time.Millisecond)))
	env.Cancel(t, later)
	st = env.Await(t, later)
	if st.State != api.StateCancelled || st.StartedAt != nil {
		t.Fatalf("%+v", st)
	}
	streamstest.WaitFor(t, 10*time.Second, func() error {
		cons, err := env.JS.Consumer(context.Background(), streams.StreamJobs, streams.WorkerConsumer(testType))
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

func TestHandlerCancelsItsOwnJob(t *testing.T) {
	env := workertest.New(t)
	env.Start(t, worker.Config{}, rawType(func(context.Context, *worker.Job[json.RawMessage], worker.Progress) (json.RawMessage, error) {
		return json.RawMessage(`{"partial":true}`), worker.Cancelled(errors.New("the playlist was deleted"))
	}))
	st := env.Await(t, env.Submit(t, testType, 1))
	if st.State != api.StateCancelled || st.Attempt != 1 || string(st.Result) != `{"partial":true}` || st.Error.Message != "the playlist was deleted" {
		t.Fatalf("%+v %+v", st, st.Error)
	}
}

func TestTimeoutFailsTheAttemptAndRetries(t *testing.T) {
	env := workertest.New(t)
	var causes sync.Map
	env.Start(t, worker.Config{Defaults: worker.TypeOptions{Timeout: time.Second, MaxAttempts: 2}}, rawType(func(ctx context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
		<-ctx.Done()
		causes.Store(job.Attempt, context.Cause(ctx))
		return nil, ctx.Err()
	}))
	id := env.Submit(t, testType, 1)
	st := env.Await(t, id)
	if st.State != api.StateFailed || st.Attempt != 2 || st.Error.Code != worker.CodeTimeout {
		t.Fatalf("%+v %+v", st, st.Error)
	}
	if c, _ := causes.Load(1); !errors.Is(c.(error), worker.ErrTimeout) {
		t.Fatalf("cause of the handler's context: %v", c)
	}
	for _, ev := range env.History(t, id) {
		if ev.Type == streams.EventFailed && ev.Error.Code != worker.CodeTimeout {
			t.Errorf("failure of attempt %d: %+v", ev.Attempt, ev.Error)
		}
	}
}

func TestScheduledJobWaitsForRunAt(t *testing.T) {
	env := workertest.New(t)
	var startedAt atomic.Int64
	env.Start(t, worker.Config{}, rawType(func(context.Context, *worker.Job[json.RawMessage], worker.Progress) (json.RawMessage, error) {
		startedAt.Store(time.Now().UnixNano())
		return json.RawMessage(`{}`), nil
	}))
	runAt := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	st := env.Await(t, env.Submit(t, testType, 1, workertest.WithRunAt(runAt)))
	if st.State != api.StateCompleted {
		t.Fatalf("%+v", st)
	}
	if got := time.Unix(0, startedAt.Load()); got.Before(runAt) {
		t.Fatalf("started at %s, before runAt %s", got, runAt)
	}
}

func TestSlowJobDoesNotBlockOthers(t *testing.T) {
	env := workertest.New(t)
	release := make(chan struct{})
	env.Start(t, worker.Config{Defaults: worker.TypeOptions{Concurrency: 2}}, rawType(func(ctx context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
		if string(job.Input) == `"slow"` {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return json.RawMessage(`{}`), nil
	}))
	slow := env.Submit(t, testType, "slow")
	env.AwaitState(t, slow, func(s api.JobState) bool { return s.State == api.StateActive })
	for range 5 {
		if st := env.Await(t, env.Submit(t, testType, "fast")); st.State != api.StateCompleted {
			t.Fatalf("%+v", st)
		}
	}
	close(release)
	if st := env.Await(t, slow); st.State != api.StateCompleted {
		t.Fatalf("%+v", st)
	}
}

func TestStopLetsRunningJobsFinish(t *testing.T) {
	env := workertest.New(t)
	started, release := make(chan string, 1), make(chan struct{})
	w := env.Start(t, worker.Config{ShutdownGrace: 10 * time.Second}, rawType(func(_ context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
		started <- job.ID
		<-release
		return json.RawMessage(`{"finished":true}`), nil
	}))
	id := env.Submit(t, testType, 1)
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop(context.Background()) }()
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if st := env.Await(t, id); st.State != api.StateCompleted || st.Attempt != 1 || string(st.Result) != `{"finished":true}` {
		t.Fatalf("%+v", st)
	}
}

func TestStopHandsRunningJobsBackAtOnce(t *testing.T) {
	env := workertest.New(t)
	started := make(chan string, 1)
	first := env.Start(t, worker.Config{ShutdownGrace: 100 * time.Millisecond, Defaults: worker.TypeOptions{AckWait: 30 * time.Second}}, blockUntilCancelled(started))
	id := env.Submit(t, testType, 1)
	<-started
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Another worker takes it now, not after the 30 s lease.
	begin := time.Now()
	env.Start(t, worker.Config{}, rawType(ok))
	st := env.Await(t, id)
	if st.State != api.StateCompleted || st.Attempt != 2 || time.Since(begin) > 10*time.Second {
		t.Fatalf("%+v after %s", st, time.Since(begin))
	}
}

func TestProgressIsCoalesced(t *testing.T) {
	env := workertest.New(t)
	w := env.Start(t, worker.Config{Defaults: worker.TypeOptions{ProgressInterval: 50 * time.Millisecond}}, rawType(func(_ context.Context, _ *worker.Job[json.RawMessage], progress worker.Progress) (json.RawMessage, error) {
		for i := 1; i <= 2000; i++ {
			progress.Report(i, 2000, "")
			if i%100 == 0 {
				time.Sleep(5 * time.Millisecond) // about 100 ms of work in all
			}
		}
		return json.RawMessage(`{}`), nil
	}))
	id := env.Submit(t, testType, 1)
	st := env.Await(t, id)
	if st.Progress.Done != 2000 || st.Progress.Percent != 100 {
		t.Fatalf("final progress %+v", st.Progress)
	}
	progressEvents := 0
	for _, ev := range env.History(t, id) {
		if ev.Type == streams.EventProgress {
			progressEvents++
		}
	}
	if progressEvents < 1 || progressEvents > 10 {
		t.Fatalf("%d progress events for 2000 updates over ~100 ms at one per 50 ms", progressEvents)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.Collectors()...)
	// The worker counts the finish after the terminal event is stored and acked, so the state can be
	// seen a moment before the count.
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if n, err := testutil.GatherAndCount(reg, "jobwire_progress_events_total", "jobwire_jobs_finished_total"); err != nil || n != 2 {
			return fmt.Errorf("metrics: %d series, %v", n, err)
		}
		return nil
	})
}

func TestNATSRestartLosesNothing(t *testing.T) {
	env := workertest.New(t)
	var mu sync.Mutex
	ran := map[string]int{}
	env.Start(t, worker.Config{}, rawType(func(_ context.Context, job *worker.Job[json.RawMessage], _ worker.Progress) (json.RawMessage, error) {
		mu.Lock()
		ran[job.ID]++
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		return json.RawMessage(`{}`), nil
	}))
	var ids []string
	for range 20 {
		ids = append(ids, env.Submit(t, testType, 1))
	}
	env.Server.Restart()
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if !env.NC.IsConnected() {
			return errors.New("not reconnected")
		}
		return nil
	})
	for range 20 {
		ids = append(ids, env.Submit(t, testType, 1))
	}
	for _, id := range ids {
		if st := env.Await(t, id); st.State != api.StateCompleted {
			t.Fatalf("%s: %+v", id, st)
		}
	}
}

// A queued message that is not a job message is never run: it is kept in JOBS_DLQ with the reason and
// where it was queued, taken off the queue, and the worker goes on serving.
func TestAMalformedJobMessageIsDeadLetteredWithItsReason(t *testing.T) {
	env := workertest.New(t)
	var runs atomic.Int32
	env.Start(t, worker.Config{}, rawType(func(context.Context, *worker.Job[json.RawMessage], worker.Progress) (json.RawMessage, error) {
		runs.Add(1)
		return json.RawMessage(`{}`), nil
	}))
	ctx := context.Background()
	bad := map[string]string{
		"{not json": "not a JSON job message",
		`{"v":1,"jobId":"../x","owner":"alice","type":"test.job"}`:                         "job id",
		`{"v":1,"jobId":"01JF0000000000000000000000","owner":"alice","type":"other.type"}`: `job type "other.type" queued for "test.job"`,
	}
	seqs := map[uint64]string{}
	for body, reason := range bad {
		ack, err := env.JS.Publish(ctx, streams.QueueSubject(testType), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		seqs[ack.Sequence] = reason
	}
	if st := env.Await(t, env.Submit(t, testType, map[string]any{})); st.State != api.StateCompleted {
		t.Fatalf("the job after the malformed ones: %+v", st)
	}
	dlq, err := env.JS.Stream(ctx, streams.StreamDeadLetters)
	if err != nil {
		t.Fatal(err)
	}
	for seq, reason := range seqs {
		var dead *jetstream.RawStreamMsg
		streamstest.WaitFor(t, 10*time.Second, func() (err error) {
			dead, err = dlq.GetLastMsgForSubject(ctx, streams.MalformedDeadLetterSubject(seq))
			return err
		})
		if got := dead.Header.Get(worker.HeaderDeadError); !strings.HasPrefix(got, worker.CodeInvalidJobMessage+": ") || !strings.Contains(got, reason) {
			t.Errorf("message %d: error header %q, want the reason %q", seq, got, reason)
		}
		if dead.Header.Get(worker.HeaderDeadQueueSubject) != streams.QueueSubject(testType) || dead.Header.Get(worker.HeaderDeadQueueSeq) != strconv.FormatUint(seq, 10) {
			t.Errorf("message %d: queued at %v", seq, dead.Header)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("%d runs, want 1 (only the real job)", n)
	}
	jobs, _ := env.JS.Stream(ctx, streams.StreamJobs)
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if info, err := jobs.Info(ctx); err != nil || info.State.Msgs != 0 {
			return fmt.Errorf("JOBS still holds messages: %v %+v", err, info)
		}
		return nil
	})
}

// A job whose last event is not an event (something else wrote its subject) still runs: the claim
// writes job.started after that message, not before it.
func TestAMalformedLastEventDoesNotBlockTheJob(t *testing.T) {
	env := workertest.New(t)
	id := env.Submit(t, testType, map[string]any{})
	if _, err := env.JS.Publish(context.Background(), streams.EventSubject(workertest.Owner, id), []byte("{not an event")); err != nil {
		t.Fatal(err)
	}
	env.Start(t, worker.Config{}, rawType(ok))
	if st := env.Await(t, id); st.State != api.StateCompleted {
		t.Fatalf("%+v", st)
	}
}
