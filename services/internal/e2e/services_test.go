package e2e_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

const processSecret = "e2e-secret-e2e-secret-e2e-secret-0123456789"

func TestImportWithSeparateProcesses(t *testing.T) {
	srv := streamstest.RunServer(t)
	httpAddr := testkit.FreeAddr(t)
	env := map[string]string{
		"NATS_URL":                   srv.URL(),
		"JOBWIRE_JWT_SECRET":         processSecret,
		"JOBWIRE_HTTP_ADDR":          httpAddr,
		"JOBWIRE_IMPORT_TRACK_DELAY": "1ms",
	}
	startProc(t, "projector", env, "projector")
	startProc(t, "worker", env, "worker")
	gw := startProc(t, "gateway", env, "gateway")
	base := "http://" + httpAddr
	waitReady(t, base)

	tok, _ := auth.NewSigner([]byte(processSecret), "").Sign("alice", time.Hour, "", "")
	c := api.NewClient(base, tok)
	testkit.WaitJobType(t, c, api.JobTypePlaylistImport, true, 30*time.Second)
	content, distinct, _, _ := testPlaylist()
	st, _, err := c.Submit(context.Background(), importRequest("mix", api.FormatM3U, content), "")
	if err != nil {
		t.Fatal(err)
	}
	final, _ := watchToEnd(t, c, st.ID)
	checkImport(t, c, final, distinct)

	// The replay of the event log matches the live projection.
	rebuild := exec.Command(binary, "admin", "rebuild")
	rebuild.Env = []string{"NATS_URL=" + srv.URL()}
	out, err := rebuild.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "JOB_STATE matches the replay") {
		t.Fatalf("admin rebuild: %v\n%s", err, out)
	}
	// A damaged projection (the job's state deleted while the projector runs) is repaired by --apply.
	repairState(t, binary, srv, c, final)
	// An Idempotency-Key keeps its job across a gateway restart.
	req := importRequest("once", api.FormatCSV, "artist,title\nA,B")
	first, created, err := c.Submit(context.Background(), req, "restart-key")
	if err != nil || !created {
		t.Fatalf("first submit: %v created=%v", err, created)
	}
	if err := gw.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	startProc(t, "gateway-again", env, "gateway")
	waitReady(t, base)
	again, created, err := c.Submit(context.Background(), req, "restart-key")
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("after restart: %v created=%v %s vs %s", err, created, again.ID, first.ID)
	}
}

// repairState deletes the finished job's state from JOB_STATE, then checks `admin rebuild` reports it
// (exit 3), `admin rebuild --apply` writes it back, and the job reads as before.
func repairState(t *testing.T, binary string, srv *streamstest.Server, c *api.Client, want api.JobState) {
	t.Helper()
	ctx := context.Background()
	_, js := srv.Connect(t)
	kv, err := js.KeyValue(ctx, streams.BucketState)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, streams.StateKey("alice", want.ID)); err != nil {
		t.Fatal(err)
	}
	admin := func(wantCode int, wantOut string, args ...string) {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"admin", "rebuild"}, args...)...)
		cmd.Env = []string{"NATS_URL=" + srv.URL()}
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != wantCode || !strings.Contains(string(out), wantOut) {
			t.Fatalf("admin rebuild %v: exit %d, want %d with %q\n%s", args, code, wantCode, wantOut, out)
		}
	}
	admin(3, "missing_live")
	admin(0, "repaired 1 of 1 differences", "--apply")
	admin(0, "JOB_STATE matches the replay")
	got, err := c.Get(ctx, want.ID)
	if err != nil || got.State != want.State || got.Progress != want.Progress {
		t.Fatalf("repaired job: %v %+v, want %+v", err, got, want)
	}
}
