package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// tickAckWait is the gateways' JOBWIRE_TICK_ACK_WAIT here: a tick its gateway held when it died comes
// back after it.
const tickAckWait = 2 * time.Second

// TestPeriodicJobsLeaderChange runs an every-second schedule of demo.count (examples/count, as the
// demo-worker user) on the three-node cluster with two gateways, each as its own process and NATS
// user. Mid-run it kill -9s one gateway, then kill -9s the NATS node leading JOBS_TICKS (the stream
// and its consumer elect new leaders elsewhere), then brings both back. Every tick's job is read from
// JOB_EVENTS: each has the id derived from its tick, none was submitted twice, no tick has two jobs,
// and the only ticks without a job are those due while JOBS_TICKS had no leader, as the missed-tick
// policy says (not caught up); every job completed.
func TestPeriodicJobsLeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: 3 nats-servers and 4 services for about 40 s")
	}
	nodes := startCluster(t)
	s := &stack{natsURL: joinURLs(nodes...), users: confUsers(t), common: []string{"JOBWIRE_REPLICAS=3",
		"JOBWIRE_TICK_ACK_WAIT=" + tickAckWait.String()}}
	if out, code := s.admin(t, 2*time.Minute, "admin", "ensure"); code != 0 {
		t.Fatalf("jobwire admin ensure exited %d:\n%s", code, out)
	}
	admin := s.jetstream(t, "admin")
	s.startService(t, "projector", "projector", "projector")
	testkit.StartProc(t, "examples/count", countBin, s.env("demo-worker"))
	gw1 := s.startService(t, "gateway-1", "gateway", "gateway")
	gw2 := s.startService(t, "gateway-2", "gateway", "gateway")
	tok, err := auth.NewSigner([]byte(jwtSecret), "").Sign("ops", time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	ops := api.NewClient(gw2.base, tok)
	testkit.WaitJobType(t, ops, "demo.count", true, 30*time.Second)
	ctx := context.Background()
	sched, err := ops.CreateSchedule(ctx, api.ScheduleRequest{ID: "every-second", Type: "demo.count", Input: json.RawMessage(`{"n":2}`), Every: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ticks := func() []time.Time { return testkit.TickTimes(t, testkit.SubmittedEvents(t, admin, "ops"), sched) }
	waitMore := func(n int) []time.Time {
		t.Helper()
		var got []time.Time
		before := len(ticks())
		streamstest.WaitFor(t, time.Minute, func() error {
			if got = ticks(); len(got) < before+n {
				return fmt.Errorf("%d ticks made jobs, want %d", len(got), before+n)
			}
			return nil
		})
		return got
	}

	waitMore(4)
	t.Logf("%s: kill -9 gateway-1", since(start))
	gw1.Kill()
	waitMore(4)

	leader := streamLeader(t, admin)
	var dead *natsNode
	for _, n := range nodes {
		if n.name == leader {
			dead = n
		}
	}
	if dead == nil {
		t.Fatalf("JOBS_TICKS is led by %q, no node of the cluster", leader)
	}
	electionFrom := time.Now()
	t.Logf("%s: kill -9 %s, the leader of JOBS_TICKS", since(start), dead.name)
	dead.proc.Kill()
	streamstest.WaitFor(t, time.Minute, func() error {
		if l := streamLeader(t, admin); l == "" || l == dead.name {
			return fmt.Errorf("JOBS_TICKS leader %q", l)
		}
		c, err := admin.Consumer(ctx, streams.StreamTicks, streams.ConsumerTicker)
		if err != nil {
			return err
		}
		if cl := c.CachedInfo().Cluster; cl == nil || cl.Leader == "" || cl.Leader == dead.name {
			return fmt.Errorf("ticker consumer without a leader: %+v", cl)
		}
		return nil
	})
	electionTo := time.Now()
	t.Logf("%s: JOBS_TICKS and its consumer have new leaders (%s after the kill)", since(start), electionTo.Sub(electionFrom).Round(time.Millisecond))
	waitMore(3)
	t.Logf("%s: %s and gateway-1 back", since(start), dead.name)
	dead.start(t, true)
	if err := gw1.Restart(); err != nil {
		t.Fatal(err)
	}
	gw1.waitReady(t)
	waitMore(4)
	// The ticks any gateway holds are settled within a lease; then the schedule goes.
	time.Sleep(tickAckWait + time.Second)
	if err := ops.DeleteSchedule(ctx, sched.ID); err != nil {
		t.Fatal(err)
	}
	final := ticks()

	// Gaps only where the policy allows: ticks due while JOBS_TICKS had no leader, or had one whose
	// ticks waited for the consumer's election (those are missed, not caught up).
	allowedFrom, allowedTo := electionFrom.Add(-time.Second), electionTo.Add(tickAckWait+2*time.Second)
	gaps := testkit.TickGaps(final, time.Second)
	for _, g := range gaps {
		if g.Before(allowedFrom) || g.After(allowedTo) {
			t.Errorf("tick %s made no job, outside the leader change (%s to %s)", g.Format(time.TimeOnly),
				electionFrom.Format(time.TimeOnly), electionTo.Format(time.TimeOnly))
		}
	}
	t.Logf("%d ticks made jobs, from %s to %s; %d missed during the leader change: %v", len(final),
		final[0].Format(time.TimeOnly), final[len(final)-1].Format(time.TimeOnly), len(gaps), gaps)
	def := streams.Schedule{ID: sched.ID, CreatedAt: sched.CreatedAt}
	for _, tick := range final {
		id := def.TickJobID(tick)
		streamstest.WaitFor(t, time.Minute, func() error {
			st, err := ops.Get(ctx, id)
			if err == nil && (st.State != api.StateCompleted || string(st.Result) != `{"count":2}`) {
				err = fmt.Errorf("job %s of tick %s: %s %s", id, tick.Format(time.TimeOnly), st.State, st.Result)
			}
			return err
		})
	}
	mustNoViolations(t, nodes...)
}

// streamLeader is the server leading JOBS_TICKS ("" while it has none).
func streamLeader(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, streams.StreamTicks)
	if err != nil || s.CachedInfo().Cluster == nil {
		return ""
	}
	return s.CachedInfo().Cluster.Leader
}
