package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/console"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// fastConsole samples the console every 50 ms, and the dead letters and the gateways' stats every
// 100 ms, so the tests need not wait seconds.
func fastConsole() setupOption {
	return withGateway(func(c *gateway.Config) {
		c.Console = console.Config{Interval: 50 * time.Millisecond, DeadLetterInterval: 100 * time.Millisecond,
			StatsInterval: 100 * time.Millisecond}
	})
}

// viewer is one open console stream; it keeps every snapshot it reads, with its raw data.
type viewer struct {
	mu    sync.Mutex
	snaps []api.ConsoleSnapshot
	raw   map[time.Time]string // data by the snapshot's time
	err   error
	seen  int // the snapshot the last wait returned: the next looks from there
}

// openConsole opens the console stream of c's gateway and reads it until the test ends.
func openConsole(t *testing.T, c *api.Client) *viewer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.OpenConsole(ctx)
	if err != nil {
		cancel()
		t.Fatalf("open the console: %v", err)
	}
	v := &viewer{raw: map[time.Time]string{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := s.Next()
			if err == nil && ev.Event != api.EventConsole {
				err = fmt.Errorf("a %q event on the console stream", ev.Event)
			}
			var snap api.ConsoleSnapshot
			if err == nil {
				snap, err = ev.Console()
			}
			v.mu.Lock()
			if err != nil {
				v.err = err
				v.mu.Unlock()
				return
			}
			v.snaps = append(v.snaps, snap)
			v.raw[snap.At] = string(ev.Data)
			v.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		s.Close()
		<-done
	})
	return v
}

// wait waits for a snapshot that satisfies ok, from the one the last wait returned on, and returns it.
func (v *viewer) wait(t *testing.T, what string, ok func(api.ConsoleSnapshot) bool) api.ConsoleSnapshot {
	t.Helper()
	var found api.ConsoleSnapshot
	streamstest.WaitFor(t, 15*time.Second, func() error {
		v.mu.Lock()
		defer v.mu.Unlock()
		for ; v.seen < len(v.snaps); v.seen++ {
			if ok(v.snaps[v.seen]) {
				found = v.snaps[v.seen] // the next wait starts from it: it stands until the next change
				return nil
			}
		}
		if v.err != nil && !errors.Is(v.err, context.Canceled) {
			return fmt.Errorf("%s: the stream ended: %v", what, v.err)
		}
		if len(v.snaps) == 0 {
			return fmt.Errorf("%s: no snapshot yet", what)
		}
		last, _ := json.Marshal(v.snaps[len(v.snaps)-1])
		return fmt.Errorf("%s: not yet; the last snapshot: %s", what, last)
	})
	return found
}

// row is the snapshot's row of jobType (zero when it has none).
func row(s api.ConsoleSnapshot, jobType string) api.ConsoleJobType {
	for _, r := range s.Types {
		if r.Type == jobType {
			return r
		}
	}
	return api.ConsoleJobType{}
}

// The console stream admits operators only: their full tokens (header or session cookie) and their
// stream tokens, which carry the role; anyone else is refused, and GET /v1/session says who is who.
func TestConsoleAdmitsOperatorsOnly(t *testing.T) {
	b := setup(t)
	user, ops := b.token(t, "alice"), b.operatorToken(t, "ops")
	job := b.submitSteps(t, b.client(t, "ops"), stepsInput{Steps: 1})
	userStream, _ := issuedStreamToken(t, b, user, "")
	opsStream, _ := issuedStreamToken(t, b, ops, "")
	opsJobStream, _ := issuedStreamToken(t, b, ops, `{"jobId":"`+job.ID+`"}`)
	url := b.url + api.OperatorEventsPath
	for _, tc := range []struct {
		name   string
		url    string
		hdr    []string
		status int
	}{
		{"no token", url, nil, 401},
		{"a bad token", url, []string{"Authorization", "Bearer nope"}, 401},
		{"a user's token", url, []string{"Authorization", "Bearer " + user}, 403},
		{"a user's stream token", url + "?access_token=" + userStream, nil, 403},
		{"an operator's stream token limited to a job", url + "?access_token=" + opsJobStream, nil, 403},
		{"an operator's token", url, []string{"Authorization", "Bearer " + ops}, 200},
		{"an operator's session cookie", url, []string{"Cookie", gateway.CookieName + "=" + ops}, 200},
		{"an operator's stream token", url + "?access_token=" + opsStream, nil, 200},
	} {
		status, hdr, body := streamStatus(t, tc.url, tc.hdr...)
		if status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.status)
		}
		if status == 200 && hdr.Get("Content-Type") != "text/event-stream; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tc.name, hdr.Get("Content-Type"))
		}
	}
	// An operator's stream token still opens nothing but streams.
	if status, _, body := request(t, "GET", b.url+"/v1/dead-letters", opsStream, "", ""); status != 403 {
		t.Errorf("dead letters with an operator's stream token: %d %s", status, body)
	}
	for tok, want := range map[string]api.Session{user: {User: "alice"}, ops: {User: "ops", Operator: true}} {
		status, _, body := request(t, "GET", b.url+"/v1/session", tok, "", "")
		var got api.Session
		if err := json.Unmarshal(body, &got); status != 200 || err != nil || got.User != want.User ||
			got.Operator != want.Operator || time.Until(got.ExpiresAt) < 50*time.Minute {
			t.Errorf("GET /v1/session as %s: %d %s", want.User, status, body)
		}
	}
	if status, _, _ := request(t, "GET", b.url+"/v1/session", opsStream, "", ""); status != 403 {
		t.Errorf("GET /v1/session with a stream token: %d", status)
	}
}

