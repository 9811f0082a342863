package gateway_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
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
		if ev.Event != "state" {
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
