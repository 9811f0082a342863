package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// TestSingleServer runs deployments/nats/single.conf as it is (only ports and store_dir rewritten), has
// the admin user create the topology, runs gateway, worker and projector each with its own user,
// drives every gateway route that touches NATS, and then checks that each user is refused what its
// role must not do.
func TestSingleServer(t *testing.T) {
	runSingle(t, singleOptions{})
}

// TestSingleServerAckV2 is TestSingleServer with the server sending the v2 format of ack and
// flow-control subjects ($JS.ACK.<domain>.<account hash>.<stream>.<consumer>...), which a later
// nats-server makes the default: the permissions must already allow it.
func TestSingleServerAckV2(t *testing.T) {
	runSingle(t, singleOptions{ackV2: true})
}

// TestSingleServerStrict is TestSingleServer with the "self-ensure" permissions removed from
// accounts.conf: the services only check the topology (JOBWIRE_TOPOLOGY=check) that the admin created
// with `jobwire admin ensure`. It runs once the binary has that setting (see deployments/README.md).
func TestSingleServerStrict(t *testing.T) {
	if !hasVar("JOBWIRE_TOPOLOGY") {
		t.Skip("the binary has no JOBWIRE_TOPOLOGY=check yet: services still create the topology themselves " +
			"(deployments/README.md, \"Topology and permissions\")")
	}
	runSingle(t, singleOptions{strict: true})
}

type singleOptions struct {
	// strict removes the self-ensure permissions and runs the services with JOBWIRE_TOPOLOGY=check.
	strict bool
	// ackV2 turns on the server's feature flag js_ack_fc_v2.
	ackV2 bool
}

