package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/streams/streamstest"
)

func TestJobStreamSendsCurrentStateThenChangesAndEnds(t *testing.T) {
	b := setup(t)
	c := b.client(t, "alice")
	st := b.submitSteps(t, c, stepsInput{Steps: 20, Delay: 5 * time.Millisecond})

	s, err := c.OpenStream(context.Background(), "/v1/jobs/"+st.ID+"/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ct := s.Header().Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if s.Header().Get("X-Accel-Buffering") != "no" || s.Header().Get("Cache-Control") == "" {
		t.Errorf("missing SSE headers: %v", s.Header())
	}
	var states []api.JobState
	var lastID uint64
	for {
		ev, err := s.Next()
		if errors.Is(err, api.ErrStreamEnded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Event != api.EventState {
			t.Fatalf("unexpected event %q", ev.Event)
		}
		id, err := strconv.ParseUint(ev.ID, 10, 64)
		if err != nil || id <= lastID {
			t.Fatalf("event id %q not increasing after %d", ev.ID, lastID)
		}
		lastID = id
		js, err := ev.State()
		if err != nil {
			t.Fatal(err)
		}
		if js.Revision != id {
			t.Fatalf("revision %d != id %d", js.Revision, id)
		}
		states = append(states, js)
	}
	if len(states) < 2 {
		t.Fatalf("got %d states", len(states))
	}
	final := states[len(states)-1]
	if final.State != api.StateCompleted || final.Progress.Percent != 100 || string(final.Result) != `{"steps":20}` {
		t.Fatalf("final state %+v", final)
	}
	for i := 1; i < len(states); i++ {
		if states[i].Progress.Done < states[i-1].Progress.Done {
			t.Fatalf("progress went down: %d then %d", states[i-1].Progress.Done, states[i].Progress.Done)
		}
	}

	// Resuming after the terminal state answers 204: the EventSource stops reconnecting.
	_, err = c.OpenStream(context.Background(), "/v1/jobs/"+st.ID+"/events", strconv.FormatUint(lastID, 10))
	if !errors.Is(err, api.ErrNoContent) {
		t.Fatalf("resume after terminal: %v, want 204", err)
	}
}

// collect reads events from s until pred says stop or the stream ends.
func collect(t *testing.T, s *api.EventStream, stop func(api.Event) bool) []api.Event {
	t.Helper()
	var out []api.Event
	for {
		ev, err := s.Next()
		if errors.Is(err, api.ErrStreamEnded) {
			return out
		}
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		out = append(out, ev)
		if stop != nil && stop(ev) {
			return out
		}
	}
}

func TestMultiplexedStreamCarriesAllJobsAndResumes(t *testing.T) {
	b := setup(t)
	c := b.client(t, "alice")
	ctx := context.Background()
	done := b.submitSteps(t, c, stepsInput{Steps: 1})
	waitState(t, c, done.ID, api.StateCompleted)

	s, err := c.OpenStream(ctx, "/v1/events", "")
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot holds the finished job; then three new jobs run to completion over the same stream.
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, b.submitSteps(t, c, stepsInput{Steps: 5, Delay: 2 * time.Millisecond}).ID)
	}
	completed := map[string]uint64{}
	var lastID string
	evs := collect(t, s, func(ev api.Event) bool {
		lastID = ev.ID
		st, _ := ev.State()
		if st.State == api.StateCompleted {
			completed[st.ID] = st.Revision
		}
		return len(completed) == 4
	})
	s.Close()
	if len(completed) != 4 {
		t.Fatalf("completed %v after %d events", completed, len(evs))
	}
	// Another user's job never shows up.
	other := b.submitSteps(t, b.client(t, "bob"), stepsInput{Steps: 1})
	waitState(t, b.client(t, "bob"), other.ID, api.StateCompleted)

	// Resume: one more job runs; the resumed stream sends it and nothing the client already saw.
	next := b.submitSteps(t, c, stepsInput{Steps: 2})
	waitState(t, c, next.ID, api.StateCompleted)
	s, err = c.OpenStream(ctx, "/v1/events", lastID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	st, _ := ev.State()
	if st.ID != next.ID || st.State != api.StateCompleted {
		t.Fatalf("resumed stream sent %s %s, want only %s completed", st.ID, st.State, next.ID)
	}
	// A position the gateway cannot vouch for (from a future revision) resets the stream.
	s2, err := c.OpenStream(ctx, "/v1/events?lastEventId=999999", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if ev, err := s2.Next(); err != nil || ev.Event != api.EventReset {
		t.Fatalf("want reset, got %q %v", ev.Event, err)
	}
	seen := map[string]bool{}
	collect(t, s2, func(ev api.Event) bool {
		st, _ := ev.State()
		seen[st.ID] = true
		if st.ID == other.ID {
			t.Fatalf("bob's job in alice's stream")
		}
		return len(seen) == 5
	})
}

func TestStreamLimitsPerUser(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.MaxStreamsPerUser = 2; c.MaxStreams = 3 }))
	ctx := context.Background()
	alice := b.client(t, "alice")
	var open []*api.EventStream
	for i := 0; i < 2; i++ {
		s, err := alice.OpenStream(ctx, "/v1/events", "")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	status, hdr, body := request(t, "GET", b.url+"/v1/events", b.token(t, "alice"), "", "")
	if status != 429 || errorCode(body) != api.CodeTooManyStreams || hdr.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d %s %v", status, body, hdr)
	}
	// Bob has his own allowance, until the gateway's cap.
	bobStream, err := b.client(t, "bob").OpenStream(ctx, "/v1/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer bobStream.Close()
	status, hdr, body = request(t, "GET", b.url+"/v1/events", b.token(t, "carol"), "", "")
	if status != 503 || errorCode(body) != api.CodeServerBusy || hdr.Get("Retry-After") == "" {
		t.Fatalf("over the gateway cap: %d %s", status, body)
	}
	// REST is not limited by streams.
	if _, err := alice.List(ctx, "", "", 0); err != nil {
		t.Fatal(err)
	}
	// Closing a stream frees its slot (noticed at the next heartbeat at the latest).
	open[0].Close()
	streamstest.WaitFor(t, 5*time.Second, func() error {
		s, err := alice.OpenStream(ctx, "/v1/events", "")
		if err != nil {
			return err
		}
		open = append(open, s)
		return nil
	})
	for _, s := range open {
		s.Close()
	}
}

