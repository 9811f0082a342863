package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

var devToken = regexp.MustCompile(`export JOBWIRE_TOKEN=(\S+)`)

// printedToken waits for the token `jobwire dev` prints and returns it.
func printedToken(t *testing.T, dev *testkit.Proc) string {
	t.Helper()
	var tok string
	streamstest.WaitFor(t, 30*time.Second, func() error {
		m := devToken.FindAllStringSubmatch(dev.Out.String(), -1)
		if len(m) == 0 {
			return fmt.Errorf("no token printed yet")
		}
		tok = m[len(m)-1][1]
		return nil
	})
	return tok
}

// TestOwnJobTypeFromOutside runs `jobwire dev` and examples/count as separate processes, the README's
// commands: demo.count registers, runs with live progress over SSE, its input is checked against its
// schema, it goes offline when its worker stops and its queued jobs run when it comes back. dev makes
// up its secret and keeps it: the printed token still works after a restart.
func TestOwnJobTypeFromOutside(t *testing.T) {
	countBin := testkit.BuildExample(t, "count")
	env, base := devEnv(t, t.TempDir())
	delete(env, "JOBWIRE_JWT_SECRET")
	dev := startProc(t, "dev", env, "dev")
	waitReady(t, base)
	c := api.NewClient(base, printedToken(t, dev))
	ctx := context.Background()
	count := testkit.StartProc(t, "examples/count", countBin, []string{"NATS_URL=nats://127.0.0.1:" + env["JOBWIRE_NATS_PORT"]})
	testkit.WaitJobType(t, c, "demo.count", true, 15*time.Second)

	// Live progress over SSE, increasing, then the result.
	st, _, err := c.Submit(ctx, api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(`{"n":8,"delayMs":40}`)}, "")
	if err != nil {
		t.Fatal(err)
	}
	var seen []api.JobState
	if err := c.WatchJob(ctx, st.ID, func(s api.JobState) error { seen = append(seen, s); return nil }, nil); err != nil {
		t.Fatal(err)
	}
	final := seen[len(seen)-1]
	if final.State != api.StateCompleted || string(final.Result) != `{"count":8}` || final.Progress.Done != 8 {
		t.Fatalf("final %+v", final)
	}
	steps := 0
	for i := 1; i < len(seen); i++ {
		if seen[i].Progress.Done < seen[i-1].Progress.Done {
			t.Fatalf("progress went back: %+v then %+v", seen[i-1].Progress, seen[i].Progress)
		}
		if seen[i].Progress.Done > seen[i-1].Progress.Done {
			steps++
		}
	}
	if steps < 3 {
		t.Fatalf("only %d progress steps seen over SSE in %d states", steps, len(seen))
	}

	// The gateway checks the input against demo.count's schema, and knows which types exist.
	for input, pointer := range map[string]string{`{"n":"x"}`: "/n", `{"n":0}`: "/n", `{"n":1,"nope":true}`: "nope", `{}`: "'n'"} {
		_, _, err := c.Submit(ctx, api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(input)}, "")
		if !api.IsCode(err, api.CodeInvalidInput) || !strings.Contains(err.Error(), pointer) {
			t.Errorf("%s: %v, want invalid_input naming %s", input, err, pointer)
		}
	}
	if _, _, err := c.Submit(ctx, api.SubmitRequest{Type: "demo.nope", Input: json.RawMessage(`{}`)}, ""); !api.IsCode(err, api.CodeUnknownJobType) {
		t.Errorf("unregistered type: %v", err)
	}

	// The worker stops: the type shows offline, its jobs wait, and run when it is back.
	if err := count.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop examples/count: %v", err)
	}
	testkit.WaitJobType(t, c, "demo.count", false, 15*time.Second)
	queued, _, err := c.Submit(ctx, api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(`{"n":2}`)}, "")
	if err != nil {
		t.Fatalf("submit while the worker is away: %v", err)
	}
	if err := count.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(t, c, queued.ID, func(s api.JobState) bool { return s.State.Terminal() }); got.State != api.StateCompleted {
		t.Fatalf("queued job after the worker came back: %+v", got)
	}

	// dev restarts on the same data dir: the token it printed the first time still works.
	if err := dev.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop dev: %v", err)
	}
	if err := dev.Restart(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, base)
	if _, err := c.Get(ctx, queued.ID); err != nil {
		t.Fatalf("the first token after a restart: %v", err)
	}
}
