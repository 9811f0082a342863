package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

const countType = "demo.count"

// suite is a running jobwire and the worker under test.
type suite struct {
	t      *testing.T // the whole suite's: worker processes live as long as it
	stack  *stacktest.Stack
	client *api.Client
	ops    *api.Client // an operator's: pause, resume, rate limits
	cmd    []string
	env    []string
	worker *testkit.Proc
}

// workerCommand is the implementation under test: JOBWIRE_CONFORMANCE_WORKER, else examples/count.
func workerCommand(t *testing.T) []string {
	if cmd := strings.Fields(os.Getenv("JOBWIRE_CONFORMANCE_WORKER")); len(cmd) > 0 {
		return cmd
	}
	return []string{testkit.BuildExample(t, "count")}
}

func start(t *testing.T, cmd []string) *suite {
	t.Helper()
	// The priorities scenario queues a backlog at once: more than the gateway's default burst of submits.
	stack := stacktest.Start(t, stacktest.Options{Gateway: func(c *gateway.Config) { c.SubmitBurst = 100 }})
	s := &suite{t: t, stack: stack, cmd: cmd}
	s.client, s.ops = s.stack.Client(t, "conformance"), s.stack.Operator(t, "ops")
	s.env = []string{"NATS_URL=" + s.stack.Server.URL(), "JOBWIRE_WORKER_ACK_WAIT=2s", "JOBWIRE_WORKER_BACKOFF_BASE=20ms",
		"JOBWIRE_WORKER_BACKOFF_MAX=100ms", "JOBWIRE_WORKER_MAX_ATTEMPTS=3", "JOBWIRE_WORKER_SHUTDOWN_GRACE=5s"}
	s.startWorker(t)
	return s
}

// startWorker starts (another) process of the worker under test and waits until demo.count is online.
func (s *suite) startWorker(t *testing.T) {
	t.Helper()
	s.worker = testkit.StartProc(s.t, "worker under test", s.cmd[0], s.env, s.cmd[1:]...)
	testkit.WaitJobType(t, s.client, countType, true, 30*time.Second)
}

func (s *suite) submit(t *testing.T, input string, opts ...func(*api.SubmitRequest)) string {
	t.Helper()
	req := api.SubmitRequest{Type: countType, Input: json.RawMessage(input)}
	for _, o := range opts {
		o(&req)
	}
	st, _, err := s.client.Submit(context.Background(), req, "")
	if err != nil {
		t.Fatalf("submit %s: %v", input, err)
	}
	return st.ID
}

func (s *suite) await(t *testing.T, id string, cond func(api.JobState) bool) api.JobState {
	t.Helper()
	var st api.JobState
	streamstest.WaitFor(t, 30*time.Second, func() (err error) {
		if st, err = s.client.Get(context.Background(), id); err == nil && !cond(st) {
			err = fmt.Errorf("job %s is %s (attempt %d, progress %d)", id, st.State, st.Attempt, st.Progress.Done)
		}
		return err
	})
	return st
}

func (s *suite) ended(t *testing.T, id string) api.JobState {
	t.Helper()
	return s.await(t, id, func(st api.JobState) bool { return st.State.Terminal() })
}

// history returns the types of the job's events, in order, and the events.
func (s *suite) history(t *testing.T, id string) ([]string, []map[string]any) {
	t.Helper()
	raws, err := s.client.HistoryAll(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var events []map[string]any
	for _, r := range raws {
		var ev map[string]any
		if err := json.Unmarshal(r, &ev); err != nil {
			t.Fatal(err)
		}
		types, events = append(types, ev["type"].(string)), append(events, ev)
	}
	return types, events
}

// startOrder returns the job.started events of the jobs in ids, in the log's order.
func (s *suite) startOrder(t *testing.T, ids map[string]bool) []streams.Event {
	t.Helper()
	var out []streams.Event
	testkit.ReplayEvents(t, s.stack.JS, func(ev streams.Event) {
		if ev.Type == streams.EventStarted && ids[ev.JobID] {
			out = append(out, ev)
		}
	})
	return out
}

// pause pauses demo.count (resumed when the test ends) and waits until its workers' pulls that were
// waiting when the pause came have ended: a pull waits at most a second.
func (s *suite) pause(t *testing.T) {
	t.Helper()
	if _, err := s.ops.PauseJobType(context.Background(), countType); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.ops.ResumeJobType(context.Background(), countType) })
	testkit.WaitJobTypeListed(t, s.client, countType, "paused", 10*time.Second, func(jt api.JobType) bool { return jt.Paused })
	time.Sleep(1200 * time.Millisecond)
}

