package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// storm sends n concurrent POSTs to path and counts the answers by status.
func storm(t *testing.T, b *bundle, token, path string, n int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, _ := request(t, "POST", b.url+path, token, "", "")
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return statuses
}

func countEvents(t *testing.T, c *api.Client, id string, typ streams.EventType) int {
	t.Helper()
	events, err := c.HistoryAll(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, raw := range events {
		var ev struct{ Type streams.EventType }
		json.Unmarshal(raw, &ev)
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// Cancel and retry storms make exactly one transition; every caller gets 202 or 409, never a 500.
func TestCancelAndRetryStorms(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.SubmitRate = gateway.Rate{N: -1} }))
	tok := b.token(t, "alice")
	c := b.client(t, "alice")
	ctx := context.Background()

	runAt := time.Now().Add(time.Hour)
	raw, _ := json.Marshal(stepsInput{Steps: 1})
	scheduled, _, err := c.Submit(ctx, api.SubmitRequest{Type: stepsName, Input: raw, RunAt: &runAt}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := storm(t, b, tok, "/v1/jobs/"+scheduled.ID+"/cancel", 20); got[202] != 1 || got[409] != 19 {
		t.Fatalf("cancels of a scheduled job: %v", got)
	}
	if n := countEvents(t, c, scheduled.ID, streams.EventCancelled); n != 1 {
		t.Fatalf("%d cancelled events", n)
	}

	failed := b.submitSteps(t, c, stepsInput{Fail: "boom"})
	waitState(t, c, failed.ID, api.StateFailed)
	if got := storm(t, b, tok, "/v1/jobs/"+failed.ID+"/retry", 20); got[202] != 1 || got[409] != 19 {
		t.Fatalf("retries of a failed job: %v", got)
	}
	if n := countEvents(t, c, failed.ID, streams.EventRequeued); n != 1 {
		t.Fatalf("%d requeued events", n)
	}

	// Cancels racing a job that completes at once never relabel it.
	for range 5 {
		st := b.submitSteps(t, c, stepsInput{Steps: 1})
		got := storm(t, b, tok, "/v1/jobs/"+st.ID+"/cancel", 10)
		if got[202]+got[409] != 10 {
			t.Fatalf("cancels racing completion: %v", got)
		}
		final := waitTerminal(t, c, st.ID)
		if cancelled := countEvents(t, c, st.ID, streams.EventCancelled); final.State == api.StateCompleted && cancelled != 0 {
			t.Fatalf("a completed job also has %d cancelled events", cancelled)
		}
	}
}

func waitTerminal(t *testing.T, c *api.Client, id string) api.JobState {
	t.Helper()
	var st api.JobState
	streamstest.WaitFor(t, 10*time.Second, func() error {
		var err error
		if st, err = c.Get(context.Background(), id); err != nil {
			return err
		}
		if !st.State.Terminal() {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	})
	return st
}

func TestSubmitOptionsAreChecked(t *testing.T) {
	b := setup(t)
	tok := b.token(t, "alice")
	far := time.Now().Add(7 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct{ name, body string }{
		{"runAt past the event log", `{"type":"noop","input":{},"runAt":"` + far + `"}`},
		{"timeout not a duration", `{"type":"noop","input":{},"timeout":"soon"}`},
		{"timeout under a second", `{"type":"noop","input":{},"timeout":"10ms"}`},
		{"timeout over a day", `{"type":"noop","input":{},"timeout":"25h"}`},
		{"timeout as a number", `{"type":"noop","input":{},"timeout":90}`},
		{"maxAttempts negative", `{"type":"noop","input":{},"maxAttempts":-1}`},
		{"maxAttempts over the type's", `{"type":"noop","input":{},"maxAttempts":6}`},
	} {
		status, _, body := request(t, "POST", b.url+"/v1/jobs", tok, "application/json", tc.body)
		if status != 422 || errorCode(body) != api.CodeInvalidInput {
			t.Errorf("%s: %d %s, want 422 invalid_input", tc.name, status, body)
		}
	}
	status, _, body := request(t, "POST", b.url+"/v1/jobs", tok, "application/json", `{"type":"noop","input":{},"timeout":"90s","maxAttempts":2}`)
	if status != 202 {
		t.Fatalf("valid options: %d %s", status, body)
	}
	// The same Idempotency-Key with other options is another request.
	first := `{"type":"noop","input":{},"timeout":"90s"}`
	if status, _, body := request(t, "POST", b.url+"/v1/jobs", tok, "application/json", first, "Idempotency-Key", "k"); status != 202 {
		t.Fatalf("%d %s", status, body)
	}
	if status, _, body := request(t, "POST", b.url+"/v1/jobs", tok, "application/json", `{"type":"noop","input":{},"timeout":"91s"}`, "Idempotency-Key", "k"); status != 422 {
		t.Fatalf("same key, other timeout: %d %s", status, body)
	}
}

func TestHistoryIsPaged(t *testing.T) {
	b := setup(t)
	c := b.client(t, "alice")
	st := b.submitSteps(t, c, stepsInput{Steps: 25, Delay: 15 * time.Millisecond})
	waitState(t, c, st.ID, api.StateCompleted)
	all, err := c.HistoryAll(context.Background(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	var paged []json.RawMessage
	cursor, pages := "", 0
	for {
		h, err := c.History(context.Background(), st.ID, cursor, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Events) > 4 {
			t.Fatalf("a page of %d events, limit 4", len(h.Events))
		}
		paged, pages = append(paged, h.Events...), pages+1
		if cursor = h.NextCursor; cursor == "" {
			break
		}
	}
	if len(all) < 8 || len(paged) != len(all) || pages != (len(all)+3)/4 {
		t.Fatalf("%d events in %d pages, %d in one call", len(paged), pages, len(all))
	}
	var prev uint64
	for _, raw := range paged {
		var ev struct{ Seq uint64 }
		json.Unmarshal(raw, &ev)
		if ev.Seq <= prev {
			t.Fatalf("seq %d after %d", ev.Seq, prev)
		}
		prev = ev.Seq
	}
	tok := b.token(t, "alice")
	for _, q := range []string{"cursor=x", "cursor=0", "limit=0", "limit=10001"} {
		if status, _, body := request(t, "GET", b.url+"/v1/jobs/"+st.ID+"/history?"+q, tok, "", ""); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
}

// A user with more jobs than the snapshot holds resumes /v1/events without losing the change of an old
// job: every job changed since the position comes, oldest change first.
func TestResumeDeliversEveryChangeWhateverTheJobCount(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var ids []string
	for i := range 250 {
		id := streams.NewJobID(time.Now().Add(time.Duration(i) * time.Millisecond))
		ev := streams.Event{V: streams.EventVersion, Type: streams.EventSubmitted, JobID: id, JobType: "test.idle",
			Owner: "alice", At: time.Now().UTC(), QueueSeq: 1}
		if _, err := streams.PublishEvent(ctx, b.js, ev, 0); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	state, _ := b.js.Stream(ctx, streams.KVStream(streams.BucketState))
	var position uint64
	streamstest.WaitFor(t, 20*time.Second, func() error {
		info, err := state.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 250 {
			return fmt.Errorf("%d states", info.State.Msgs)
		}
		position = info.State.LastSeq
		return nil
	})
	c := b.client(t, "alice")
	streamstest.WaitFor(t, 10*time.Second, func() error { // the gateway's hub has seen them all
		s, err := c.OpenStream(ctx, "/v1/events?lastEventId="+strconv.FormatUint(position, 10), "")
		if err != nil {
			return err
		}
		s.Close()
		return nil
	})
	oldest := ids[0]
	started := streams.Event{V: streams.EventVersion, Type: streams.EventStarted, JobID: oldest, JobType: "test.idle",
		Owner: "alice", At: time.Now().UTC(), Attempt: 1, Worker: "test"}
	if _, err := streams.PublishEvent(ctx, b.js, started, 0); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, oldest, api.StateActive)
	s, err := c.OpenStream(ctx, "/v1/events", strconv.FormatUint(position, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	st, _ := ev.State()
	if ev.Event != api.EventState || st.ID != oldest || st.State != api.StateActive {
		t.Fatalf("resumed with %s %+v, want the oldest job active", ev.Event, st)
	}
}
