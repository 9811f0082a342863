package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
)

// bullmqDir is the tiny Node project that reads the mirror with the real BullMQ client.
const bullmqDir = "testdata/bullmq"

// needBullMQ returns the node binary, or skips the test when Node or the installed bullmq package is
// missing, unless JOBWIRE_REQUIRE_BULLMQ=1 (CI), which makes that a failure.
func needBullMQ(t *testing.T) string {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("JOBWIRE_REQUIRE_BULLMQ") == "1" {
			t.Fatalf("BullMQ compatibility check cannot run: %s (JOBWIRE_REQUIRE_BULLMQ=1)", why)
		}
		t.Skipf("skipping the BullMQ compatibility check: %s", why)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(bullmqDir, "node_modules", "bullmq", "package.json")); err != nil {
		missing("run `npm install` in services/internal/mirror/" + bullmqDir)
	}
	return node
}

// bullmqJob is one job as check.mjs reports it (and, with fewer fields, expects it).
type bullmqJob struct {
	ID           string          `json:"id"`
	Found        bool            `json:"found,omitempty"`
	State        string          `json:"state,omitempty"`
	Name         string          `json:"name,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"`
	Progress     *int            `json:"progress,omitempty"`
	ReturnValue  json.RawMessage `json:"returnvalue,omitempty"`
	FailedReason *string         `json:"failedReason,omitempty"`
	AttemptsMade *int            `json:"attemptsMade,omitempty"`
	Finished     *bool           `json:"finished,omitempty"`
}

type bullmqReport struct {
	OK       bool                `json:"ok"`
	Version  string              `json:"bullmq"`
	Jobs     []bullmqJob         `json:"jobs"`
	Counts   map[string]int      `json:"counts"`
	Listed   map[string][]string `json:"listed"`
	Failures []string            `json:"failures"`
}

func ptr[T any](v T) *T { return &v }

// TestBullMQReadsTheMirror runs Node with the npm bullmq package against the mirror's Redis: getJob
// finds each job with its progress, returnvalue or failedReason, getState says completed or failed
// (unknown for queued and running jobs, which are in no list by design), getJobCounts is right, and
// getJobs (what Bull Board lists) works.
func TestBullMQReadsTheMirror(t *testing.T) {
	t.Parallel()
	node := needBullMQ(t)
	b := setup(t, setupOpts{cfg: func(c *Config) { c.Queue = "legacy-sync" }})

	done := b.newJob("road trip", true)
	b.progress(done, 5, 10)
	b.complete(done, `{"added":9,"duplicates":1,"existing":0,"invalid":0,"invalidLines":[]}`)
	failed := b.newJob("broken", true)
	b.fail(failed, "line 3: unreadable")
	cancelled := b.newJob("stopped", true)
	b.cancel(cancelled, "by user")
	running := b.newJob("running", true)
	b.progress(running, 2, 5)
	queued := b.newJob("waiting", false)

	b.waitInSet(b.k.completed, done)
	b.waitInSet(b.k.failed, failed)
	b.waitInSet(b.k.failed, cancelled)
	b.waitField(running, "progress", "40")
	b.waitField(queued, "data", `{"name":"waiting"}`)

	expect := map[string]any{
		"jobs": []bullmqJob{
			{ID: done, State: "completed", Name: api.JobTypePlaylistImport, Data: json.RawMessage(`{"name":"road trip"}`),
				Progress: ptr(100), ReturnValue: json.RawMessage(`{"added":9,"duplicates":1,"existing":0,"invalid":0,"invalidLines":[]}`),
				AttemptsMade: ptr(1), Finished: ptr(true)},
			{ID: failed, State: "failed", FailedReason: ptr("line 3: unreadable"), AttemptsMade: ptr(1), Finished: ptr(true)},
			{ID: cancelled, State: "failed", FailedReason: ptr("cancelled: by user"), Finished: ptr(true)},
			{ID: running, State: "unknown", Progress: ptr(40), Data: json.RawMessage(`{"name":"running"}`), Finished: ptr(false)},
			{ID: queued, State: "unknown", Progress: ptr(0), Finished: ptr(false)},
		},
		"counts": map[string]int{"completed": 1, "failed": 2, "active": 0, "waiting": 0, "delayed": 0,
			"paused": 0, "prioritized": 0, "waiting-children": 0},
		"missing": []string{"01ARZ3NDEKTSV4RRFFQ69G5FAV"},
	}
	report := runCheck(t, node, b, expect)
	if !report.OK {
		t.Fatalf("BullMQ %s disagrees with the mirror:\n%v", report.Version, report.Failures)
	}
	if got := report.Listed["completed"]; len(got) != 1 || got[0] != done {
		t.Errorf("getJobs(completed) = %v", got)
	}
	if got := report.Listed["failed"]; len(got) != 2 {
		t.Errorf("getJobs(failed) = %v", got)
	}
	t.Logf("BullMQ %s reads the mirror: counts %v", report.Version, report.Counts)
	b.checkKeys() // reading with BullMQ created no key either

	// The checker is not vacuous: a wrong expectation fails.
	wrong := map[string]any{
		"jobs":   []bullmqJob{{ID: done, State: "active"}},
		"counts": map[string]int{"completed": 2},
	}
	if report := runCheck(t, node, b, wrong); report.OK || len(report.Failures) != 2 {
		t.Errorf("a wrong expectation gave ok=%v failures=%v, want two failures", report.OK, report.Failures)
	}
}

// runCheck runs check.mjs with expect and returns its report.
func runCheck(t *testing.T, node string, b *bundle, expect any) bullmqReport {
	t.Helper()
	in, err := json.Marshal(expect)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs")
	cmd.Dir = bullmqDir
	cmd.Env = append(os.Environ(), "REDIS_URL="+b.redis.URL(), "QUEUE="+b.cfg.Queue, "CHECK_EXPECT="+string(in))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var report bullmqReport
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &report); err != nil {
		t.Fatalf("check.mjs: %v (run: %v)\nstdout: %s\nstderr: %s", err, runErr, stdout.String(), stderr.String())
	}
	if runErr != nil && report.OK {
		t.Fatalf("check.mjs exited with %v but reported ok; stderr: %s", runErr, stderr.String())
	}
	t.Logf("check.mjs report: %s", bytes.TrimSpace(stdout.Bytes()))
	return report
}
