package e2e_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
)

// countWorkers starts n examples/count processes serving demo.count on s's NATS, and waits until the
// type is served.
func countWorkers(t *testing.T, s *stacktest.Stack, n int, env ...string) *api.Client {
	t.Helper()
	bin := testkit.BuildExample(t, "count")
	env = append([]string{"NATS_URL=" + s.Server.URL(), "JOBWIRE_WORKER_SHUTDOWN_GRACE=5s"}, env...)
	for range n {
		testkit.StartProc(t, "examples/count", bin, env)
	}
	c := s.Client(t, "alice")
	testkit.WaitJobType(t, c, "demo.count", true, 30*time.Second)
	return c
}

// submitCounts submits n demo.count jobs and returns their ids.
func submitCounts(t *testing.T, c *api.Client, n int, input string) []string {
	t.Helper()
	var ids []string
	for range n {
		st, _, err := c.Submit(context.Background(), api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(input)}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ID)
	}
	return ids
}

// startTimes returns when each job started (its job.started events), by job id.
func startTimes(t *testing.T, s *stacktest.Stack) map[string][]time.Time {
	t.Helper()
	out := map[string][]time.Time{}
	testkit.ReplayEvents(t, s.JS, func(ev streams.Event) {
		if ev.Type == streams.EventStarted {
			out[ev.JobID] = append(out[ev.JobID], ev.At)
		}
	})
	return out
}

// A pause over HTTP stops two worker processes from taking jobs while a running one finishes and
// submits queue; a resume runs what queued.
func TestPauseHoldsJobsOnEveryWorkerProcess(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	c := countWorkers(t, s, 2)
	ops := s.Operator(t, "ops")
	ctx := context.Background()
	running := submitCounts(t, c, 1, `{"n":20,"delayMs":100}`)[0]
	waitFor(t, c, running, func(st api.JobState) bool { return st.State == api.StateActive })
	if _, err := ops.PauseJobType(ctx, "demo.count"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a pull waiting when the pause came ends within a second
	held := submitCounts(t, c, 6, `{"n":1}`)
	waitFor(t, c, running, func(st api.JobState) bool { return st.State == api.StateCompleted })
	time.Sleep(time.Second)
	started := startTimes(t, s)
	for _, id := range held {
		if len(started[id]) != 0 {
			t.Fatalf("job %s started while its type was paused", id)
		}
	}
	if _, err := ops.ResumeJobType(ctx, "demo.count"); err != nil {
		t.Fatal(err)
	}
	for _, id := range held {
		waitFor(t, c, id, func(st api.JobState) bool { return st.State == api.StateCompleted })
	}
}

// A rate limit holds over two worker processes with 16 slots between them: of 18 jobs queued at once,
// no window of the interval holds more starts than the limit, and the limit is reached.
func TestRateLimitHoldsOverTwoWorkerProcesses(t *testing.T) {
	const limit, jobs, interval = 4, 18, time.Second
	s := stacktest.Start(t, stacktest.Options{})
	c := countWorkers(t, s, 2, "JOBWIRE_WORKER_CONCURRENCY=8")
	ops := s.Operator(t, "ops")
	if _, err := ops.SetRateLimit(context.Background(), "demo.count", api.RateLimit{Limit: limit, Interval: api.Duration(interval)}); err != nil {
		t.Fatal(err)
	}
	waitRateLimit(t, c)
	ids := submitCounts(t, c, jobs, `{"n":1}`)
	for _, id := range ids {
		waitFor(t, c, id, func(st api.JobState) bool { return st.State == api.StateCompleted })
	}
	var starts []time.Time
	for _, id := range ids {
		starts = append(starts, startTimes(t, s)[id]...)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	// A ticket is taken a moment before the started event is written, and that moment varies, so the
	// starts are counted in windows 10 % shorter than the interval.
	window := interval * 9 / 10
	if most := testkit.MostInWindow(starts, window); most > limit {
		t.Fatalf("%d starts within %s, want at most %d", most, window, limit)
	}
	if most := testkit.MostInWindow(starts, interval); most < limit {
		t.Fatalf("at most %d starts in a %s window: the limit %d was never reached", most, interval, limit)
	}
	if span := starts[len(starts)-1].Sub(starts[0]); span < time.Duration(jobs/limit-1)*interval*9/10 {
		t.Fatalf("%d starts took %s: faster than %d per %s", jobs, span, limit, interval)
	}
	t.Logf("%d starts over %s", len(starts), starts[len(starts)-1].Sub(starts[0]))
}

// waitRateLimit waits until GET /v1/job-types lists demo.count's rate limit, and a moment more for
// the workers' watches, which hear it when the gateway's does.
func waitRateLimit(t *testing.T, c *api.Client) {
	t.Helper()
	testkit.WaitJobTypeListed(t, c, "demo.count", "with a rate limit", 10*time.Second, func(jt api.JobType) bool { return jt.RateLimit != nil })
	time.Sleep(300 * time.Millisecond)
}

// Priorities order the backlog over two worker processes: of jobs queued (while the type is paused)
// low first, then normal, then high, the high ones start first and the low ones last, while the anti-starvation rounds let a few
// of the lower levels through early.
func TestPrioritiesOrderTheBacklogOverTwoWorkerProcesses(t *testing.T) {
	const perLevel = 10
	s := stacktest.Start(t, stacktest.Options{Gateway: func(c *gateway.Config) { c.SubmitBurst = 3 * perLevel }})
	c := countWorkers(t, s, 2, "JOBWIRE_WORKER_CONCURRENCY=2")
	ops := s.Operator(t, "ops")
	if _, err := ops.PauseJobType(context.Background(), "demo.count"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the pulls waiting when the pause came end
	level := map[string]api.Priority{}
	for _, p := range []api.Priority{api.PriorityLow, api.PriorityNormal, api.PriorityHigh} {
		for range perLevel {
			st, _, err := c.Submit(context.Background(), api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(`{"n":1,"delayMs":20}`), Priority: p}, "")
			if err != nil {
				t.Fatal(err)
			}
			if want := streams.NormalPriority(p); st.Priority != want {
				t.Fatalf("submitted at %s, state says %q", p, st.Priority)
			}
			level[st.ID] = p
		}
	}
	if _, err := ops.ResumeJobType(context.Background(), "demo.count"); err != nil {
		t.Fatal(err)
	}
	for id := range level {
		waitFor(t, c, id, func(st api.JobState) bool { return st.State == api.StateCompleted })
	}
	var order []api.Priority
	testkit.ReplayEvents(t, s.JS, func(ev streams.Event) {
		if ev.Type == streams.EventStarted {
			order = append(order, level[ev.JobID])
		}
	})
	t.Logf("start order: %v", order)
	if n := count(order[:perLevel], api.PriorityHigh); n < perLevel*7/10 {
		t.Errorf("%d of the first %d starts were high, want at least %d", n, perLevel, perLevel*7/10)
	}
	if n := count(order[len(order)-perLevel/2:], api.PriorityHigh); n != 0 {
		t.Errorf("%d of the last %d starts were high", n, perLevel/2)
	}
	if high, normal, low := testkit.MeanPosition(order, api.PriorityHigh), testkit.MeanPosition(order, api.PriorityNormal), testkit.MeanPosition(order, api.PriorityLow); !(high < normal && normal < low) {
		t.Errorf("mean start positions high %.1f, normal %.1f, low %.1f: want them in that order", high, normal, low)
	}
}

func count(ps []api.Priority, p api.Priority) int {
	n := 0
	for _, q := range ps {
		if q == p {
			n++
		}
	}
	return n
}