func (s *suite) resume(t *testing.T) {
	t.Helper()
	if _, err := s.ops.ResumeJobType(context.Background(), countType); err != nil {
		t.Fatal(err)
	}
}

// While its type is paused a worker fetches no job (submits stay queued) and lets a running one
// finish; after the resume the queued jobs run.
func (s *suite) pauseScenario(t *testing.T) {
	running := s.submit(t, `{"n":20,"delayMs":100}`)
	s.await(t, running, func(st api.JobState) bool { return st.State == api.StateActive })
	s.pause(t)
	held := map[string]bool{}
	for range 3 {
		held[s.submit(t, `{"n":1}`)] = true
	}
	if st := s.ended(t, running); st.State != api.StateCompleted || st.Attempt != 1 {
		t.Fatalf("the job running when the pause came: %+v", st)
	}
	time.Sleep(500 * time.Millisecond)
	if started := s.startOrder(t, held); len(started) != 0 {
		t.Fatalf("job %s started while its type was paused", started[0].JobID)
	}
	for id := range held {
		if st, err := s.client.Get(context.Background(), id); err != nil || st.State != api.StateQueued {
			t.Fatalf("job %s while paused: %+v %v", id, st, err)
		}
	}
	s.resume(t)
	for id := range held {
		if st := s.ended(t, id); st.State != api.StateCompleted {
			t.Fatalf("after the resume: %+v", st)
		}
	}
}

