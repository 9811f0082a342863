package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// waitLimit bounds the waits for the mirror. Generous: the machine may be busy with other tests, and a
// passing wait costs only as long as the condition takes.
const waitLimit = 30 * time.Second

// bundle is what a mirror test works with: NATS with the topology, Redis, a started Mirror and a
// Redis client of its own.
type bundle struct {
	t     *testing.T
	ns    *streamstest.Server
	js    jetstream.JetStream
	redis *testkit.Redis
	rdb   *redis.Client
	m     *Mirror
	cfg   Config
	reg   *prometheus.Registry
	logs  *testkit.SyncBuffer
	k     keys
}

type setupOpts struct {
	cfg      func(*Config)
	redis    []string // extra redis-server arguments
	noStart  bool
	tweakMir func(*Mirror)
}

// setup starts NATS and Redis and a Mirror with a 200 ms interval (fast tests), started unless
// o.noStart. Everything stops when the test ends; the mirror's log is printed if the test failed.
func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	ns := streamstest.RunServer(t)
	_, js := ns.Ensure(t)
	rs := testkit.StartRedis(t, o.redis...)
	cfg := Config{RedisURL: rs.URL(), ProgressInterval: 200 * time.Millisecond}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	m, err := New(cfg, js, reg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	m.retryMax = time.Second // catch up quickly after an outage
	if o.tweakMir != nil {
		o.tweakMir(m)
	}
	b := &bundle{t: t, ns: ns, js: js, redis: rs, rdb: rs.Client(t), m: m, cfg: m.cfg, reg: reg, logs: logs, k: newKeys(m.cfg.Queue)}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("mirror log:\n%s", logs.String())
		}
	})
	if !o.noStart {
		b.start()
	}
	return b
}

func (b *bundle) start() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.m.Start(ctx); err != nil {
		b.t.Fatalf("Start: %v", err)
	}
}

// publish stores ev in JOB_EVENTS the way workers do, filling in the envelope's defaults.
func (b *bundle) publish(ev streams.Event) {
	b.t.Helper()
	publishEvent(b.t, b.js, ev)
}

func publishEvent(t testing.TB, js jetstream.JetStream, ev streams.Event) {
	t.Helper()
	if err := tryPublish(js, ev); err != nil {
		t.Fatal(err)
	}
}

// tryPublish is publishEvent for goroutines other than the test's.
func tryPublish(js jetstream.JetStream, ev streams.Event) error {
	ev.V = streams.EventVersion
	if ev.Owner == "" {
		ev.Owner = "alice"
	}
	if ev.JobType == "" {
		ev.JobType = api.JobTypePlaylistImport
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	msg := nats.NewMsg(ev.Subject())
	msg.Data = data
	msg.Header.Set(streams.HeaderEventType, string(ev.Type))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return nil
}

// newJob publishes job.submitted (and job.started when started) for a new job and returns its id.
func (b *bundle) newJob(name string, started bool) string {
	b.t.Helper()
	id := streams.NewJobID(time.Now())
	b.publish(streams.Event{Type: streams.EventSubmitted, JobID: id, Name: name})
	if started {
		b.publish(streams.Event{Type: streams.EventStarted, JobID: id, Attempt: 1, Worker: "w1"})
	}
	return id
}

func (b *bundle) progress(id string, done, total int) {
	b.t.Helper()
	p := api.NewProgress(done, total, "")
	b.publish(streams.Event{Type: streams.EventProgress, JobID: id, Attempt: 1, Progress: &p})
}

func (b *bundle) complete(id string, result string) {
	b.t.Helper()
	p := api.NewProgress(1, 1, "")
	b.publish(streams.Event{Type: streams.EventCompleted, JobID: id, Attempt: 1, Progress: &p, Result: json.RawMessage(result)})
}

func (b *bundle) fail(id, message string) {
	b.t.Helper()
	b.publish(streams.Event{Type: streams.EventFailed, JobID: id, Attempt: 1, Final: true,
		Error: &api.JobError{Code: "import_failed", Message: message}})
}

func (b *bundle) cancel(id, message string) {
	b.t.Helper()
	b.publish(streams.Event{Type: streams.EventCancelled, JobID: id, Attempt: 1,
		Error: &api.JobError{Code: "cancelled", Message: message}, Result: json.RawMessage(`{"added":1}`)})
}

// finishedJob runs a job from submission to completion.
func (b *bundle) finishedJob(name string) string {
	b.t.Helper()
	id := b.newJob(name, true)
	b.complete(id, `{"added":1}`)
	return id
}

func (b *bundle) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	b.t.Cleanup(cancel)
	return ctx
}

