package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
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
	replayEvents(t, s.JS, func(ev streams.Event) {
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
	if most := mostInWindow(starts, window); most > limit {
		t.Fatalf("%d starts within %s, want at most %d", most, window, limit)
	}
	if most := mostInWindow(starts, interval); most < limit {
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
	streamstest.WaitFor(t, 10*time.Second, func() error {
		list, err := c.JobTypes(context.Background())
		if err != nil {
			return err
		}
		for _, jt := range list.JobTypes {
			if jt.Name == "demo.count" && jt.RateLimit != nil {
				return nil
			}
		}
		return errors.New("demo.count has no rate limit yet")
	})
	time.Sleep(300 * time.Millisecond)
}

// mostInWindow is the most of the sorted times within any span shorter than d.
func mostInWindow(sorted []time.Time, d time.Duration) int {
	most := 0
	for i, j := 0, 0; j < len(sorted); j++ {
		for sorted[j].Sub(sorted[i]) >= d {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}