// Under a rate limit of 3 per second, 9 jobs queued at once start at most 3 in any window of the
// interval, and do reach 3.
func (s *suite) rateLimitScenario(t *testing.T) {
	const limit, jobs, interval = 3, 9, time.Second
	if _, err := s.ops.SetRateLimit(context.Background(), countType, api.RateLimit{Limit: limit, Interval: api.Duration(interval)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.ops.RemoveRateLimit(context.Background(), countType) })
	testkit.WaitJobTypeListed(t, s.client, countType, "with a rate limit", 10*time.Second, func(jt api.JobType) bool { return jt.RateLimit != nil })
	time.Sleep(300 * time.Millisecond) // the worker's watch hears it when the gateway's does
	ids := map[string]bool{}
	for range jobs {
		ids[s.submit(t, `{"n":1}`)] = true
	}
	for id := range ids {
		if st := s.ended(t, id); st.State != api.StateCompleted {
			t.Fatalf("%+v", st)
		}
	}
	var starts []time.Time
	for _, ev := range s.startOrder(t, ids) {
		starts = append(starts, ev.At)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	// A ticket is taken a moment before the started event is written, and that moment varies, so the
	// starts are counted in windows 10 % shorter than the interval.
	if most := testkit.MostInWindow(starts, interval*9/10); most > limit {
		t.Fatalf("%d starts within %s, want at most %d", most, interval*9/10, limit)
	}
	if most := testkit.MostInWindow(starts, interval); most < limit {
		t.Fatalf("at most %d starts in a %s window: the limit %d was never reached", most, interval, limit)
	}
}

// Of a backlog queued while the type is paused (low first, then normal, then high), the high jobs
// start first on average and the low ones last. Jobs that end one after the other keep the worker's
// slots (4 by default) busy across the resume, so its rounds take one slot at a time: a fair round
// (normal or low first) then lets one job of a lower level through, never a whole round's worth.
func (s *suite) prioritiesScenario(t *testing.T) {
	const perLevel = 12
	var blockers []string
	for i := range 4 {
		blockers = append(blockers, s.submit(t, fmt.Sprintf(`{"n":1,"delayMs":%d}`, 2600+150*i)))
	}
	for _, id := range blockers {
		s.await(t, id, func(st api.JobState) bool { return st.State == api.StateActive })
	}
	s.pause(t)
	level := map[string]api.Priority{}
	ids := map[string]bool{}
	for _, p := range []api.Priority{api.PriorityLow, api.PriorityNormal, api.PriorityHigh} {
		for range perLevel {
			id := s.submit(t, `{"n":1,"delayMs":10}`, func(r *api.SubmitRequest) { r.Priority = p })
			level[id], ids[id] = p, true
		}
	}
	s.resume(t)
	for id := range ids {
		if st := s.ended(t, id); st.State != api.StateCompleted || st.Priority != streams.NormalPriority(level[id]) {
			t.Fatalf("%+v", st)
		}
	}
	var order []api.Priority
	for _, ev := range s.startOrder(t, ids) {
		order = append(order, level[ev.JobID])
	}
	t.Logf("start order: %v", order)
	high, normal, low := testkit.MeanPosition(order, api.PriorityHigh), testkit.MeanPosition(order, api.PriorityNormal), testkit.MeanPosition(order, api.PriorityLow)
	if !(high < normal && normal < low) {
		t.Fatalf("mean start positions high %.1f, normal %.1f, low %.1f: want them in that order; start order %v", high, normal, low, order)
	}
}

func count(types []string, typ string) int {
	n := 0
	for _, x := range types {
		if x == typ {
			n++
		}
	}
	return n
}

func TestWorkerConformance(t *testing.T) {
	runScenarios(t, workerCommand(t))
}

// runScenarios runs every scenario of the worker protocol against the worker command cmd.
func runScenarios(t *testing.T, cmd []string) {
	s := start(t, cmd)
	t.Run("registers its type with a schema and itself online", func(t *testing.T) {
		list, err := s.client.JobTypes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, jt := range list.JobTypes {
			if jt.Name == countType {
				if len(jt.Schema) == 0 || len(jt.Workers) == 0 {
					t.Fatalf("demo.count registered as %+v", jt)
				}
				return
			}
		}
		t.Fatalf("demo.count not in %+v", list)
	})
	t.Run("input against the schema", func(t *testing.T) {
		_, _, err := s.client.Submit(context.Background(), api.SubmitRequest{Type: countType, Input: json.RawMessage(`{"n":0}`)}, "")
		if !api.IsCode(err, api.CodeInvalidInput) {
			t.Fatalf("n=0: %v, want invalid_input", err)
		}
	})
	t.Run("progress and completion", func(t *testing.T) {
		id := s.submit(t, `{"n":6,"delayMs":40}`)
		var seen []api.JobState
		if err := s.client.WatchJob(context.Background(), id, func(st api.JobState) error { seen = append(seen, st); return nil }, nil); err != nil {
			t.Fatal(err)
		}
		final := seen[len(seen)-1]
		if final.State != api.StateCompleted || string(final.Result) != `{"count":6}` || final.Progress.Done != 6 || final.Attempt != 1 {
			t.Fatalf("final %+v", final)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i].Progress.Done < seen[i-1].Progress.Done {
				t.Fatalf("progress went back: %d after %d", seen[i].Progress.Done, seen[i-1].Progress.Done)
			}
		}
		types, _ := s.history(t, id)
		if types[0] != "job.submitted" || types[1] != "job.started" || types[len(types)-1] != "job.completed" || count(types, "job.progress") < 1 {
			t.Fatalf("events %v", types)
		}
	})
	t.Run("retryable failures, then completion", func(t *testing.T) {
		id := s.submit(t, `{"n":1,"failAttempts":2}`)
		st := s.ended(t, id)
		types, events := s.history(t, id)
		if st.State != api.StateCompleted || st.Attempt != 3 || count(types, "job.failed") != 2 || count(types, "job.started") != 3 {
			t.Fatalf("state %+v, events %v", st, types)
		}
		for _, ev := range events {
			if ev["type"] == "job.failed" && (ev["final"] == true || ev["retryAt"] == nil) {
				t.Fatalf("a retried failure without retryAt or marked final: %v", ev)
			}
		}
	})
	t.Run("retries exhausted", func(t *testing.T) {
		st := s.ended(t, s.submit(t, `{"n":1,"failAttempts":5}`))
		if st.State != api.StateFailed || st.Attempt != 3 || st.Error == nil || st.Error.Code != "attempts_exhausted" {
			t.Fatalf("%+v %+v", st, st.Error)
		}
	})
	t.Run("permanent failure is dead-lettered", func(t *testing.T) {
		id := s.submit(t, `{"n":1,"permanent":true}`)
		st := s.ended(t, id)
		if st.State != api.StateFailed || st.Attempt != 1 || st.Error == nil || st.Error.Code != "demo_permanent" {
			t.Fatalf("%+v %+v", st, st.Error)
		}
		dlq, err := s.stack.JS.Stream(context.Background(), streams.StreamDeadLetters)
		if err != nil {
			t.Fatal(err)
		}
		owner, _ := streams.OwnerToken("conformance")
		m, err := dlq.GetLastMsgForSubject(context.Background(), streams.DeadLetterSubject(owner, id))
		if err != nil || m.Header.Get("Jobwire-Job-Id") != id || !strings.HasPrefix(m.Header.Get("Jobwire-Error"), "demo_permanent") {
			t.Fatalf("dead letter: %v %v", err, m)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		st := s.ended(t, s.submit(t, `{"n":100,"delayMs":100}`, func(r *api.SubmitRequest) { r.Timeout = "1s"; r.MaxAttempts = 1 }))
		if st.State != api.StateFailed || st.Error == nil || st.Error.Code != "timeout" {
			t.Fatalf("%+v %+v", st, st.Error)
		}
	})
	t.Run("cancel while queued", func(t *testing.T) {
		later := time.Now().Add(time.Hour)
		id := s.submit(t, `{"n":1}`, func(r *api.SubmitRequest) { r.RunAt = &later })
		if _, err := s.client.Cancel(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		st := s.ended(t, id)
		types, _ := s.history(t, id)
		if st.State != api.StateCancelled || count(types, "job.started") != 0 {
			t.Fatalf("%+v, events %v", st, types)
		}
	})
	t.Run("cancel while running", func(t *testing.T) {
		id := s.submit(t, `{"n":1000,"delayMs":20}`)
		s.await(t, id, func(st api.JobState) bool { return st.Progress.Done >= 2 })
		if _, err := s.client.Cancel(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		st := s.ended(t, id)
		var res struct{ Count int }
		if st.State != api.StateCancelled || json.Unmarshal(st.Result, &res) != nil || res.Count < 2 || res.Count >= 1000 {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("pause holds queued jobs while a running one finishes; resume runs them", s.pauseScenario)
	t.Run("rate limit holds the starts to the limit", s.rateLimitScenario)
	t.Run("priorities order a backlog", s.prioritiesScenario)
	t.Run("crash and redelivery", func(t *testing.T) {
		id := s.submit(t, `{"n":40,"delayMs":50}`)
		s.await(t, id, func(st api.JobState) bool { return st.Progress.Done >= 3 })
		s.worker.Kill() // SIGKILL: no settle, no deregistration
		s.startWorker(t)
		st := s.ended(t, id)
		types, _ := s.history(t, id)
		if st.State != api.StateCompleted || st.Attempt != 2 || count(types, "job.started") != 2 || count(types, "job.completed") != 1 {
			t.Fatalf("%+v, events %v", st, types)
		}
	})
	t.Run("graceful stop lets the running job finish", func(t *testing.T) {
		id := s.submit(t, `{"n":10,"delayMs":100}`)
		s.await(t, id, func(st api.JobState) bool { return st.Progress.Done >= 1 })
		if err := s.worker.Stop(15 * time.Second); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		st := s.ended(t, id)
		if st.State != api.StateCompleted || st.Attempt != 1 {
			t.Fatalf("after a graceful stop: %+v", st)
		}
		testkit.WaitJobType(t, s.client, countType, false, 30*time.Second)
	})
}
