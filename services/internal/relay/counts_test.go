package relay

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// put is the entry of st at rev, as the watch delivers it.
func put(owner string, st api.JobState, rev uint64) entry {
	data, _ := json.Marshal(st)
	return entry{key: streams.StateKey(owner, st.ID), value: data, rev: rev, op: jetstream.KeyValuePut}
}

// The hub counts every job of JOB_STATE by type and state as its states arrive, tells scheduled jobs
// from queued ones by the time asked, and counts starts and finishes (live changes only) per second.
func TestHubCountsJobsByTypeAndState(t *testing.T) {
	h := newTestHub()
	clock := time.Unix(1_800_000_000, 0)
	h.now = func() time.Time { return clock }
	at := func(d time.Duration) *time.Time { v := clock.Add(d); return &v }
	rev := uint64(0)
	apply := func(st api.JobState, loading bool) {
		rev++
		h.apply(put("alice", st, rev), loading)
	}
	old := api.JobState{ID: streams.NewJobID(clock), Type: "a", State: api.StateCompleted, StartedAt: at(-time.Hour)}
	apply(old, true) // present when the watch started: counted, but neither a start nor a finish
	queued := api.JobState{ID: streams.NewJobID(clock), Type: "a", State: api.StateQueued}
	later := api.JobState{ID: streams.NewJobID(clock), Type: "a", State: api.StateQueued, RunAt: at(time.Minute)}
	retrying := api.JobState{ID: streams.NewJobID(clock), Type: "b", State: api.StateQueued, Attempt: 1,
		StartedAt: at(-time.Second), RunAt: at(30 * time.Second)}
	for _, st := range []api.JobState{queued, later, retrying} {
		apply(st, false)
	}
	// The retrying job arrived with its first attempt's start (its submit, start and failure folded into
	// one write): a start. One job is started, progresses (not another start); one fails in one write.
	queued.State, queued.StartedAt = api.StateActive, at(0)
	apply(queued, false)
	queued.Progress = api.NewProgress(1, 2, "")
	apply(queued, false)
	quick := api.JobState{ID: streams.NewJobID(clock), Type: "b", State: api.StateFailed, StartedAt: at(0)}
	apply(quick, false)
	clock = clock.Add(time.Second)
	want := map[string]TypeCounts{
		"a": {Queued: 0, Scheduled: 1, Active: 1, Completed: 1, StartedPerSec: 0.1},
		"b": {Scheduled: 1, Failed: 1, StartedPerSec: 0.2, FinishedPerSec: 0.1},
	}
	if got := h.Counts(clock); !equalCounts(got, want) {
		t.Fatalf("counts %+v, want %+v", got, want)
	}

	// A minute on, the scheduled job is due (queued, not scheduled); a retry of the failed job re-queues
	// it; the completed one expires; the rates look back ten seconds only.
	queued.State = api.StateCompleted
	apply(queued, false)
	quick.State, quick.Error = api.StateQueued, nil
	apply(quick, false)
	rev++
	h.apply(entry{key: streams.StateKey("alice", old.ID), rev: rev, op: jetstream.KeyValuePurge}, false)
	clock = clock.Add(time.Minute)
	want = map[string]TypeCounts{"a": {Queued: 1, Completed: 1}, "b": {Queued: 2}}
	if got := h.Counts(clock); !equalCounts(got, want) {
		t.Fatalf("a minute later: %+v, want %+v", got, want)
	}
}

func equalCounts(got, want map[string]TypeCounts) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		if got[k] != w {
			return false
		}
	}
	return true
}
