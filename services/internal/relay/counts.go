package relay

import (
	"time"

	"github.com/jobwire/jobwire/api"
)

// The hub counts what its watch brings, for the operators' console: every job of JOB_STATE by type and
// state, and the starts and finishes as they arrive. Counting costs no NATS request and a few bytes per
// job, whatever the number of consoles.

// RateWindow is how far back the hub's start and finish rates look.
const RateWindow = 10 * time.Second

const rateSecs = int64(RateWindow / time.Second)

// TypeCounts are one job type's jobs in JOB_STATE by state (Queued excludes Scheduled: queued jobs
// whose runAt, or retry time, is still ahead), and its starts and finishes per second over the last
// RateWindow.
type TypeCounts struct {
	Queued, Scheduled, Active, Completed, Failed, Cancelled int
	StartedPerSec, FinishedPerSec                           float64
}

// stateIndex numbers the states a job is counted in; noState is any other.
type stateIndex int8

const (
	noState stateIndex = iota - 1
	sQueued
	sActive
	sCompleted
	sFailed
	sCancelled
	nStates
)

var countedStates = [nStates]api.State{api.StateQueued, api.StateActive, api.StateCompleted, api.StateFailed, api.StateCancelled}

func indexOf(s api.State) stateIndex {
	for i, c := range countedStates {
		if c == s {
			return stateIndex(i)
		}
	}
	return noState
}

// indexed is what the hub keeps of each job in JOB_STATE: its latest revision, and what is counted of it.
type indexed struct {
	rev     uint64
	typ     *typeTally
	started int64 // StartedAt in Unix nanoseconds, 0 before the first start
	state   stateIndex
}

// typeTally is one job type's counts.
type typeTally struct {
	byState           [nStates]int
	started, finished rateWindow
}

// due is a queued job with a runAt: scheduled until then.
type due struct {
	typ *typeTally
	at  int64 // Unix nanoseconds
}

// rateWindow counts events per whole second over the last rateSecs seconds.
type rateWindow struct {
	sec [rateSecs]int64 // the Unix second each bucket counts
	n   [rateSecs]int32
}

func (w *rateWindow) add(sec int64) {
	i := sec % rateSecs
	if w.sec[i] != sec {
		w.sec[i], w.n[i] = sec, 0
	}
	w.n[i]++
}

// perSec is the rate over the rateSecs whole seconds before the second now.
func (w *rateWindow) perSec(now int64) float64 {
	var n int32
	for i, s := range w.sec {
		if s >= now-rateSecs && s < now {
			n += w.n[i]
		}
	}
	return float64(n) / float64(rateSecs)
}

// count records st as the latest state of key, whose previous entry was old (ok false: none), and
// returns the new entry; h.mu is held. Starts and finishes are counted only for live changes.
func (h *Hub) count(key string, old indexed, ok bool, st *api.JobState, rev uint64, loading bool) indexed {
	if ok {
		h.uncount(key, old)
	}
	t := h.types[st.Type]
	if t == nil {
		t = &typeTally{}
		h.types[st.Type] = t
	}
	e := indexed{rev: rev, typ: t, state: indexOf(st.State)}
	if st.StartedAt != nil {
		e.started = st.StartedAt.UnixNano()
	}
	if e.state != noState {
		t.byState[e.state]++
	}
	if e.state == sQueued && st.RunAt != nil {
		h.due[key] = due{typ: t, at: st.RunAt.UnixNano()}
	}
	if !loading {
		now := h.now().Unix()
		if e.started != 0 && (!ok || e.started != old.started) {
			t.started.add(now)
		}
		if st.State.Terminal() && (!ok || old.state == noState || !countedStates[old.state].Terminal()) {
			t.finished.add(now)
		}
	}
	return e
}

// uncount takes a job's previous entry out of the counts; h.mu is held.
func (h *Hub) uncount(key string, old indexed) {
	if old.typ != nil && old.state != noState {
		old.typ.byState[old.state]--
	}
	delete(h.due, key)
}

// Counts returns every job type's counts as of now: each type that has had a job in JOB_STATE since
// the hub started.
func (h *Hub) Counts(now time.Time) map[string]TypeCounts {
	h.mu.RLock()
	defer h.mu.RUnlock()
	sec := now.Unix()
	out := make(map[string]TypeCounts, len(h.types))
	scheduled := map[*typeTally]int{}
	for _, d := range h.due {
		if d.at > now.UnixNano() {
			scheduled[d.typ]++
		}
	}
	for name, t := range h.types {
		s := t.byState
		out[name] = TypeCounts{Queued: s[sQueued] - scheduled[t], Scheduled: scheduled[t], Active: s[sActive],
			Completed: s[sCompleted], Failed: s[sFailed], Cancelled: s[sCancelled],
			StartedPerSec: t.started.perSec(sec), FinishedPerSec: t.finished.perSec(sec)}
	}
	return out
}
