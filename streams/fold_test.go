package streams_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

type eventLog struct {
	t0  time.Time
	id  string
	seq uint64
}

func newEventLog() *eventLog {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return &eventLog{t0: t0, id: streams.NewJobID(t0)}
}

func (l *eventLog) ev(typ streams.EventType, attempt int, mod ...func(*streams.Event)) streams.Event {
	l.seq++
	e := streams.Event{V: 1, Type: typ, JobID: l.id, JobType: "playlist.import", Owner: "alice",
		At: l.t0.Add(time.Duration(l.seq) * time.Second), Attempt: attempt, Seq: l.seq}
	for _, m := range mod {
		m(&e)
	}
	return e
}

func progress(done, total int) func(*streams.Event) {
	return func(e *streams.Event) { p := api.NewProgress(done, total, ""); e.Progress = &p }
}

func TestFoldLifecycle(t *testing.T) {
	l := newEventLog()
	evs := []streams.Event{
		l.ev(streams.EventSubmitted, 0, func(e *streams.Event) { e.Name = "mix" }),
		l.ev(streams.EventStarted, 1),
		l.ev(streams.EventProgress, 1, progress(1, 4)),
		l.ev(streams.EventProgress, 1, progress(4, 4)),
		l.ev(streams.EventCompleted, 1, progress(4, 4), func(e *streams.Event) { e.Result = json.RawMessage(`{"added":4}`) }),
	}
	s := streams.Fold(evs)
	if s.State != api.StateCompleted || s.Progress.Percent != 100 || string(s.Result) != `{"added":4}` ||
		s.Attempt != 1 || s.Name != "mix" || s.EventSeq != 5 || s.FinishedAt == nil || s.StartedAt == nil {
		t.Fatalf("unexpected state: %+v", s)
	}
	if !s.CreatedAt.Equal(l.t0.Add(time.Second)) || !s.UpdatedAt.Equal(l.t0.Add(5*time.Second)) {
		t.Fatalf("times: created %v updated %v", s.CreatedAt, s.UpdatedAt)
	}
}

func TestFoldIgnoresRedeliveryLateProgressAndOldAttempts(t *testing.T) {
	l := newEventLog()
	sub := l.ev(streams.EventSubmitted, 0)
	start := l.ev(streams.EventStarted, 1)
	p := l.ev(streams.EventProgress, 1, progress(2, 4))
	done := l.ev(streams.EventCompleted, 1, progress(4, 4))
	late := l.ev(streams.EventProgress, 1, progress(3, 4))

	var s api.JobState
	for _, e := range []streams.Event{sub, start, p, done} {
		if !streams.Apply(&s, e) {
			t.Fatalf("event %s not applied", e.Type)
		}
	}
	want := s
	for _, e := range []streams.Event{p, start, done, late} {
		if streams.Apply(&s, e) {
			t.Fatalf("event %s (seq %d) changed a terminal state", e.Type, e.Seq)
		}
	}
	if s.State != want.State || s.Progress != want.Progress || s.EventSeq != want.EventSeq {
		t.Fatalf("state changed: %+v", s)
	}

	// A progress event of attempt 1 arriving after attempt 2 started is ignored.
	l2 := newEventLog()
	var r api.JobState
	for _, e := range []streams.Event{
		l2.ev(streams.EventSubmitted, 0), l2.ev(streams.EventStarted, 1),
		l2.ev(streams.EventFailed, 1, func(e *streams.Event) { e.Error = &api.JobError{Code: "x", Message: "boom"} }),
		l2.ev(streams.EventStarted, 2),
	} {
		streams.Apply(&r, e)
	}
	if streams.Apply(&r, l2.ev(streams.EventProgress, 1, progress(9, 10))) {
		t.Fatal("old attempt's progress applied")
	}
	if r.State != api.StateActive || r.Attempt != 2 {
		t.Fatalf("want active attempt 2, got %+v", r)
	}
	// But its end, stored late (its publish outlived a leader election), ends the job: the workers'
	// claims take the last event as the end whatever its attempt, and the state must agree.
	lateEnd := l2.ev(streams.EventCompleted, 1, progress(10, 10), func(e *streams.Event) { e.Result = json.RawMessage(`{"n":10}`) })
	if !streams.Apply(&r, lateEnd) || r.State != api.StateCompleted || string(r.Result) != `{"n":10}` || r.FinishedAt == nil {
		t.Fatalf("an earlier attempt's late completion: %+v", r)
	}
	if streams.Apply(&r, l2.ev(streams.EventProgress, 2, progress(5, 10))) {
		t.Fatal("the later attempt's progress moved a finished job")
	}
}

func TestFoldRetryFinalFailureAndRequeue(t *testing.T) {
	l := newEventLog()
	boom := &api.JobError{Code: "resolver", Message: "catalogue down"}
	s := streams.Fold([]streams.Event{
		l.ev(streams.EventSubmitted, 0), l.ev(streams.EventStarted, 1),
		l.ev(streams.EventFailed, 1, func(e *streams.Event) { e.Error = boom }),
	})
	if s.State != api.StateQueued || s.Error == nil || s.Attempt != 1 {
		t.Fatalf("non-final failure: %+v", s)
	}
	streams.Apply(&s, l.ev(streams.EventStarted, 2))
	streams.Apply(&s, l.ev(streams.EventFailed, 2, func(e *streams.Event) { e.Error = boom; e.Final = true }))
	if s.State != api.StateFailed || s.Attempt != 2 || s.FinishedAt == nil {
		t.Fatalf("final failure: %+v", s)
	}
	if !streams.Apply(&s, l.ev(streams.EventRequeued, 0)) || s.State != api.StateQueued || s.Error != nil {
		t.Fatalf("requeue: %+v", s)
	}
}

func TestEventValidate(t *testing.T) {
	l := newEventLog()
	good := l.ev(streams.EventProgress, 1)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*streams.Event){
		"version":  func(e *streams.Event) { e.V = 2 },
		"job id":   func(e *streams.Event) { e.JobID = "*" },
		"owner":    func(e *streams.Event) { e.Owner = "a.b" },
		"job type": func(e *streams.Event) { e.JobType = ">" },
		"type":     func(e *streams.Event) { e.Type = "job.exploded" },
	} {
		e := good
		mod(&e)
		if err := e.Validate(); err == nil {
			t.Errorf("%s: invalid event accepted", name)
		}
	}
	if _, err := streams.DecodeEvent([]byte(`{"v":1,`), 1); err == nil {
		t.Error("malformed JSON decoded")
	}
}
