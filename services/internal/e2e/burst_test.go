package e2e_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/jobtypes"
	"github.com/jobwire/jobwire/services/internal/testkit"
)

// TestWorkerKilledDuringABurstLosesNothing kills (SIGKILL) a worker in the middle of a batch of
// no-op jobs whose events the projector folds together: every job still ends completed exactly once,
// on the surviving worker, and the projection equals the replay of the log.
func TestWorkerKilledDuringABurstLosesNothing(t *testing.T) {
	c := startServices(t, 2, map[string]string{"JOBWIRE_NOOP_JOBS": "true", "JOBWIRE_WORKER_CONCURRENCY": "32",
		"JOBWIRE_SUBMIT_RATE": "off"})
	testkit.WaitJobType(t, c.client, jobtypes.NoopType, true, 30*time.Second)
	const n = 2000
	items := make([]api.BatchItem, 0, 1000)
	var ids []string
	for len(ids) < n {
		items = items[:0]
		for range 1000 {
			items = append(items, api.BatchItem{SubmitRequest: api.SubmitRequest{Type: jobtypes.NoopType, Input: json.RawMessage(`{}`)}})
		}
		res, err := c.client.SubmitBatch(context.Background(), items)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Status != 202 {
				t.Fatalf("item answered %+v", r)
			}
			ids = append(ids, r.Job.ID)
		}
		if len(ids) == 1000 {
			c.workers[0].Kill() // mid-burst: jobs claimed, started, some completed, none acked yet
		}
	}
	done := map[api.State]int{}
	for _, id := range ids {
		st := waitFor(t, c.client, id, func(s api.JobState) bool { return s.State.Terminal() })
		done[st.State]++
	}
	if done[api.StateCompleted] != n {
		t.Fatalf("end states %v, want all %d completed", done, n)
	}
	// Exactly one completion per job in the log, whichever worker ran it.
	for _, id := range ids[:200] {
		h, err := c.client.HistoryAll(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		completed := 0
		for _, ev := range h {
			completed += strings.Count(string(ev), `"type":"job.completed"`)
		}
		if completed != 1 {
			t.Fatalf("job %s completed %d times: %d events", id, completed, len(h))
		}
	}
	rebuild := exec.Command(binary, "admin", "rebuild")
	rebuild.Env = []string{"NATS_URL=" + c.env["NATS_URL"]}
	out, err := rebuild.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "JOB_STATE matches the replay") {
		t.Fatalf("admin rebuild: %v\n%s", err, out)
	}
}