// An operator's console shows what happens to demo.count jobs (the real examples/count worker) as it
// happens, without asking: queued while no worker runs, scheduled, active, finished, failed and
// dead-lettered, the worker online, the rates; a purge's effect on the dead letters; pause and resume.
func TestConsoleShowsJobsAsTheyRun(t *testing.T) {
	b := setup(t, fastConsole())
	ctx := context.Background()
	ops := api.NewClient(b.url, b.operatorToken(t, "ops"))
	worker := testkit.StartCount(t, b.srv.URL())
	testkit.WaitJobType(t, ops, "demo.count", true, 30*time.Second)
	if err := worker.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop examples/count: %v", err)
	}
	v := openConsole(t, ops)
	v.wait(t, "demo.count registered, no worker, no job", func(s api.ConsoleSnapshot) bool {
		r := row(s, "demo.count")
		return r.Type != "" && r.WorkersOnline == 0 && r.Queued == 0 && len(s.Gateways) == 1 && s.Gateways[0].ConsoleStreams == 1
	})

	alice := b.client(t, "alice")
	submit := func(input string, runAt *time.Time) api.JobState {
		t.Helper()
		st, _, err := alice.Submit(ctx, api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(input), RunAt: runAt}, "")
		if err != nil {
			t.Fatalf("submit %s: %v", input, err)
		}
		return st
	}
	later := time.Now().Add(time.Hour)
	submit(`{"n":3}`, nil)
	submit(`{"n":3}`, nil)
	long := submit(`{"n":600,"delayMs":100}`, nil)
	submit(`{"n":1,"permanent":true}`, nil)
	scheduled := submit(`{"n":1}`, &later)
	v.wait(t, "four queued and one scheduled while no worker runs", func(s api.ConsoleSnapshot) bool {
		r := row(s, "demo.count")
		return r.Queued == 4 && r.Scheduled == 1 && r.Active == 0 && r.StartedPerSec == 0
	})

	if err := worker.Restart(); err != nil {
		t.Fatal(err)
	}
	v.wait(t, "the worker back: one running, two completed, one failed", func(s api.ConsoleSnapshot) bool {
		r := row(s, "demo.count")
		return r.WorkersOnline == 1 && r.Queued == 0 && r.Active == 1 && r.Completed == 2 && r.Failed == 1 &&
			r.StartedPerSec > 0 && r.FinishedPerSec > 0 && r.Scheduled == 1
	})
	s := v.wait(t, "the failed job's dead letter", func(s api.ConsoleSnapshot) bool {
		return row(s, "demo.count").DeadLettered == 1 && s.DeadLetters == 1
	})
	t.Logf("demo.count at %s: %+v", s.At.Format("15:04:05.000"), row(s, "demo.count"))

	if _, err := alice.Cancel(ctx, long.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Cancel(ctx, scheduled.ID); err != nil {
		t.Fatal(err)
	}
	v.wait(t, "the long job and the scheduled one cancelled", func(s api.ConsoleSnapshot) bool {
		r := row(s, "demo.count")
		return r.Active == 0 && r.Scheduled == 0 && r.Cancelled == 2
	})
	list, err := ops.DeadLetters(ctx, api.DeadLetterFilter{Type: "demo.count"}, "", 0)
	if err != nil || len(list.DeadLetters) != 1 {
		t.Fatalf("dead letters: %v %+v", err, list)
	}
	if res, err := ops.PurgeDeadLetters(ctx, api.DeadLetterSelection{Keys: []string{list.DeadLetters[0].Key}}); err != nil || res[0].Status != 200 {
		t.Fatalf("purge: %v %+v", err, res)
	}
	v.wait(t, "the dead letter purged, the job still failed", func(s api.ConsoleSnapshot) bool {
		r := row(s, "demo.count")
		return r.DeadLettered == 0 && s.DeadLetters == 0 && r.Failed == 1
	})

	if _, err := ops.PauseJobType(ctx, "demo.count"); err != nil {
		t.Fatal(err)
	}
	v.wait(t, "demo.count paused", func(s api.ConsoleSnapshot) bool { return row(s, "demo.count").Paused })
	if _, err := ops.ResumeJobType(ctx, "demo.count"); err != nil {
		t.Fatal(err)
	}
	v.wait(t, "demo.count resumed", func(s api.ConsoleSnapshot) bool { return !row(s, "demo.count").Paused })
}