func (b *bundle) hash(id string) map[string]string {
	b.t.Helper()
	h, err := b.rdb.HGetAll(b.ctx(), b.k.prefix+id).Result()
	if err != nil {
		b.t.Fatalf("HGETALL %s: %v", id, err)
	}
	return h
}

// members returns the ids in a set, oldest first.
func (b *bundle) members(set string) []string {
	b.t.Helper()
	ids, err := b.rdb.ZRange(b.ctx(), set, 0, -1).Result()
	if err != nil {
		b.t.Fatalf("ZRANGE %s: %v", set, err)
	}
	return ids
}

// allKeys returns every key in Redis (SCAN).
func (b *bundle) allKeys() []string {
	b.t.Helper()
	var out []string
	iter := b.rdb.Scan(b.ctx(), 0, "*", 100).Iterator()
	for iter.Next(b.ctx()) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		b.t.Fatalf("SCAN: %v", err)
	}
	slices.Sort(out)
	return out
}

// waitInSet waits until id is in set.
func (b *bundle) waitInSet(set, id string) {
	b.t.Helper()
	streamstest.WaitFor(b.t, waitLimit, func() error {
		if _, err := b.rdb.ZScore(b.ctx(), set, id).Result(); err != nil {
			return fmt.Errorf("%s not in %s: %v", id, set, err)
		}
		return nil
	})
}

// waitField waits until a hash field of id has value want.
func (b *bundle) waitField(id, field, want string) {
	b.t.Helper()
	streamstest.WaitFor(b.t, waitLimit, func() error {
		if got := b.hash(id)[field]; got != want {
			return fmt.Errorf("job %s %s = %q, want %q", id, field, got, want)
		}
		return nil
	})
}

// checkKeys fails unless every key is one the mirror may write: job hashes, completed, failed,
// events. In particular no wait, active, paused, delayed, meta or lock key.
func (b *bundle) checkKeys() {
	b.t.Helper()
	for _, k := range b.allKeys() {
		rest, ok := strings.CutPrefix(k, b.k.prefix)
		switch {
		case !ok:
			b.t.Errorf("unexpected key %q outside the queue", k)
		case rest == "completed" || rest == "failed" || rest == "events":
		case streams.ValidJobID(rest):
		default:
			b.t.Errorf("unexpected key %q (the mirror must never write wait/active/locks)", k)
		}
	}
}

// snapshot reads both sets and all job hashes with their finishedOn in one MULTI, so it sees one
// consistent state of Redis.
func (b *bundle) snapshot() (sets map[string][]string, hashes map[string]bool, err error) {
	var zc, zf *redis.StringSliceCmd
	var ks *redis.StringSliceCmd
	_, err = b.rdb.TxPipelined(b.ctx(), func(p redis.Pipeliner) error {
		zc = p.ZRange(b.ctx(), b.k.completed, 0, -1)
		zf = p.ZRange(b.ctx(), b.k.failed, 0, -1)
		ks = p.Keys(b.ctx(), b.k.prefix+"*")
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sets = map[string][]string{"completed": zc.Val(), "failed": zf.Val()}
	hashes = map[string]bool{}
	for _, k := range ks.Val() {
		if id, _ := strings.CutPrefix(k, b.k.prefix); streams.ValidJobID(id) {
			hashes[id] = true
		}
	}
	return sets, hashes, nil
}

// checkTogether fails when a set entry has no hash. (A hash without a set entry is a queued or
// active job, or a finished one of which checkFinishedInSet is told.)
func (b *bundle) checkTogether(finished map[string]bool) {
	b.t.Helper()
	sets, hashes, err := b.snapshot()
	if err != nil {
		b.t.Fatalf("snapshot: %v", err)
	}
	inSet := map[string]bool{}
	for name, ids := range sets {
		for _, id := range ids {
			inSet[id] = true
			if !hashes[id] {
				b.t.Errorf("%s holds %s but its hash is gone", name, id)
			}
		}
	}
	for id := range finished {
		if hashes[id] && !inSet[id] {
			b.t.Errorf("finished job %s has a hash but no set entry", id)
		}
	}
}

// consumerIdle waits until the mirror's consumer has nothing pending or unacked.
func (b *bundle) consumerIdle(timeout time.Duration) {
	b.t.Helper()
	streamstest.WaitFor(b.t, timeout, func() error {
		c, err := b.js.Consumer(b.ctx(), streams.StreamEvents, streams.ConsumerMirror)
		if err != nil {
			return err
		}
		info, err := c.Info(b.ctx())
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("consumer: %d pending, %d unacked", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// commandStats returns INFO commandstats as command name → calls.
func commandStats(ctx context.Context, t testing.TB, c *redis.Client) map[string]int64 {
	t.Helper()
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		out[name] = n
	}
	return out
}
