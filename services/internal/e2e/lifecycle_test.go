package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// A worker SIGKILLed at each step of an attempt loses nothing and runs nothing twice at once: the job
// ends as it should on another worker, and its history shows each run with its own attempt.
func TestWorkerKilledAtEachStepOfAnAttempt(t *testing.T) {
	countBin := testkit.BuildExample(t, "count")
	for _, tc := range []struct {
		step, input string
		runs        int // job.started events at the end
	}{
		{"claimed", `{"n":2}`, 1},
		{"started", `{"n":2}`, 2},
		{"failed", `{"n":2,"failAttempts":1}`, 2},
		{"rescheduled", `{"n":2,"failAttempts":1}`, 2},
		{"ended", `{"n":2}`, 1},
	} {
		t.Run(tc.step, func(t *testing.T) {
			c := startServices(t, 0, nil)
			env := []string{"NATS_URL=" + c.env["NATS_URL"], "JOBWIRE_WORKER_ACK_WAIT=2s", "JOBWIRE_WORKER_BACKOFF_BASE=10ms"}
			doomed := testkit.StartProc(t, "count (pauses at "+tc.step+")", countBin, append(env, "JOBWIRE_WORKER_TEST_PAUSE="+tc.step))
			testkit.WaitJobType(t, c.client, "demo.count", true, 30*time.Second)
			st, _, err := c.client.Submit(context.Background(), api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(tc.input)}, "")
			if err != nil {
				t.Fatal(err)
			}
			streamstest.WaitFor(t, 30*time.Second, func() error {
				if !strings.Contains(doomed.Out.String(), "jobwire-test-pause "+tc.step+" "+st.ID) {
					return errPaused
				}
				return nil
			})
			doomed.Kill()
			testkit.StartProc(t, "count", countBin, env)
			final := waitFor(t, c.client, st.ID, func(s api.JobState) bool { return s.State.Terminal() })
			if final.State != api.StateCompleted || string(final.Result) != `{"count":2}` {
				t.Fatalf("%+v", final)
			}
			var attempts []int
			events, err := c.client.HistoryAll(context.Background(), st.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range events {
				var ev struct {
					Type    string
					Attempt int
				}
				json.Unmarshal(raw, &ev)
				if ev.Type == "job.started" {
					if len(attempts) > 0 && ev.Attempt <= attempts[len(attempts)-1] {
						t.Fatalf("attempt %d started after attempt %d", ev.Attempt, attempts[len(attempts)-1])
					}
					attempts = append(attempts, ev.Attempt)
				}
			}
			if len(attempts) != tc.runs {
				t.Fatalf("started attempts %v, want %d runs", attempts, tc.runs)
			}
		})
	}
}

var errPaused = errors.New("the worker has not reached the step yet")