// One sampler per gateway serves every console stream: twenty viewers cost the gateway's NATS
// connection what one costs (a request per dead-letter count, a message per stats interval), all
// viewers get the same snapshots, and a console on one gateway sees the others' streams.
func TestConsoleWorkIsIndependentOfViewers(t *testing.T) {
	b := setup(t, fastConsole())
	other, nc := b.anotherGateway(t, fastConsole())
	otherURL := "http://" + other.Addr()
	if w := other.Console().Work(); w.Samples != 0 || w.DeadLetterSamples != 0 {
		t.Fatalf("a console nobody watches sampled: %+v", w)
	}
	viewers := []*viewer{openConsole(t, api.NewClient(otherURL, b.operatorToken(t, "ops-0")))}
	viewers[0].wait(t, "the first snapshot", func(api.ConsoleSnapshot) bool { return true })

	// measure waits for ten dead-letter counts and returns what the gateway's connection published
	// meanwhile, and what the sampler says it did.
	measure := func(phase string) (out, work uint64) {
		w0, out0, t0 := other.Console().Work(), nc.Stats().OutMsgs, time.Now()
		streamstest.WaitFor(t, 15*time.Second, func() error {
			if n := other.Console().Work().DeadLetterSamples - w0.DeadLetterSamples; n < 10 {
				return fmt.Errorf("%d dead-letter counts", n)
			}
			return nil
		})
		w1, out1, took := other.Console().Work(), nc.Stats().OutMsgs, time.Since(t0)
		out, work = out1-out0, (w1.DeadLetterSamples-w0.DeadLetterSamples)+(w1.StatsPublished-w0.StatsPublished)
		t.Logf("%s: %d NATS messages out in %v (%.1f/s): %d dead-letter counts, %d stats; %d samples", phase, out,
			took.Round(time.Millisecond), float64(out)/took.Seconds(), w1.DeadLetterSamples-w0.DeadLetterSamples,
			w1.StatsPublished-w0.StatsPublished, w1.Samples-w0.Samples)
		return out, work
	}
	out1, work1 := measure("1 viewer")
	for i := 1; i < 20; i++ {
		viewers = append(viewers, openConsole(t, api.NewClient(otherURL, b.operatorToken(t, fmt.Sprintf("ops-%d", i)))))
	}
	for _, v := range viewers {
		v.wait(t, "twenty console streams", func(s api.ConsoleSnapshot) bool { return s.Gateways[0].ConsoleStreams == 20 })
	}
	out20, work20 := measure("20 viewers")
	// A sample or a stats message under way at either end of a measure is counted on one side only.
	if out1 > work1+2 || out20 > work20+2 {
		t.Errorf("NATS messages beyond the sampler's own work: 1 viewer %d for %d, 20 viewers %d for %d", out1, work1, out20, work20)
	}

	// A change reaches every viewer, as the same snapshot.
	b.submitSteps(t, b.client(t, "alice"), stepsInput{Steps: 1})
	var at time.Time
	for i, v := range viewers {
		s := v.wait(t, "the job completed", func(s api.ConsoleSnapshot) bool { return row(s, stepsName).Completed == 1 })
		if i == 0 {
			at = s.At
		}
	}
	first := viewers[0].frame(at)
	for i, v := range viewers[1:] {
		if got := v.frame(at); got != first {
			t.Errorf("viewer %d got %q, viewer 0 %q", i+1, got, first)
		}
	}

	// The first gateway's console shows both gateways, with the other's streams.
	v := openConsole(t, api.NewClient(b.url, b.operatorToken(t, "ops-a")))
	s := v.wait(t, "both gateways", func(s api.ConsoleSnapshot) bool {
		return len(s.Gateways) == 2 && s.Gateways[0].ConsoleStreams == 1 && s.Gateways[1].ConsoleStreams == 20
	})
	if g := s.Gateways[1]; g.Addr != other.Addr() || g.OpenStreams != 20 || g.ID == s.Gateways[0].ID {
		t.Errorf("the other gateway: %+v", g)
	}
}

// frame is the raw data of the snapshot of time at ("" when not received).
func (v *viewer) frame(at time.Time) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.raw[at]
}