func runSingle(t *testing.T, o singleOptions) {
	strict := o.strict
	dir := copyNATSConfs(t, strict)
	if o.ackV2 {
		appendFile(t, filepath.Join(dir, "single.conf"), "\nfeature_flags { js_ack_fc_v2: true }\n")
	}
	node := prepareNode(t, dir, "single.conf", freePorts(t, 4222, 8222))
	node.start(t, true)
	s := &stack{natsURL: node.url(), users: confUsers(t), common: []string{"JOBWIRE_REPLICAS=1"}}
	if strict {
		s.common = append(s.common, "JOBWIRE_TOPOLOGY=check")
	}

	t.Run("authentication", func(t *testing.T) {
		if nc, err := nats.Connect(s.natsURL); err == nil {
			nc.Close()
			t.Error("connected without credentials")
		}
		if nc, err := nats.Connect(s.natsURL, nats.UserInfo("worker", "wrong")); err == nil {
			nc.Close()
			t.Error("connected with a wrong password")
		}
	})

	// The admin creates the topology before any service starts.
	if strict {
		if out, code := s.admin(t, 2*time.Minute, "admin", "ensure"); code != 0 {
			t.Fatalf("jobwire admin ensure exited %d:\n%s", code, out)
		}
	} else {
		// Today `jobwire admin rebuild` is the admin command that creates the topology (every command
		// ensures it when it connects); on an empty system it then finds nothing to differ.
		out, code := s.admin(t, 2*time.Minute, "admin", "rebuild")
		if code != 0 || !strings.Contains(out, "JOB_STATE matches the replay") {
			t.Fatalf("jobwire admin rebuild exited %d:\n%s", code, out)
		}
	}
	checkAccountLimits(t, s)

	services := []*svc{
		s.startService(t, "projector", "projector", "projector"),
		s.startService(t, "worker", "worker", "worker", "JOBWIRE_NOOP_JOBS=true", "JOBWIRE_PPROF=true"),
	}
	if addr := startRedis(t); addr != "" {
		services = append(services, s.startService(t, "mirror", "mirror", "mirror", "REDIS_URL=redis://"+addr+"/0"))
	}
	gw := s.startService(t, "gateway", "gateway", "gateway")
	services = append(services, gw)

	driveGateway(t, gw.base)
	t.Run("own job type", func(t *testing.T) { driveOwnJobType(t, s, gw.base) })
	for _, v := range services {
		code, _, err := httpGet(v.ops + "/metrics")
		if err != nil || code != http.StatusOK {
			t.Errorf("%s /metrics: %d %v", v.Name, code, err)
		}
	}
	if code, _, _ := httpGet(gw.base + "/metrics"); code != http.StatusNotFound {
		t.Errorf("the gateway's API port serves /metrics: %d", code)
	}
	// Profiles only where asked for (the worker), and only on the metrics listener.
	for url, want := range map[string]int{services[1].ops + "/debug/pprof/": 200, gw.ops + "/debug/pprof/": 404, gw.base + "/debug/pprof/": 404} {
		if code, _, _ := httpGet(url); code != want {
			t.Errorf("%s: %d, want %d", url, code, want)
		}
	}
	if len(services) == 4 {
		waitConsumerCaughtUp(t, s.jetstream(t, "admin"), streams.ConsumerMirror)
	}
	// Stopping exercises the rest: the watch's consumer delete, drains, the worker's hand-back.
	for i := len(services) - 1; i >= 0; i-- {
		if err := services[i].Stop(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("flow control", func(t *testing.T) { checkFlowControl(t, s) })
	mustNoViolations(t, node)
	for _, v := range services {
		if out := v.Out.String(); strings.Contains(strings.ToLower(out), "permissions violation") {
			t.Errorf("%s logged a permissions violation:\n%s", v.Name, v.Out.Tail(40))
		}
	}
	if t.Failed() {
		return
	}

	t.Run("refused", func(t *testing.T) { checkRefused(t, s) })
	t.Run("system account", func(t *testing.T) {
		nc, _ := s.connect(t, "sys")
		msg, err := nc.Request("$SYS.REQ.SERVER.PING.JSZ", nil, 5*time.Second)
		if err != nil {
			t.Fatalf("system account request: %v", err)
		}
		if !strings.Contains(string(msg.Data), `"server"`) {
			t.Fatalf("JSZ answer: %s", msg.Data)
		}
	})
}

// checkAccountLimits checks the JOBWIRE account's JetStream limits as the server applies them.
func checkAccountLimits(t *testing.T, s *stack) {
	t.Helper()
	js := s.jetstream(t, "admin")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatalf("account info: %v", err)
	}
	l := info.Limits
	if l.MaxConsumers != 1000 || l.MaxAckPending != 10000 || l.MaxStreams != 16 || l.MaxMemory <= 0 || l.MaxStore <= 0 {
		t.Errorf("JOBWIRE account limits %+v, want max_consumers 1000, max_ack_pending 10000, max_streams 16, memory and file set", l)
	}
	if names, buckets := streams.Names(); info.Streams != len(names)+len(buckets) {
		t.Errorf("account has %d streams after the admin created the topology, want %d", info.Streams, len(names)+len(buckets))
	}
}

// driveGateway uses every gateway route that reads or writes NATS, as one user.
func driveGateway(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tok := token(t, "alice")
	c := api.NewClient(base, tok)
	p := newPlaylist("alice", 12, 3)

	// Submit (idempotency key: JOB_IDEMPOTENCY create), watch (KV watch), result, library.
	st, created, err := c.Submit(ctx, p.request("mix"), "import-1")
	if err != nil || !created {
		t.Fatalf("submit: %v (created %v)", err, created)
	}
	final := watch(t, ctx, c, st.ID)
	if err := checkImportResult(final, p); err != nil {
		t.Fatal(err)
	}
	again, created, err := c.Submit(ctx, p.request("mix"), "import-1")
	if err != nil || created || again.ID != st.ID {
		t.Fatalf("idempotent resubmit: %v, created %v, id %s want %s", err, created, again.ID, st.ID)
	}
	if err := checkLibrary(ctx, c, p.tracks); err != nil {
		t.Fatal(err)
	}
	// The same playlist again: every track exists (the worker reads them back), nothing is added.
	st2, _, err := c.Submit(ctx, p.request("mix again"), "")
	if err != nil {
		t.Fatal(err)
	}
	var res api.ImportResult
	if final := watch(t, ctx, c, st2.ID); final.State != api.StateCompleted || json.Unmarshal(final.Result, &res) != nil ||
		res.Added != 0 || res.Existing != len(p.tracks) {
		t.Fatalf("re-import: %s %s", final.State, final.Result)
	}
	if err := checkLibrary(ctx, c, p.tracks); err != nil {
		t.Fatal(err)
	}
	// A no-op job: the worker's second durable (worker-noop).
	noop, _, err := c.Submit(ctx, api.SubmitRequest{Type: "noop", Input: json.RawMessage(`{}`)}, "")
	if err != nil {
		t.Fatalf("submit noop: %v", err)
	}
	if final := watch(t, ctx, c, noop.ID); final.State != api.StateCompleted {
		t.Fatalf("noop job ended %s", final.State)
	}
	if h, err := c.History(ctx, st.ID, "", 0); err != nil || len(h.Events) < 3 {
		t.Fatalf("history: %v, %d events", err, len(h.Events))
	}
	if list, err := c.List(ctx, "", "", 10); err != nil || len(list.Jobs) != 3 || list.Jobs[2].ID != st.ID {
		t.Fatalf("list: %v %+v", err, list)
	}
	if code, body, err := getStatus(ctx, base+"/library/sync/"+st.ID, tok); err != nil || code != http.StatusOK || !strings.Contains(string(body), `"completed"`) {
		t.Fatalf("legacy get: %d %s %v", code, body, err)
	}

	// A malformed playlist fails for good (dead letter: jobs.dlq), and a retry re-queues it from JOBS_DLQ.
	in, _ := json.Marshal(api.PlaylistImport{Name: "broken", Format: api.FormatJSON, Content: "{not json"})
	bad, _, err := c.Submit(ctx, api.SubmitRequest{Type: api.JobTypePlaylistImport, Input: in}, "")
	if err != nil {
		t.Fatal(err)
	}
	if st := watch(t, ctx, c, bad.ID); st.State != api.StateFailed {
		t.Fatalf("malformed import ended %s", st.State)
	}
	retried, err := c.Retry(ctx, bad.ID)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	streamstest.WaitFor(t, time.Minute, func() error {
		h, err := c.History(ctx, bad.ID, "", 0)
		if err != nil {
			return err
		}
		st, err := c.Get(ctx, bad.ID)
		if err != nil {
			return err
		}
		var events strings.Builder
		for _, e := range h.Events {
			events.Write(e)
		}
		if st.State != api.StateFailed || st.Revision <= retried.Revision || !strings.Contains(events.String(), `"job.requeued"`) {
			return fmt.Errorf("retried job: state %s rev %d", st.State, st.Revision)
		}
		return nil
	})

	// An operator lists the dead letters, retries the job again and purges it (MSG.GET next-by-subject,
	// MSG.DELETE, JOBS_AUDIT), all with the gateway's own NATS user.
	operateDeadLetters(t, ctx, base, "alice", bad.ID)

	// An operator's periodic job: stored as a schedule in JOBS_TICKS, its ticks taken through the
	// durable "ticker" (direct gets, the tick's job with its idempotency key), listed and deleted (a purge).
	operateSchedules(t, ctx, base)

	// A scheduled job (jobs.schedule) cancelled while it waits (job.cancelled event, cancel broadcast).
	later := time.Now().Add(time.Hour)
	sched, _, err := c.Submit(ctx, api.SubmitRequest{Type: api.JobTypePlaylistImport, Input: p.request("later").Input, RunAt: &later}, "")
	if err != nil {
		t.Fatalf("scheduled submit: %v", err)
	}
	if _, err := c.Cancel(ctx, sched.ID); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	streamstest.WaitFor(t, 30*time.Second, func() error {
		st, err := c.Get(ctx, sched.ID)
		if err == nil && st.State != api.StateCancelled {
			err = fmt.Errorf("scheduled job: state %s", st.State)
		}
		return err
	})
}

// watch follows a job's SSE stream to its terminal state.
func watch(t *testing.T, ctx context.Context, c *api.Client, id string) api.JobState {
	t.Helper()
	var last api.JobState
	err := c.WatchJob(ctx, id, func(st api.JobState) error { last = st; return nil }, nil)
	if err != nil || !last.State.Terminal() {
		t.Fatalf("watch %s: %v, last state %+v", id, err, last)
	}
	return last
}

// driveOwnJobType runs examples/count as the demo-worker user of accounts.conf (the template for a
// team's own worker): its type registers, its job runs, and it leaves the registry when it stops.
func driveOwnJobType(t *testing.T, s *stack, base string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := api.NewClient(base, token(t, "alice"))
	count := testkit.StartProc(t, "examples/count", countBin, s.env("demo-worker"))
	testkit.WaitJobType(t, c, "demo.count", true, 30*time.Second)
	st, _, err := c.Submit(ctx, api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(`{"n":3}`)}, "")
	if err != nil {
		t.Fatal(err)
	}
	if final := watch(t, ctx, c, st.ID); final.State != api.StateCompleted || string(final.Result) != `{"count":3}` {
		t.Fatalf("demo.count ended %s %s", final.State, final.Result)
	}
	controlOwnJobType(t, ctx, base, c)
	if err := count.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	testkit.WaitJobType(t, c, "demo.count", false, 10*time.Second)
	if out := count.Out.String(); strings.Contains(strings.ToLower(out), "permission") {
		t.Errorf("examples/count hit a permission error:\n%s", count.Out.Tail(40))
	}
}

