package e2e_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// devEnv is the environment of a `jobwire dev` on free ports with its data in dir.
func devEnv(t *testing.T, dir string) (map[string]string, string) {
	httpAddr := testkit.FreeAddr(t)
	return map[string]string{
		"JOBWIRE_DATA_DIR":              dir,
		"JOBWIRE_NATS_PORT":             strconv.Itoa(testkit.FreePort(t)),
		"JOBWIRE_NATS_MONITOR_ADDR":     testkit.FreeAddr(t),
		"JOBWIRE_HTTP_ADDR":             httpAddr,
		"JOBWIRE_JWT_SECRET":            processSecret,
		"JOBWIRE_IMPORT_TRACK_DELAY":    "15ms",
		"JOBWIRE_WORKER_ACK_WAIT":       "2s",
		"JOBWIRE_WORKER_SHUTDOWN_GRACE": "100ms",
	}, "http://" + httpAddr
}

// TestDevRestartMidImport stops `jobwire dev` in the middle of an import, once gracefully and once with
// SIGKILL, restarts it on the same data dir, and checks the import completes with every track exactly
// once and earlier jobs kept.
func TestDevRestartMidImport(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run("crash="+strconv.FormatBool(crash), func(t *testing.T) {
			dir := t.TempDir()
			env, base := devEnv(t, dir)
			dev := startProc(t, "dev", env, "dev")
			waitReady(t, base)
			tok, _ := auth.NewSigner([]byte(processSecret), "").Sign("alice", time.Hour, "", "")
			c := api.NewClient(base, tok)
			bobTok, _ := auth.NewSigner([]byte(processSecret), "").Sign("bob", time.Hour, "", "")
			bob := api.NewClient(base, bobTok)
			ctx := context.Background()

			small, _, err := bob.Submit(ctx, importRequest("small", api.FormatCSV, "artist,title\nEarlier,Job"), "")
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, bob, small.ID, func(st api.JobState) bool { return st.State == api.StateCompleted })
			content, distinct, _, _ := testPlaylist()
			st, _, err := c.Submit(ctx, importRequest("mix", api.FormatM3U, content), "")
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, c, st.ID, func(s api.JobState) bool { return s.Progress.Done >= 20 })
			if crash {
				dev.Kill()
			} else if err := dev.Stop(30 * time.Second); err != nil {
				t.Fatal(err)
			}

			startProc(t, "dev-again", env, "dev")
			waitReady(t, base)
			final := waitFor(t, c, st.ID, func(s api.JobState) bool { return s.State.Terminal() })
			if final.Attempt < 2 {
				t.Fatalf("job was not run again after the restart: attempt %d", final.Attempt)
			}
			checkImport(t, c, final, distinct)
			list, err := bob.List(ctx, "", "", 10)
			if err != nil || len(list.Jobs) != 1 || list.Jobs[0].State != api.StateCompleted {
				t.Fatalf("jobs after restart: %v %+v", err, list)
			}
		})
	}
}

// waitFor polls the job (every 10 ms, for up to a minute) until cond holds.
func waitFor(t *testing.T, c *api.Client, id string, cond func(api.JobState) bool) api.JobState {
	t.Helper()
	var st api.JobState
	streamstest.WaitFor(t, time.Minute, func() error {
		var err error
		st, err = c.Get(context.Background(), id)
		if err != nil {
			return err
		}
		if !cond(st) {
			return fmt.Errorf("state %s progress %+v", st.State, st.Progress)
		}
		return nil
	})
	return st
}