func TestStreamHeartbeatAndExpiry(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) {
		c.SSE.Heartbeat = 100 * time.Millisecond
		c.SSE.MaxDuration = 700 * time.Millisecond
	}))
	req, _ := http.NewRequest("GET", b.url+"/v1/events?access_token="+b.token(t, "alice"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	body, err := io.ReadAll(resp.Body) // the server ends the stream itself
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	if !strings.HasPrefix(text, "retry: 2000\n\n") {
		t.Fatalf("stream does not start with retry: %q", text)
	}
	if n := strings.Count(text, ": ping\n\n"); n < 2 {
		t.Fatalf("%d heartbeats in %s: %q", n, time.Since(start), text)
	}
	if !strings.HasSuffix(text, "event: expired\ndata: {\"reason\":\"max_duration\"}\n\n") {
		t.Fatalf("stream did not end with expired: %q", text)
	}
	streamstest.WaitFor(t, time.Second, func() error {
		if n := b.gw.Pool().Open(); n != 0 {
			return fmt.Errorf("%d streams still open", n)
		}
		return nil
	})
}

func TestStreamTokenExpiryEndsStream(t *testing.T) {
	b := setup(t)
	tok, err := b.signer.Sign("alice", 1500*time.Millisecond, "stream", "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(b.url + "/v1/events?access_token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "event: expired") {
		t.Fatalf("stream with an expiring token did not end with expired: %q", body)
	}
}

func TestVanishedClientsAreReleased(t *testing.T) {
	b := setup(t)
	tok := b.token(t, "alice")
	before := runtime.NumGoroutine()
	const n = 50
	for i := 0; i < n; i++ {
		conn, err := net.Dial("tcp", b.gw.Addr())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", tok)
		buf := make([]byte, 64)
		if _, err := io.ReadAtLeast(conn, buf, 10); err != nil {
			t.Fatal(err)
		}
		// Vanish without a clean close: RST, as a crashed browser tab or a dropped network would.
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	if got := b.gw.Pool().Open(); got == 0 {
		t.Log("streams already gone")
	}
	// Within two heartbeats (200 ms each) every stream, its hub entry and its slot are gone.
	streamstest.WaitFor(t, 2*time.Second, func() error {
		if open, subs := b.gw.Pool().Open(), b.gw.Hub().Subscribers(); open != 0 || subs != 0 {
			return fmt.Errorf("%d streams, %d subscriptions left", open, subs)
		}
		return nil
	})
	streamstest.WaitFor(t, 2*time.Second, func() error {
		if now := runtime.NumGoroutine(); now > before+5 {
			return fmt.Errorf("%d goroutines, %d before the streams", now, before)
		}
		return nil
	})
	// The limits were released too: alice can open her 8 streams again.
	for i := 0; i < 8; i++ {
		s, err := b.client(t, "alice").OpenStream(context.Background(), "/v1/events", "")
		if err != nil {
			t.Fatalf("stream %d after release: %v", i, err)
		}
		defer s.Close()
	}
}

func TestNATSConsumersIndependentOfStreams(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.MaxStreamsPerUser = 1000 }))
	st := b.submitSteps(t, b.client(t, "alice"), stepsInput{Steps: 1, Block: true})
	one, err := b.client(t, "alice").OpenStream(context.Background(), "/v1/jobs/"+st.ID+"/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	base := b.srv.ConsumerCount(t)
	var streams []*api.EventStream
	for i := 0; i < 300; i++ {
		path := "/v1/events"
		if i%2 == 0 {
			path = "/v1/jobs/" + st.ID + "/events"
		}
		s, err := b.client(t, "alice").OpenStream(context.Background(), path, "")
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	if got := b.srv.ConsumerCount(t); got != base {
		t.Fatalf("%d consumers with 301 streams, %d with one", got, base)
	}
	for _, s := range streams {
		s.Close()
	}
}

func TestShutdownEndsStreamsWithoutLeaks(t *testing.T) {
	b := setup(t)
	c := b.client(t, "alice")
	st := b.submitSteps(t, c, stepsInput{Steps: 1, Block: true})
	waitState(t, c, st.ID, api.StateActive)
	http.DefaultClient.CloseIdleConnections()
	ignore := goleak.IgnoreCurrent()
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		s, err := c.OpenStream(context.Background(), "/v1/jobs/"+st.ID+"/events", "")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			collect(t, s, nil)
		}()
	}
	start := time.Now()
	stopped := make(chan struct{})
	go func() { b.gw.Stop(); wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1) // where is it stuck?
		t.Fatal("shutdown did not end the streams within 20 s")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}