// controlOwnJobType drives the queue controls with the gateway's and the demo-worker's own NATS users:
// a rate limit (the gateway creates and deletes the ticket stream, the worker takes tickets), a pause
// (the gateway writes the control entry, the worker watches it) and a high-priority job (the worker's
// -high consumer).
func controlOwnJobType(t *testing.T, ctx context.Context, base string, c *api.Client) {
	t.Helper()
	tok, err := auth.NewSigner([]byte(jwtSecret), "").Sign("ops", time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	ops := api.NewClient(base, tok)
	if _, err := ops.SetRateLimit(ctx, "demo.count", api.RateLimit{Limit: 5, Interval: api.Duration(time.Second)}); err != nil {
		t.Fatalf("set rate limit: %v", err)
	}
	if _, err := ops.PauseJobType(ctx, "demo.count"); err != nil {
		t.Fatalf("pause: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	st, _, err := c.Submit(ctx, api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(`{"n":1}`), Priority: api.PriorityHigh}, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if got, err := c.Get(ctx, st.ID); err != nil || got.State != api.StateQueued {
		t.Fatalf("job submitted while paused: %+v, %v", got, err)
	}
	if _, err := ops.ResumeJobType(ctx, "demo.count"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if final := watch(t, ctx, c, st.ID); final.State != api.StateCompleted {
		t.Fatalf("high-priority demo.count ended %s", final.State)
	}
	if _, err := ops.RemoveRateLimit(ctx, "demo.count"); err != nil {
		t.Fatalf("remove rate limit: %v", err)
	}
}

// refusals are what each service user must not be allowed to do: publish to these subjects...
var refusedPublish = map[string][]string{
	"gateway": {
		"$KV.JOB_STATE.alice.01JAAAAAAAAAAAAAAAAAAAAAAA", "$KV.LIBRARY.alice.x", "jobs.dlq.alice.x",
		"$JS.API.CONSUMER.CREATE.JOBS.worker-playlist_import.jobs.queue.playlist.import",
		"$JS.API.CONSUMER.DURABLE.CREATE.JOBS.sneaky", "$JS.API.CONSUMER.CREATE.JOBS",
		"$JS.API.CONSUMER.MSG.NEXT.JOBS.worker-playlist_import",
		"$JS.API.STREAM.DELETE.JOB_EVENTS", "$JS.API.STREAM.PURGE.JOB_EVENTS", "$JS.API.STREAM.MSG.DELETE.JOB_EVENTS",
		"$JS.API.STREAM.CREATE.OTHER", "$JS.API.CONSUMER.DELETE.JOB_EVENTS.projector",
		"$KV.JOB_TYPES.type.playlist.import", "$KV.JOB_TYPES.worker.noop.01JAAAAAAAAAAAAAAAAAAAAAAA",
		"$KV.JOB_TYPES.schema.demo.count.x", "$JS.API.STREAM.CREATE.JOBS_RATE_other", "$JS.API.STREAM.DELETE.JOBS",
		"jobs.tick.fire.x", "$JS.API.STREAM.PURGE.JOBS", "$JS.API.STREAM.DELETE.JOBS_TICKS",
		"$JS.API.CONSUMER.CREATE.JOBS_TICKS.sneaky.jobs.tick.>", "$JS.API.CONSUMER.DELETE.JOBS_TICKS.ticker",
	},
	"worker": {
		"$KV.JOB_STATE.alice.01JAAAAAAAAAAAAAAAAAAAAAAA", "$KV.JOB_IDEMPOTENCY.alice.x",
		"jobs.queue.demo.count", "jobs.cancel.alice.x",
		"$JS.API.STREAM.DELETE.JOBS", "$JS.API.STREAM.PURGE.JOBS", "$JS.API.STREAM.MSG.DELETE.JOB_EVENTS",
		"$JS.API.CONSUMER.DELETE.JOBS.worker-playlist_import",
		"$JS.API.CONSUMER.CREATE.JOB_EVENTS.projector.jobs.events.*.*",
		"$KV.JOB_TYPES.type.demo.count", "$KV.JOB_TYPES.worker.demo.count.01JAAAAAAAAAAAAAAAAAAAAAAA",
		"jobs.tick.schedule.x", "jobs.tick.fire.x", "$JS.API.STREAM.PURGE.JOBS_TICKS", "$JS.API.CONSUMER.MSG.NEXT.JOBS_TICKS.ticker",
	},
	"demo-worker": {
		"$KV.JOB_TYPES.type.playlist.import", "$KV.JOB_TYPES.schema.noop.x", "$KV.LIBRARY.alice.x",
		"$KV.JOB_STATE.alice.01JAAAAAAAAAAAAAAAAAAAAAAA", "jobs.queue.playlist.import", "jobs.cancel.alice.x",
		"$JS.API.CONSUMER.CREATE.JOBS.worker-playlist_import.jobs.queue.playlist.import",
		"$JS.API.CONSUMER.MSG.NEXT.JOBS.worker-playlist_import", "$JS.API.STREAM.CREATE.KV_JOB_TYPES",
		"$JS.API.STREAM.DELETE.JOBS", "$JS.API.CONSUMER.DELETE.JOBS.worker-demo_count",
		"$KV.JOB_TYPES.control.demo.count", "$JS.API.STREAM.CREATE.JOBS_RATE_demo_count", "jobs.rate.playlist.import",
	},
	"projector": {
		"jobs.queue.playlist.import", "jobs.schedule.01JAAAAAAAAAAAAAAAAAAAAAAA", "jobs.dlq.alice.x",
		"jobs.cancel.alice.x", "$KV.LIBRARY.alice.x", "$KV.JOB_IDEMPOTENCY.alice.x",
		"$JS.API.CONSUMER.MSG.NEXT.JOBS.worker-playlist_import", "$JS.API.STREAM.PURGE.KV_JOB_STATE",
		"$JS.API.STREAM.DELETE.KV_JOB_STATE", "$JS.API.CONSUMER.CREATE.JOB_EVENTS.mirror-redis",
	},
	"mirror": {
		"jobs.events.alice.01JAAAAAAAAAAAAAAAAAAAAAAA", "jobs.queue.playlist.import", "jobs.cancel.alice.x",
		"jobs.dlq.alice.x", "$KV.JOB_STATE.alice.x", "$KV.LIBRARY.alice.x", "anything.else",
		"$JS.API.STREAM.PURGE.JOB_EVENTS", "$JS.API.CONSUMER.DELETE.JOB_EVENTS.projector",
		"$JS.API.CONSUMER.MSG.NEXT.JOB_EVENTS.projector", "$JS.ACK.JOB_EVENTS.projector.1.1.1.1.1",
		"$JS.API.DIRECT.GET.JOB_EVENTS.jobs.events.alice.x",
	},
}

// ... and subscribe to these (reading the queue, the events or the state behind JetStream's back).
var refusedSubscribe = map[string][]string{
	"gateway":     {"jobs.queue.>", "jobs.events.>", "$KV.JOB_STATE.>", ">"},
	"worker":      {"jobs.events.>", "$KV.JOB_STATE.>", "jobs.queue.>"},
	"demo-worker": {"jobs.events.>", "$KV.>", "jobs.queue.>", ">"},
	"projector":   {"jobs.>", "$KV.>"},
	"mirror":      {"jobs.events.>", "jobs.cancel.>", ">"},
}

// checkRefused checks every refusal with nats.go directly, as the service's user, and that each user can
// still do a permitted request on the same connection.
func checkRefused(t *testing.T, s *stack) {
	for _, user := range []string{"gateway", "worker", "demo-worker", "projector", "mirror"} {
		t.Run(user, func(t *testing.T) {
			nc, errs := s.connect(t, user)
			for _, subj := range refusedPublish[user] {
				drain(errs)
				if err := nc.Publish(subj, []byte("x")); err != nil {
					t.Fatalf("publish %s: %v", subj, err)
				}
				expectViolation(t, nc, errs, fmt.Sprintf("Publish to %q", subj))
			}
			for _, subj := range refusedSubscribe[user] {
				drain(errs)
				sub, err := nc.SubscribeSync(subj)
				if err != nil {
					t.Fatalf("subscribe %s: %v", subj, err)
				}
				expectViolation(t, nc, errs, fmt.Sprintf("Subscription to %q", subj))
				_ = sub.Unsubscribe()
			}
			// A permitted request still works on this connection.
			msg, err := nc.Request("$JS.API.STREAM.INFO."+streams.StreamEvents, nil, 5*time.Second)
			if err != nil || !strings.Contains(string(msg.Data), `"config"`) {
				t.Fatalf("stream info as %s: %v", user, err)
			}
		})
	}

	// Through the JetStream API: a worker or a gateway writing JOB_STATE gets no ack, and nothing lands.
	for _, user := range []string{"worker", "gateway"} {
		js := s.jetstream(t, user)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.Publish(ctx, "$KV.JOB_STATE.mallory.01JAAAAAAAAAAAAAAAAAAAAAAA", []byte(`{"state":"completed"}`))
		cancel()
		if err == nil {
			t.Errorf("%s wrote JOB_STATE", user)
		}
	}
	kv, err := s.jetstream(t, "admin").KeyValue(context.Background(), streams.BucketState)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), "mallory.01JAAAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("JOB_STATE holds the key written by a refused user: %v", err)
	}
}

func drain(errs chan error) {
	for {
		select {
		case <-errs:
		default:
			return
		}
	}
}

// expectViolation waits for the server's permissions violation that mentions what.
func expectViolation(t *testing.T, nc *nats.Conn, errs chan error, what string) {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), what) {
				return
			}
		case <-timeout:
			t.Errorf("no permissions violation for %s", what)
			return
		}
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// startRedis runs redis-server on a free port when it is installed and returns its address, or "".
func startRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Log("redis-server not installed: running without the mirror")
		return ""
	}
	return testkit.StartRedis(t).Addr()
}

