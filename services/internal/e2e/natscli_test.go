package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/devserver"
)

const natscliVersion = "v0.5.0"

// natsCLI returns the path of the nats CLI, building it with `go install` into the user cache the first
// time. It skips the test when it cannot be built (no module proxy).
func natsCLI(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "jobwire", "natscli-"+natscliVersion)
	bin := filepath.Join(dir, "nats")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "install", "github.com/nats-io/natscli/nats@"+natscliVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build the nats CLI %s (%v), skipping the inspection test:\n%s", natscliVersion, err, out)
	}
	return bin
}

// TestNatsCLIInspection runs the README's "Inspecting with the nats CLI" commands against a live
// `jobwire dev` and checks that their output names our streams, buckets and consumers.
func TestNatsCLIInspection(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the nats CLI")
	}
	nats := natsCLI(t)
	env, base := devEnv(t, t.TempDir())
	env["JOBWIRE_IMPORT_TRACK_DELAY"] = "0s"
	startProc(t, "dev", env, "dev")
	waitReady(t, base)
	tok, _ := auth.NewSigner([]byte(processSecret), "").Sign("alice", time.Hour, "", "")
	c := api.NewClient(base, tok)
	st, _, err := c.Submit(context.Background(), importRequest("road trip", api.FormatCSV, "artist,title\nNina Simone,Feeling Good\nMiles Davis,So What"), "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, st.ID, func(s api.JobState) bool { return s.State == api.StateCompleted })

	server := "nats://127.0.0.1:" + env["JOBWIRE_NATS_PORT"]
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, nats, append([]string{"--server", server}, args...)...)
		cmd.Env = append(os.Environ(), "NO_COLOR=1", "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	subject := "jobs.events.alice." + st.ID
	checks := []struct {
		args []string
		want []string
	}{
		{[]string{"stream", "ls"}, []string{"JOBS", "JOB_EVENTS", "JOBS_DLQ"}},
		{[]string{"stream", "get", "JOB_EVENTS", "--last-for", subject}, []string{"Jobwire-Event: job.completed", `"added":2`}},
		{[]string{"kv", "ls"}, []string{"JOB_STATE", "LIBRARY", "JOB_IDEMPOTENCY"}},
		{[]string{"kv", "get", "JOB_STATE", "alice." + st.ID, "--raw"}, []string{`"state":"completed"`}},
		{[]string{"consumer", "info", "JOBS", "worker-playlist_import"}, []string{"jobs.queue.playlist.import", "Explicit"}},
		{[]string{"consumer", "report", "JOB_EVENTS"}, []string{"projector"}},
		{[]string{"stream", "info", "JOBS_DLQ"}, []string{"jobs.dlq.>"}},
		{[]string{"--user", devserver.SystemUser, "--password", devserver.SystemPassword, "server", "report", "jetstream"}, []string{"jobwire-dev"}},
	}
	for _, ch := range checks {
		out := run(ch.args...)
		for _, w := range ch.want {
			if !strings.Contains(out, w) {
				t.Errorf("nats %s: output lacks %q:\n%s", strings.Join(ch.args, " "), w, out)
			}
		}
	}
	// kv watch streams until stopped: its first lines show the current state.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nats, "--server", server, "kv", "watch", "JOB_STATE", "alice.>")
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "HOME="+t.TempDir())
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "PUT JOB_STATE > alice."+st.ID) {
		t.Errorf("nats kv watch: %s", out)
	}
}
