package mirror

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

func fieldMap(t *testing.T, f []any) map[string]string {
	t.Helper()
	if len(f)%2 != 0 {
		t.Fatalf("odd field list %v", f)
	}
	m := map[string]string{}
	for i := 0; i < len(f); i += 2 {
		m[f[i].(string)] = f[i+1].(string)
	}
	return m
}

func TestBuildWrite(t *testing.T) {
	t.Parallel()
	now := time.Now()
	id := streams.NewJobID(now.Add(-time.Minute))
	started := now.Add(-30 * time.Second)
	finished := now.Add(-time.Second)
	long := now.Add(-time.Hour)
	k := newKeys("sync")
	for _, tc := range []struct {
		name      string
		e         entry
		mode      writeMode
		want      map[string]string // fields that must have these values ("" = must be absent)
		event     string            // event name of the stream entry, "" for none
		wantFresh bool
	}{
		{
			name: "queued, named",
			e:    entry{named: true, state: api.JobState{State: api.StateQueued, Name: `say "hi"`}},
			mode: modeUpdate,
			want: map[string]string{"data": `{"name":"say \"hi\""}`, "atm": "0", "ats": "0", "progress": "0", "processedOn": "", "finishedOn": ""},
		},
		{
			name: "active, submitted unknown",
			e: entry{state: api.JobState{State: api.StateActive, Attempt: 2, StartedAt: &started,
				Progress: api.NewProgress(1, 4, "")}},
			mode:  modeUpdate,
			want:  map[string]string{"data": "", "atm": "1", "ats": "2", "progress": "25", "opts": `{"attempts":2}`},
			event: "progress",
		},
		{
			name: "active, progress already written",
			e:    entry{writtenPercent: 25, state: api.JobState{State: api.StateActive, Attempt: 1, Progress: api.NewProgress(1, 4, "")}},
			mode: modeUpdate,
		},
		{
			name: "retry pending keeps the reason",
			e: entry{state: api.JobState{State: api.StateQueued, Attempt: 1,
				Error: &api.JobError{Code: "timeout", Message: "took too long"}}},
			mode: modeUpdate,
			want: map[string]string{"failedReason": "took too long", "atm": "1"},
		},
		{
			name: "completed without result",
			e:    entry{state: api.JobState{State: api.StateCompleted, Attempt: 1, FinishedAt: &finished}},
			mode: modeCompleted, event: "completed",
			want: map[string]string{"returnvalue": "null", "atm": "1", "failedReason": ""},
		},
		{
			name: "failed without error",
			e:    entry{state: api.JobState{State: api.StateFailed, Attempt: 3, FinishedAt: &finished}},
			mode: modeFailed, event: "failed",
			want: map[string]string{"failedReason": "job failed", "returnvalue": "", "atm": "3"},
		},
		{
			name: "cancelled before it ran",
			e:    entry{state: api.JobState{State: api.StateCancelled, FinishedAt: &finished}},
			mode: modeFailed, event: "failed",
			want: map[string]string{"failedReason": "cancelled: job was cancelled", "atm": "0", "opts": `{"attempts":1}`},
		},
		{
			name: "finished beyond max age",
			e:    entry{state: api.JobState{State: api.StateCompleted, FinishedAt: &long}},
			mode: modeDrop, event: "completed",
		},
		{
			name:      "requeued",
			e:         entry{fresh: true, state: api.JobState{State: api.StateQueued}},
			mode:      modeUpdate,
			wantFresh: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			e.state.ID, e.state.Type, e.state.EventSeq = id, api.JobTypePlaylistImport, 7
			w, err := buildWrite(&e, k, 5*time.Minute, now)
			if err != nil {
				t.Fatal(err)
			}
			if w.mode != tc.mode || w.fresh != tc.wantFresh || w.seq != 7 || w.key != "bull:sync:"+id {
				t.Errorf("write = mode %s fresh %v seq %d key %s", w.mode, w.fresh, w.seq, w.key)
			}
			f := fieldMap(t, w.fields)
			for name, want := range tc.want {
				if got, ok := f[name]; want == "" && ok || want != "" && got != want {
					t.Errorf("%s = %q (present %v), want %q", name, got, ok, want)
				}
			}
			for _, name := range []string{"data", "opts", "progress", "returnvalue"} {
				if v, ok := f[name]; ok && !json.Valid([]byte(v)) {
					t.Errorf("%s is not valid JSON: %q", name, v)
				}
			}
			if f["name"] != api.JobTypePlaylistImport || f["timestamp"] == "" {
				t.Errorf("name/timestamp missing: %v", f)
			}
			ev := ""
			if len(w.event) > 0 {
				ev = w.event[1].(string)
			}
			if ev != tc.event {
				t.Errorf("event %q, want %q", ev, tc.event)
			}
			if (w.mode == modeCompleted || w.mode == modeFailed) && w.ttl <= 5*time.Minute-2*time.Second {
				t.Errorf("finished TTL %s shorter than MaxAge plus grace", w.ttl)
			}
		})
	}
}

func TestBuildWriteRejectsBadJobID(t *testing.T) {
	t.Parallel()
	e := &entry{state: api.JobState{ID: "01ARZ3NDEKTSV4RRFFQ69G5FA:", State: api.StateQueued}}
	if _, err := buildWrite(e, newKeys("sync"), time.Minute, time.Now()); err == nil {
		t.Error("a job id with ':' reached a key")
	}
}

func TestHoldSupersedesOnlyProgress(t *testing.T) {
	t.Parallel()
	var e entry
	type fake struct{ msgStub }
	sub, start, p1, p2 := &fake{}, &fake{}, &fake{}, &fake{}
	if e.hold(sub, 1, false) != nil || e.hold(start, 2, false) != nil || e.hold(p1, 3, true) != nil {
		t.Fatal("nothing should be superseded yet")
	}
	if got := e.hold(p2, 4, true); got != p1 {
		t.Errorf("superseded %v, want the older progress", got)
	}
	if got := e.hold(p2, 4, true); got != nil || len(e.held) != 3 {
		t.Errorf("redelivery: superseded %v, held %d, want nil and 3", got, len(e.held))
	}
}

// msgStub satisfies jetstream.Msg for tests that only compare messages.
type msgStub struct{ jetstream.Msg }