// checkFlowControl makes the server ask the gateway's watches for flow control (it does past 1 MiB in
// flight): the gateway loads all of JOB_STATE at start and lists libraries, so it must be allowed to
// answer, or its watch stalls. 2500 values of 2 KiB per bucket, read back through the gateway's user.
func checkFlowControl(t *testing.T, s *stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := s.jetstream(t, "admin")
	gateway := s.jetstream(t, "gateway")
	value := bytes.Repeat([]byte("x"), 2048)
	const n = 2500
	for _, bucket := range []string{streams.BucketState, streams.BucketLibrary} {
		kv, err := admin.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, err := kv.Put(ctx, fmt.Sprintf("fctest.%05d", i), value); err != nil {
				t.Fatalf("put: %v", err)
			}
		}
		gkv, err := gateway.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		w, err := gkv.Watch(ctx, "fctest.*")
		if err != nil {
			t.Fatalf("watch %s as gateway: %v", bucket, err)
		}
		got := 0
		timeout := time.After(60 * time.Second)
	read:
		for {
			select {
			case e := <-w.Updates():
				if e == nil {
					break read
				}
				got++
			case <-timeout:
				break read
			}
		}
		_ = w.Stop()
		if got != n {
			t.Errorf("gateway's watch of %s delivered %d of %d values (flow control refused?)", bucket, got, n)
		}
		stream, err := admin.Stream(ctx, "KV_"+bucket)
		if err == nil {
			err = stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+bucket+".fctest.>"))
		}
		if err != nil {
			t.Fatalf("purge: %v", err)
		}
	}
}

