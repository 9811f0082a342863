package e2e_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
)

// MaxInFlight caps a type's running jobs over every worker process: three examples/count processes
// with 4 slots each and a cap of 3 never run more than 3 jobs at once, and do reach 3. The count is
// read from the event log in its order (a job runs from its started event to its terminal one), so it
// does not depend on timing.
func TestMaxInFlightHoldsOverThreeWorkerProcesses(t *testing.T) {
	const limit, jobs = 3, 15
	bin := testkit.BuildExample(t, "count")
	s := stacktest.Start(t, stacktest.Options{})
	c := s.Client(t, "alice")
	env := []string{"NATS_URL=" + s.Server.URL(), "JOBWIRE_WORKER_CONCURRENCY=4",
		"JOBWIRE_WORKER_MAX_IN_FLIGHT=" + strconv.Itoa(limit), "JOBWIRE_WORKER_SHUTDOWN_GRACE=5s"}
	for range 3 {
		testkit.StartProc(t, "examples/count", bin, env)
	}
	testkit.WaitJobType(t, c, "demo.count", true, 30*time.Second)
	ctx := context.Background()
	var ids []string
	for range jobs {
		st, _, err := c.Submit(ctx, api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(`{"n":5,"delayMs":40}`)}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ID)
	}
	for _, id := range ids {
		waitFor(t, c, id, func(st api.JobState) bool { return st.State == api.StateCompleted })
	}
	if most := mostRunningAtOnce(t, s.JS); most != limit {
		t.Fatalf("at most %d jobs ran at once, want exactly the cap %d", most, limit)
	}
}

// mostRunningAtOnce replays JOB_EVENTS in order and returns the most jobs between their started and
// terminal events at any point.
func mostRunningAtOnce(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	running, most := map[string]bool{}, 0
	testkit.ReplayEvents(t, js, func(ev streams.Event) {
		switch ev.Type {
		case streams.EventStarted:
			running[ev.JobID] = true
		case streams.EventCompleted, streams.EventFailed, streams.EventCancelled:
			delete(running, ev.JobID)
		}
		most = max(most, len(running))
	})
	return most
}
