package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// workerOf returns the name ("host-pid") of the worker that started the job's latest attempt.
func workerOf(t *testing.T, c *api.Client, id string) string {
	t.Helper()
	h, err := c.History(context.Background(), id, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	worker := ""
	for _, raw := range h.Events {
		var ev struct{ Type, Worker string }
		json.Unmarshal(raw, &ev)
		if ev.Type == "job.started" {
			worker = ev.Worker
		}
	}
	return worker
}

type cluster struct {
	env     map[string]string
	base    string
	workers []*testkit.Proc
	client  *api.Client
}

func startServices(t *testing.T, workers int, extra map[string]string) *cluster {
	t.Helper()
	srv := streamstest.RunServer(t)
	httpAddr := testkit.FreeAddr(t)
	env := map[string]string{
		"NATS_URL":                   srv.URL(),
		"JOBWIRE_JWT_SECRET":         processSecret,
		"JOBWIRE_HTTP_ADDR":          httpAddr,
		"JOBWIRE_IMPORT_TRACK_DELAY": "15ms",
		"JOBWIRE_WORKER_ACK_WAIT":    "2s",
	}
	for k, v := range extra {
		env[k] = v
	}
	c := &cluster{env: env, base: "http://" + httpAddr}
	startProc(t, "projector", env, "projector")
	for i := 0; i < workers; i++ {
		c.workers = append(c.workers, startProc(t, fmt.Sprintf("worker-%d", i), env, "worker"))
	}
	startProc(t, "gateway", env, "gateway")
	waitReady(t, c.base)
	tok, _ := auth.NewSigner([]byte(processSecret), "").Sign("alice", time.Hour, "", "")
	c.client = api.NewClient(c.base, tok)
	if workers > 0 {
		// The gateway accepts a type once a worker registered it.
		testkit.WaitJobType(t, c.client, api.JobTypePlaylistImport, true, 30*time.Second)
	}
	return c
}

// killRunner kills (SIGKILL) the worker process running the job.
func (c *cluster) killRunner(t *testing.T, id string) {
	t.Helper()
	name := workerOf(t, c.client, id)
	for _, w := range c.workers {
		if strings.HasSuffix(name, fmt.Sprintf("-%d", w.Pid())) {
			w.Kill()
			return
		}
	}
	t.Fatalf("no worker process named %q", name)
}

func TestKilledWorkersJobCompletesElsewhere(t *testing.T) {
	c := startServices(t, 2, nil)
	content, distinct, _, _ := testPlaylist()
	st, _, err := c.client.Submit(context.Background(), importRequest("mix", api.FormatM3U, content), "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.client, st.ID, func(s api.JobState) bool { return s.Progress.Done >= 15 })
	first := workerOf(t, c.client, st.ID)
	c.killRunner(t, st.ID)
	final := waitFor(t, c.client, st.ID, func(s api.JobState) bool { return s.State.Terminal() })
	if final.Attempt != 2 || workerOf(t, c.client, st.ID) == first {
		t.Fatalf("attempt %d by %s", final.Attempt, workerOf(t, c.client, st.ID))
	}
	checkImport(t, c.client, final, distinct)
}

func TestJobThatCrashesEveryAttemptEndsFailed(t *testing.T) {
	c := startServices(t, 1, map[string]string{"JOBWIRE_WORKER_MAX_ATTEMPTS": "2"})
	content, _, _, _ := testPlaylist()
	st, _, err := c.client.Submit(context.Background(), importRequest("crashy", api.FormatM3U, content), "")
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		waitFor(t, c.client, st.ID, func(s api.JobState) bool { return s.Attempt == attempt && s.Progress.Done >= 5 })
		c.killRunner(t, st.ID)
		c.workers = append(c.workers, startProc(t, fmt.Sprintf("worker-again-%d", attempt), c.env, "worker"))
	}
	final := waitFor(t, c.client, st.ID, func(s api.JobState) bool { return s.State.Terminal() })
	if final.State != api.StateFailed || final.Error == nil || final.Error.Code != "attempts_exhausted" {
		t.Fatalf("want failed attempts_exhausted, got %s %+v", final.State, final.Error)
	}
	// It waits in the dead letters; a retry runs it to completion.
	if _, err := retry(c, st.ID); err != nil {
		t.Fatal(err)
	}
	final = waitFor(t, c.client, st.ID, func(s api.JobState) bool { return s.State == api.StateCompleted })
	var res api.ImportResult
	json.Unmarshal(final.Result, &res)
	if res.Added+res.Existing != 85 {
		t.Fatalf("after retry: %+v", res)
	}
}

func retry(c *cluster, id string) (int, error) {
	status, _, body := doRequest("POST", c.base+"/v1/jobs/"+id+"/retry", c.client.Token)
	if status != 202 {
		return status, fmt.Errorf("retry: %d %s", status, body)
	}
	return status, nil
}