// operateSchedules has an operator make an every-second schedule of noop jobs, waits for two of its
// jobs to complete, lists it and deletes it, all through the gateway's own NATS user.
func operateSchedules(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	tok, err := auth.NewSigner([]byte(jwtSecret), "").Sign("ops", time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	ops := api.NewClient(base, tok)
	s, err := ops.CreateSchedule(ctx, api.ScheduleRequest{ID: "deploytest", Type: "noop", Input: json.RawMessage(`{}`), Every: "1s"})
	if err != nil {
		t.Fatalf("create schedule: %v", err)
	}
	def := streams.Schedule{ID: s.ID, CreatedAt: s.CreatedAt}
	streamstest.WaitFor(t, 30*time.Second, func() error {
		list, err := ops.List(ctx, api.StateCompleted, "", 100)
		if err != nil {
			return err
		}
		n := 0
		for _, j := range list.Jobs {
			if j.ID == def.TickJobID(streams.JobIDTime(j.ID)) {
				n++
			}
		}
		if n < 2 {
			return fmt.Errorf("%d of the schedule's jobs completed", n)
		}
		return nil
	})
	if list, err := ops.Schedules(ctx); err != nil || len(list.Schedules) != 1 {
		t.Fatalf("list schedules: %v %+v", err, list)
	}
	if err := ops.DeleteSchedule(ctx, s.ID); err != nil {
		t.Fatalf("delete schedule: %v", err)
	}
}

// operateDeadLetters lists user's dead job id as an operator, sees it counted in the console (a
// consumer made for the read on JOBS_DLQ, the gateways' stats), retries it from the dead letters (it
// fails again), then purges it: each answered 200 through the gateway's NATS permissions.
func operateDeadLetters(t *testing.T, ctx context.Context, base, user, id string) {
	t.Helper()
	tok, err := auth.NewSigner([]byte(jwtSecret), "").Sign("ops", time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	ops := api.NewClient(base, tok)
	key := user + "." + id
	streamstest.WaitFor(t, time.Minute, func() error {
		list, err := ops.DeadLetters(ctx, api.DeadLetterFilter{Type: api.JobTypePlaylistImport}, "", 0)
		if err == nil && (len(list.DeadLetters) != 1 || list.DeadLetters[0].Key != key) {
			err = fmt.Errorf("dead letters %+v, want %s", list.DeadLetters, key)
		}
		return err
	})
	watchConsoleFor(t, ctx, ops, func(s api.ConsoleSnapshot) bool {
		for _, r := range s.Types {
			if r.Type == api.JobTypePlaylistImport {
				return r.DeadLettered == 1 && s.DeadLetters == 1 && len(s.Gateways) == 1
			}
		}
		return false
	})
	if res, err := ops.RetryDeadLetters(ctx, api.DeadLetterSelection{Keys: []string{key}}); err != nil || res[0].Status != http.StatusOK {
		t.Fatalf("operator retry: %v %+v", err, res)
	}
	streamstest.WaitFor(t, time.Minute, func() error {
		res, err := ops.PurgeDeadLetters(ctx, api.DeadLetterSelection{Keys: []string{key}})
		if err == nil && res[0].Status != http.StatusOK {
			err = fmt.Errorf("purge: %+v", res[0])
		}
		return err
	})
}

// watchConsoleFor reads the operators' console stream until a snapshot satisfies ok.
func watchConsoleFor(t *testing.T, ctx context.Context, ops *api.Client, ok func(api.ConsoleSnapshot) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := ops.OpenConsole(ctx)
	if err != nil {
		t.Fatalf("open the console: %v", err)
	}
	defer s.Close()
	for {
		ev, err := s.Next()
		if err != nil {
			t.Fatalf("the console: %v", err)
		}
		if snap, err := ev.Console(); err == nil && ok(snap) {
			return
		}
	}
}
