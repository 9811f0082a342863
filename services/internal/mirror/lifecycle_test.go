package mirror

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// TestStartStopLeaksNothing is not parallel: goleak looks at every goroutine of the process.
func TestStartStopLeaksNothing(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last, after every cleanup below
	b := setup(t, setupOpts{noStart: true})
	b.m.Stop() // before Start: fine
	if err := b.m.Start(context.Background()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}

	m, err := New(b.cfg, b.js, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := m.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	b.m = m
	id := b.finishedJob("leak check")
	b.waitInSet(b.k.completed, id)
	m.Stop()
	m.Stop() // twice: fine
}

func TestStartFailsWithoutStream(t *testing.T) {
	t.Parallel()
	ns := streamstest.RunServer(t)
	_, js := ns.Connect(t) // no topology
	m, err := New(Config{RedisURL: "redis://127.0.0.1:1/0"}, js, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Start(ctx); err == nil || !strings.Contains(err.Error(), streams.StreamEvents) {
		t.Errorf("Start without JOB_EVENTS = %v, want a stream error", err)
	}
}

// TestStopWritesPendingChanges: a change waiting for the next tick is written by Stop, and the
// consumer stays durable with its position for the next mirror.
func TestStopWritesPendingChanges(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: func(c *Config) { c.ProgressInterval = time.Hour; c.AckWait = 3 * time.Hour }})
	id := b.newJob("pending", true)
	b.progress(id, 9, 10)
	b.consumerIdleOrHeld(3) // submitted, started, progress delivered and held
	b.m.Stop()
	if h := b.hash(id); h["progress"] != "90" {
		t.Errorf("after Stop the job = %v, want progress 90", h)
	}
	b.consumerIdle(5 * time.Second)
	c, err := b.js.Consumer(b.ctx(), streams.StreamEvents, streams.ConsumerMirror)
	if err != nil {
		t.Fatalf("durable consumer gone after Stop: %v", err)
	}
	if cfg := c.CachedInfo().Config; cfg.Durable != streams.ConsumerMirror || cfg.AckWait != b.cfg.AckWait {
		t.Errorf("consumer config = %+v", cfg)
	}
}

// consumerIdleOrHeld waits until n messages are delivered and unacked (held for coalescing).
func (b *bundle) consumerIdleOrHeld(n int) {
	b.t.Helper()
	streamstest.WaitFor(b.t, 5*time.Second, func() error {
		c, err := b.js.Consumer(b.ctx(), streams.StreamEvents, streams.ConsumerMirror)
		if err != nil {
			return err
		}
		info, err := c.Info(b.ctx())
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != n {
			return fmt.Errorf("consumer: %d pending, %d unacked, want 0 and %d", info.NumPending, info.NumAckPending, n)
		}
		return nil
	})
}

func TestMetricsAndRateWarning(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{
		cfg:      func(c *Config) { c.WarnCommandsPerSec = 0.5 },
		tweakMir: func(m *Mirror) { m.rateWindow = 200 * time.Millisecond },
	})
	for range 3 {
		b.finishedJob("busy")
	}
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(b.logs.String(), "redis command rate above the warning threshold") {
			return fmt.Errorf("no rate warning logged")
		}
		return nil
	})
	if n := testutil.ToFloat64(b.m.met.commands.WithLabelValues("evalsha")); n < 1 {
		t.Errorf(`jobwire_redis_commands_total{cmd="evalsha"} = %v`, n)
	}
	mfs, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var sum float64
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetName() == "jobwire_redis_commands_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	if !strings.Contains(strings.Join(names, " "), "jobwire_redis_commands_total") {
		t.Fatalf("registry has %v, no jobwire_redis_commands_total", names)
	}
	if total := float64(b.m.CommandsTotal()); sum > total || sum == 0 {
		t.Errorf("exported commands %v, CommandsTotal %v", sum, total)
	}
}

// TestStopWithNATSDown: Stop returns even when NATS is gone and the consumer cannot drain.
func TestStopWithNATSDown(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	id := b.finishedJob("before")
	b.waitInSet(b.k.completed, id)
	b.ns.Shutdown()
	start := time.Now()
	b.m.Stop()
	// Stop is bounded by design (drainWait, then stopWait); this only catches a hang.
	if d := time.Since(start); d > drainWait+stopWait+10*time.Second {
		t.Errorf("Stop took %s with NATS down", d)
	}
}
