package mirror

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// TestRedisDownThenBackCatchesUp kills Redis (SIGKILL) while jobs run and finish, restarts it, and
// checks that every job is there afterwards: events wait in JetStream, unacked, until their write
// succeeds. Redis keeps an append-only file here, so the jobs written before the kill survive too.
func TestRedisDownThenBackCatchesUp(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{
		redis: []string{"--appendonly", "yes", "--appendfsync", "always"},
		cfg:   func(c *Config) { c.MaxCount = 100 },
	})
	before := b.finishedJob("before")
	running := b.newJob("running", true)
	b.progress(running, 1, 10)
	b.waitInSet(b.k.completed, before)
	b.waitField(running, "progress", "10")

	b.redis.Kill()
	var during []string
	for i := range 5 {
		during = append(during, b.finishedJob(fmt.Sprintf("during %d", i)))
	}
	failedDuring := b.newJob("failed during", true)
	b.fail(failedDuring, "broken")
	b.progress(running, 7, 10)
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if v := testutil.ToFloat64(b.m.met.up); v != 0 {
			return fmt.Errorf("redis_up = %v, want 0", v)
		}
		return nil
	})

	b.redis.Restart()
	for _, id := range append(during, before) {
		b.waitInSet(b.k.completed, id)
	}
	b.waitInSet(b.k.failed, failedDuring)
	b.waitField(running, "progress", "70")
	if h := b.hash(during[0]); h["data"] != `{"name":"during 0"}` || h["returnvalue"] != `{"added":1}` {
		t.Errorf("job written after the outage = %v", h)
	}
	b.complete(running, `{"added":10}`)
	b.waitInSet(b.k.completed, running)
	b.consumerIdle(waitLimit)
	b.checkKeys()
	if !strings.Contains(b.logs.String(), "redis reachable again") {
		t.Errorf("no recovery logged")
	}
}

// TestFlushAllDoesNotCrash empties Redis under a running mirror: it keeps going, and the next change
// of each job writes the job's full state again.
func TestFlushAllDoesNotCrash(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	old := b.finishedJob("old")
	running := b.newJob("running", true)
	b.progress(running, 3, 10)
	b.waitInSet(b.k.completed, old)
	b.waitField(running, "progress", "30")

	if err := b.rdb.FlushAll(b.ctx()).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	if err := b.rdb.ScriptFlush(b.ctx()).Err(); err != nil { // the harder case: scripts gone too
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	b.progress(running, 6, 10)
	b.waitField(running, "progress", "60")
	if h := b.hash(running); h["data"] != `{"name":"running"}` || h["processedOn"] == "" {
		t.Errorf("rewritten active job lacks fields: %v", h)
	}
	b.complete(running, `{"added":6}`)
	next := b.finishedJob("next")
	b.waitInSet(b.k.completed, running)
	b.waitInSet(b.k.completed, next)
	if h := b.hash(old); len(h) != 0 {
		t.Errorf("flushed job came back: %v", h)
	}
	b.checkTogether(map[string]bool{running: true, next: true})
	b.checkKeys()
}

// TestStartWhileRedisIsDown: Start succeeds without Redis, events wait, and they are written once
// Redis appears.
func TestStartWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noStart: true})
	b.redis.Kill()
	b.start()
	id := b.finishedJob("early")
	if !strings.Contains(b.logs.String(), "redis unreachable") {
		t.Errorf("Redis being down at start was not logged:\n%s", b.logs.String())
	}
	b.redis.Restart()
	b.waitInSet(b.k.completed, id)
}

// TestConsumerDeletedIsRecreated: an operator deleting the durable consumer does not stop the mirror
// for good; it re-creates the consumer and goes on.
func TestConsumerDeletedIsRecreated(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	first := b.finishedJob("first")
	b.waitInSet(b.k.completed, first)
	b.consumerIdle(waitLimit)

	if err := b.js.DeleteConsumer(b.ctx(), streams.StreamEvents, streams.ConsumerMirror); err != nil {
		t.Fatalf("delete consumer: %v", err)
	}
	second := b.finishedJob("second")
	b.waitInSet(b.k.completed, second)
	if !strings.Contains(b.logs.String(), "re-creating it") {
		t.Errorf("consumer loss not logged")
	}
}

// TestNATSRestart: the mirror rides through a NATS restart and goes on from its durable consumer.
func TestNATSRestart(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	first := b.finishedJob("first")
	b.waitInSet(b.k.completed, first)
	b.ns.Restart()
	second := b.finishedJob("second")
	b.waitInSet(b.k.completed, second)
}
