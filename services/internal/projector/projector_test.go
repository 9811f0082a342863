package projector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/projector"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

type bundle struct {
	js    jetstream.JetStream
	state jetstream.KeyValue
	proj  *projector.Projector
}

func setup(t *testing.T, cfg projector.Config) *bundle {
	t.Helper()
	srv := streamstest.RunServer(t)
	_, js := srv.Ensure(t)
	p := projector.New(cfg, js, nil, stacktest.Logger())
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	kv, _ := js.KeyValue(context.Background(), streams.BucketState)
	return &bundle{js: js, state: kv, proj: p}
}

// publish appends an event to JOB_EVENTS as a worker would.
func (b *bundle) publish(t *testing.T, ev streams.Event) uint64 {
	t.Helper()
	ev.V = streams.EventVersion
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	data, _ := json.Marshal(ev)
	m := nats.NewMsg(ev.Subject())
	m.Data = data
	m.Header.Set(streams.HeaderEventType, string(ev.Type))
	ack, err := b.js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func (b *bundle) wait(t *testing.T, owner, id string, cond func(api.JobState) bool) api.JobState {
	t.Helper()
	var st api.JobState
	streamstest.WaitFor(t, 10*time.Second, func() error {
		e, err := b.state.Get(context.Background(), streams.StateKey(owner, id))
		if err != nil {
			return err
		}
		st = api.JobState{}
		json.Unmarshal(e.Value(), &st)
		st.Revision = e.Revision()
		if !cond(st) {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
	return st
}

// job is the envelope of a test job's events; its submitted event names a queue message, as jobwire's
// do (one that names none is an orphan, which the projector fails).
func job(id string) streams.Event {
	return streams.Event{JobID: id, JobType: "playlist.import", Owner: "alice", QueueSeq: 1}
}

func with(e streams.Event, typ streams.EventType, attempt int, f ...func(*streams.Event)) streams.Event {
	e.Type, e.Attempt = typ, attempt
	for _, fn := range f {
		fn(&e)
	}
	return e
}

func TestProjectionIgnoresDuplicatesAndLateProgress(t *testing.T) {
	b := setup(t, projector.Config{})
	id := streams.NewJobID(time.Now())
	base := job(id)
	p := func(done int) func(*streams.Event) {
		return func(e *streams.Event) { pr := api.NewProgress(done, 10, ""); e.Progress = &pr }
	}
	b.publish(t, with(base, streams.EventSubmitted, 0))
	b.publish(t, with(base, streams.EventStarted, 1))
	b.publish(t, with(base, streams.EventProgress, 1, p(5)))
	b.publish(t, with(base, streams.EventCompleted, 1, p(10), func(e *streams.Event) { e.Result = json.RawMessage(`{"added":10}`) }))
	// Late and repeated events after the terminal one (a redelivered progress, a second completion).
	b.publish(t, with(base, streams.EventProgress, 1, p(7)))
	b.publish(t, with(base, streams.EventStarted, 1))
	final := b.wait(t, "alice", id, func(s api.JobState) bool { return s.State == api.StateCompleted })
	// Wait until the projector has consumed everything, then check nothing moved.
	streamstest.WaitFor(t, 5*time.Second, func() error {
		c, _ := b.js.Consumer(context.Background(), streams.StreamEvents, streams.ConsumerProjector)
		info, err := c.Info(context.Background())
		if err != nil || info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("projector busy: %v", err)
		}
		return nil
	})
	st := b.wait(t, "alice", id, func(api.JobState) bool { return true })
	if st.Revision != final.Revision || st.Progress.Done != 10 || string(st.Result) != `{"added":10}` {
		t.Fatalf("terminal state changed: %+v (was revision %d)", st, final.Revision)
	}
}

func TestMalformedEventsAreSkipped(t *testing.T) {
	b := setup(t, projector.Config{})
	id := streams.NewJobID(time.Now())
	for _, body := range []string{`{not json`, `{"v":99,"type":"job.started"}`, `{"v":1,"type":"job.started","jobId":"*","owner":"alice","jobType":"x"}`} {
		if _, err := b.js.Publish(context.Background(), streams.EventSubject("alice", id), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	// An event whose body names another job than its subject is refused too.
	other := streams.NewJobID(time.Now())
	ev := with(job(other), streams.EventSubmitted, 0)
	ev.V, ev.At = 1, time.Now()
	data, _ := json.Marshal(ev)
	b.js.Publish(context.Background(), streams.EventSubject("alice", id), data)
	// A valid event behind them is still applied.
	b.publish(t, with(job(id), streams.EventSubmitted, 0))
	st := b.wait(t, "alice", id, func(s api.JobState) bool { return s.State == api.StateQueued })
	if st.ID != id {
		t.Fatalf("%+v", st)
	}
	if _, err := b.state.Get(context.Background(), streams.StateKey("alice", other)); err == nil {
		t.Fatal("an event was applied to the job its body named, not its subject's")
	}
}

func TestFinishedStateExpiresAndCanComeBack(t *testing.T) {
	b := setup(t, projector.Config{StateRetention: time.Second})
	id := streams.NewJobID(time.Now())
	b.publish(t, with(job(id), streams.EventSubmitted, 0))
	b.publish(t, with(job(id), streams.EventStarted, 1))
	b.publish(t, with(job(id), streams.EventFailed, 1, func(e *streams.Event) {
		e.Final, e.Error = true, &api.JobError{Code: "x", Message: "boom"}
	}))
	b.wait(t, "alice", id, func(s api.JobState) bool { return s.State == api.StateFailed })
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if _, err := b.state.Get(context.Background(), streams.StateKey("alice", id)); err == nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
	// Re-queued after expiry, the job's state is written again over the delete marker.
	b.publish(t, with(job(id), streams.EventRequeued, 0))
	st := b.wait(t, "alice", id, func(s api.JobState) bool { return s.State == api.StateQueued })
	if st.Error != nil {
		t.Fatalf("%+v", st)
	}
}

func TestRebuildReportsDifferences(t *testing.T) {
	b := setup(t, projector.Config{})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 5; i++ {
		id := streams.NewJobID(time.Now())
		ids = append(ids, id)
		b.publish(t, with(job(id), streams.EventSubmitted, 0))
		b.publish(t, with(job(id), streams.EventStarted, 1))
		b.publish(t, with(job(id), streams.EventCompleted, 1))
	}
	for _, id := range ids {
		b.wait(t, "alice", id, func(s api.JobState) bool { return s.State == api.StateCompleted })
	}
	rep, err := projector.Rebuild(ctx, b.js, projector.RebuildOptions{Bucket: "JOB_STATE_REBUILD"})
	if err != nil || len(rep.Diffs) != 0 || rep.Jobs != 5 || rep.Events != 15 {
		t.Fatalf("clean rebuild: %v %+v", err, rep)
	}
	if _, err := projector.Rebuild(ctx, b.js, projector.RebuildOptions{Bucket: streams.BucketState}); err == nil {
		t.Fatal("rebuild into the live bucket was allowed")
	}
	// Tamper with the live projection: the rebuild tells.
	b.proj.Stop()
	e, _ := b.state.Get(ctx, streams.StateKey("alice", ids[0]))
	var st api.JobState
	json.Unmarshal(e.Value(), &st)
	st.State = api.StateActive
	data, _ := json.Marshal(st)
	if _, err := b.state.Put(ctx, streams.StateKey("alice", ids[0]), data); err != nil {
		t.Fatal(err)
	}
	if err := b.state.Delete(ctx, streams.StateKey("alice", ids[1])); err != nil {
		t.Fatal(err)
	}
	rep, err = projector.Rebuild(ctx, b.js, projector.RebuildOptions{Bucket: "JOB_STATE_REBUILD", Keep: true})
	if err != nil || len(rep.Diffs) != 2 {
		t.Fatalf("tampered rebuild: %v %+v", err, rep.Diffs)
	}
	kinds := map[string]string{}
	for _, d := range rep.Diffs {
		kinds[d.Key] = d.Kind
	}
	if kinds[streams.StateKey("alice", ids[0])] != "different" || kinds[streams.StateKey("alice", ids[1])] != "missing_live" {
		t.Fatalf("diffs %v", kinds)
	}
	if _, err := b.js.KeyValue(ctx, "JOB_STATE_REBUILD"); err != nil {
		t.Fatalf("kept bucket: %v", err)
	}

	// --apply repairs all three kinds: the tampered entry, the deleted one, and one no event produces.
	stray := streams.StateKey("alice", streams.NewJobID(time.Now()))
	if _, err := b.state.Put(ctx, stray, data); err != nil {
		t.Fatal(err)
	}
	rep, err = projector.Rebuild(ctx, b.js, projector.RebuildOptions{Bucket: "JOB_STATE_REBUILD", Apply: true})
	if err != nil || len(rep.Diffs) != 3 || rep.Repaired != 3 {
		t.Fatalf("apply: %v %+v", err, rep)
	}
	for _, id := range ids[:2] {
		if st := b.wait(t, "alice", id, func(api.JobState) bool { return true }); st.State != api.StateCompleted {
			t.Fatalf("repaired %s: %+v", id, st)
		}
	}
	if _, err := b.state.Get(ctx, stray); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the stray entry is still there: %v", err)
	}
	rep, err = projector.Rebuild(ctx, b.js, projector.RebuildOptions{Bucket: "JOB_STATE_REBUILD"})
	if err != nil || len(rep.Diffs) != 0 {
		t.Fatalf("after the repair: %v %+v", err, rep.Diffs)
	}
}

// A submitted event that names no queue message (written by anything but jobwire, which stores the
// message first) is an orphan: the projector fails its job with enqueue_failed at once, once.
func TestOrphanedSubmitIsFailed(t *testing.T) {
	b := setup(t, projector.Config{})
	id := streams.NewJobID(time.Now())
	orphan := with(job(id), streams.EventSubmitted, 0)
	orphan.QueueSeq = 0
	b.publish(t, orphan)
	st := b.wait(t, "alice", id, func(s api.JobState) bool { return s.State == api.StateFailed })
	if st.Error == nil || st.Error.Code != projector.CodeEnqueueFailed {
		t.Fatalf("%+v", st.Error)
	}
	events, err := b.js.Stream(context.Background(), streams.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := events.Info(context.Background()); info.State.Msgs != 2 {
		t.Fatalf("%d events, want the orphan and its one failure", info.State.Msgs)
	}
	// A job that moved on before the projector read its submitted event is left alone.
	id2 := streams.NewJobID(time.Now())
	late := with(job(id2), streams.EventSubmitted, 0)
	late.QueueSeq = 0
	b.proj.Stop()
	b.publish(t, late)
	b.publish(t, with(job(id2), streams.EventStarted, 1))
	p := projector.New(projector.Config{}, b.js, nil, stacktest.Logger())
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if st := b.wait(t, "alice", id2, func(s api.JobState) bool { return s.State == api.StateActive }); st.Error != nil {
		t.Fatalf("%+v", st)
	}
}

func TestABurstIsFoldedIntoOneWritePerJob(t *testing.T) {
	b := setup(t, projector.Config{})
	b.proj.Stop()
	// 200 jobs' whole lives wait in the log, interleaved as concurrent workers write them.
	const jobs = 200
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = streams.NewJobID(time.Now())
	}
	steps := []func(streams.Event) streams.Event{
		func(e streams.Event) streams.Event { return with(e, streams.EventSubmitted, 0) },
		func(e streams.Event) streams.Event { return with(e, streams.EventStarted, 1) },
		func(e streams.Event) streams.Event {
			return with(e, streams.EventProgress, 1, func(e *streams.Event) { p := api.NewProgress(1, 2, ""); e.Progress = &p })
		},
		func(e streams.Event) streams.Event {
			return with(e, streams.EventCompleted, 1, func(e *streams.Event) { e.Result = json.RawMessage(`{"n":2}`) })
		},
	}
	for _, step := range steps {
		for _, id := range ids {
			b.publish(t, step(job(id)))
		}
	}
	kvStream, err := b.js.Stream(context.Background(), streams.KVStream(streams.BucketState))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := kvStream.Info(context.Background())
	p := projector.New(projector.Config{}, b.js, nil, stacktest.Logger())
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	for _, id := range ids {
		st := b.wait(t, "alice", id, func(s api.JobState) bool { return s.State == api.StateCompleted })
		if st.Attempt != 1 || string(st.Result) != `{"n":2}` || st.StartedAt == nil || st.Progress.Done != 1 {
			t.Fatalf("job %s folded to %+v", id, st)
		}
	}
	after, _ := kvStream.Info(context.Background())
	writes := after.State.LastSeq - before.State.LastSeq
	if writes >= jobs*uint64(len(steps)) {
		t.Fatalf("%d state writes for %d events: nothing was folded together", writes, jobs*len(steps))
	}
	t.Logf("%d events, %d state writes", jobs*len(steps), writes)
}
