package ticker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/jobstore"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/services/internal/ticker"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
	"github.com/jobwire/jobwire/worker/workertest"
)

// env is a real NATS server with the topology, the gateway's job store and one every-second schedule.
type env struct {
	js    jetstream.JetStream
	store *jobstore.Store
	sched streams.Schedule
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := streamstest.RunServer(t)
	nc, js := srv.Ensure(t)
	store, err := jobstore.New(context.Background(), nc, js)
	if err != nil {
		t.Fatal(err)
	}
	s := streams.Schedule{ID: "each-second", Type: "demo.count", Input: json.RawMessage(`{"n":1}`), Every: "1s", Owner: "ops",
		CreatedAt: time.Now().UTC()}
	if err := store.CreateSchedule(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return &env{js: js, store: store, sched: s}
}

// submit submits a tick's job as the gateway does: the derived id, the tick's idempotency key.
func (e *env) submit(ctx context.Context, def streams.Schedule, tick time.Time, jobID string) (bool, error) {
	st, created, err := e.store.Submit(ctx, jobstore.Submission{Owner: def.Owner, Type: def.Type, Input: def.Input,
		Name: "schedule " + def.ID, JobID: jobID, IdempotencyKey: def.TickIdempotencyKey(tick)})
	if err == nil && st.ID != jobID {
		err = fmt.Errorf("job %s, want %s", st.ID, jobID)
	}
	return created, err
}

func (e *env) start(t *testing.T, cfg ticker.Config, submit ticker.Submit) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	tk := ticker.New(cfg, e.js, submit, reg, workertest.Logger())
	if err := tk.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tk.Stop)
	return reg
}

// ticks returns the schedule's tick times that made jobs (each checked to be made once, with its
// derived id).
func (e *env) ticks(t *testing.T) []time.Time {
	t.Helper()
	return testkit.TickTimes(t, testkit.SubmittedEvents(t, e.js, e.sched.Owner), api.Schedule{ID: e.sched.ID, CreatedAt: e.sched.CreatedAt})
}

func (e *env) waitTicks(t *testing.T, n int) []time.Time {
	t.Helper()
	var ticks []time.Time
	streamstest.WaitFor(t, time.Duration(n)*time.Second+10*time.Second, func() error {
		if ticks = e.ticks(t); len(ticks) < n {
			return fmt.Errorf("%d jobs made by ticks, want %d", len(ticks), n)
		}
		return nil
	})
	return ticks
}

func count(reg *prometheus.Registry, result string) int {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "jobwire_schedule_ticks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	return 0
}

// A tick handled twice makes one job: once when the first handling stored the job but did not settle
// the tick (handed back, as a gateway that dies before its ack leaves it), and once when a slow gateway
// still handles a tick the server already gave another after the lease. Every tick's job has the id
// derived from its time, and no tick is missed.
func TestRedeliveredTickMakesNoSecondJob(t *testing.T) {
	e := setup(t)
	var calls atomic.Int32
	var mu sync.Mutex
	seen := map[string]int{}
	var slowOnce sync.Once
	slow := make(chan struct{})
	submit := func(ctx context.Context, def streams.Schedule, tick time.Time, jobID string) (bool, error) {
		created, err := e.submit(ctx, def, tick, jobID)
		mu.Lock()
		seen[jobID]++
		n, ticks := seen[jobID], len(seen)
		mu.Unlock()
		calls.Add(1)
		switch {
		case err != nil:
			return created, err
		case n == 1 && ticks == 2:
			// The job is stored; the tick is handed back unsettled, and comes again.
			return created, errors.New("gateway lost before its ack")
		case n == 1 && ticks == 4:
			// The job is stored, then this gateway stalls past the lease: the tick goes to the other.
			slowOnce.Do(func() { <-slow })
		}
		return created, nil
	}
	cfg := ticker.Config{AckWait: time.Second}
	r1 := e.start(t, cfg, submit)
	r2 := e.start(t, cfg, submit)
	streamstest.WaitFor(t, 15*time.Second, func() error {
		if d := count(r1, "duplicate") + count(r2, "duplicate"); d < 2 {
			return fmt.Errorf("%d ticks handled twice", d)
		}
		return nil
	})
	close(slow)
	ticks := e.waitTicks(t, 6)
	if gaps := testkit.TickGaps(ticks, time.Second); len(gaps) > 0 {
		t.Errorf("ticks without a job: %v (ticks %v)", gaps, ticks)
	}
	mu.Lock()
	twice := 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	mu.Unlock()
	if twice < 2 {
		t.Errorf("%d ticks were handled twice, want at least 2", twice)
	}
	t.Logf("%d handlings for %d ticks; duplicates %d, submitted %d", calls.Load(), len(ticks),
		count(r1, "duplicate")+count(r2, "duplicate"), count(r1, "submitted")+count(r2, "submitted"))
}

// Ticks that piled up while no gateway took them are not caught up: only the newest makes a job, the
// others count as missed, and from then on every tick makes one.
func TestMissedTicksAreNotCaughtUp(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	stream, err := e.js.Stream(ctx, streams.StreamTicks)
	if err != nil {
		t.Fatal(err)
	}
	streamstest.WaitFor(t, 10*time.Second, func() error {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(streams.TickSubject(e.sched.ID)))
		if err == nil && info.State.Subjects[streams.TickSubject(e.sched.ID)] < 3 {
			err = fmt.Errorf("%d ticks waiting", info.State.Subjects[streams.TickSubject(e.sched.ID)])
		}
		return err
	})
	started := time.Now()
	reg := e.start(t, ticker.Config{}, e.submit)
	ticks := e.waitTicks(t, 3)
	var before []time.Time
	for _, tick := range ticks {
		if tick.Before(started) {
			before = append(before, tick)
		}
	}
	if len(before) != 1 {
		t.Errorf("ticks due before the ticker started that made jobs: %v, want exactly one (the newest)", before)
	}
	if gaps := testkit.TickGaps(ticks, time.Second); len(gaps) > 0 {
		t.Errorf("ticks without a job after the first: %v", gaps)
	}
	if missed := count(reg, "missed"); missed < 2 {
		t.Errorf("%d ticks counted missed, want at least 2", missed)
	}
}

// A deleted schedule makes no more jobs, and the gauge counts the schedules.
func TestDeletedScheduleStops(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	reg := e.start(t, ticker.Config{}, e.submit)
	e.waitTicks(t, 2)
	if n := gauge(t, reg); n != 1 {
		t.Fatalf("jobwire_schedules %v, want 1", n)
	}
	if _, err := e.store.DeleteSchedule(ctx, e.sched.ID); err != nil {
		t.Fatal(err)
	}
	after := len(e.ticks(t))
	time.Sleep(2500 * time.Millisecond) // two ticks' time: none may come
	if got := len(e.ticks(t)); got > after+1 {
		t.Fatalf("%d jobs after the delete (%d before)", got, after)
	}
	if _, err := e.store.Schedule(ctx, e.sched.ID); !errors.Is(err, jobstore.ErrNoSchedule) {
		t.Fatalf("deleted schedule: %v", err)
	}
	if n := gauge(t, reg); n != 0 {
		t.Fatalf("jobwire_schedules %v after the delete, want 0", n)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "jobwire_schedules" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no jobwire_schedules")
	return 0
}