func TestFinishedJobExpiryIsRelayed(t *testing.T) {
	b := setup(t, withRetention(time.Second))
	c := b.client(t, "alice")
	s, err := c.OpenStream(context.Background(), "/v1/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := b.submitSteps(t, c, stepsInput{Steps: 1})
	evs := collect(t, s, func(ev api.Event) bool { return ev.Event == api.EventRemoved })
	last := evs[len(evs)-1]
	if last.Event != api.EventRemoved || !strings.Contains(string(last.Data), st.ID) {
		t.Fatalf("last event %q %s", last.Event, last.Data)
	}
	// The job is still readable, folded from its events.
	got, err := c.Get(context.Background(), st.ID)
	if err != nil || got.State != api.StateCompleted {
		t.Fatalf("get after expiry: %v %+v", err, got)
	}
}

func TestRelaySurvivesNATSRestart(t *testing.T) {
	b := setup(t)
	c := b.client(t, "alice")
	s, err := c.OpenStream(context.Background(), "/v1/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := b.submitSteps(t, c, stepsInput{Steps: 1})
	collect(t, s, func(ev api.Event) bool {
		st, _ := ev.State()
		return st.ID == before.ID && st.State == api.StateCompleted
	})
	consumers := b.srv.ConsumerCount(t)
	b.srv.Restart()
	var after api.JobState
	streamstest.WaitFor(t, 15*time.Second, func() error {
		raw := []byte(`{"steps":1}`)
		st, _, err := c.Submit(context.Background(), api.SubmitRequest{Type: stepsName, Input: raw}, "after-restart")
		after = st
		return err
	})
	// The open stream keeps working: the gateway's one watch resumed by itself.
	collect(t, s, func(ev api.Event) bool {
		st, _ := ev.State()
		return st.ID == after.ID && st.State == api.StateCompleted
	})
	if got := b.srv.ConsumerCount(t); got > consumers {
		t.Fatalf("%d consumers after the restart, %d before: watches piled up", got, consumers)
	}
}

func TestReadinessFollowsNATS(t *testing.T) {
	b := setup(t)
	ready := func() int {
		status, _, _ := request(t, "GET", b.url+"/readyz", "", "", "")
		return status
	}
	if got := ready(); got != 200 {
		t.Fatalf("readyz %d with NATS up", got)
	}
	b.srv.Shutdown()
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if got := ready(); got != 503 {
			return fmt.Errorf("readyz %d with NATS down", got)
		}
		return nil
	})
	if status, _, _ := request(t, "GET", b.url+"/healthz", "", "", ""); status != 200 {
		t.Fatalf("healthz %d: liveness must not depend on NATS", status)
	}
	b.srv.Restart()
	streamstest.WaitFor(t, 15*time.Second, func() error {
		if got := ready(); got != 200 {
			return fmt.Errorf("readyz %d after NATS came back", got)
		}
		return nil
	})
}
