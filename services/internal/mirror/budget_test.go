package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// perJobBudget is the documented Redis command budget of one job (see the package documentation),
// as INFO commandstats counts it: 9 for the terminal write (trim included), plus 5 per coalesced write,
// of which there are at most one per interval while the job runs, plus two for the edges (the queued
// state, and the tick that catches the last change before the end).
func perJobBudget(run, interval time.Duration) int64 {
	return 9 + 5*(int64(math.Ceil(run.Seconds()/interval.Seconds()))+2)
}

// TestCommandBudget runs 20 jobs with 100 progress updates each, spread over about 2 s per job as a
// worker would emit them, and checks Redis's own count of the commands it ran (INFO commandstats,
// which counts the commands inside scripts too) against the per-job budget.
//
// Measured (2 cores, Redis 7.0.15, 1 s interval): 370 commands for the 20 jobs, 18.5 per job, against
// a budget of 34 for a 2 s job: per job 3 script calls (2 coalesced writes, 1 terminal), each HGET +
// HSET + PEXPIRE + XADD, plus ZADD + ZREVRANGE, plus DEL + ZREMRANGEBYRANK for the 10 jobs trimmed by
// MaxCount. A write per event would cost over 500 commands per job.
func TestCommandBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	t.Parallel()
	b := setup(t, setupOpts{noStart: true, cfg: func(c *Config) { c.ProgressInterval = time.Second }})
	ctx := context.Background()
	if err := b.rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %v", err)
	}
	b.start()

	const jobs, updates = 20, 100
	step := 20 * time.Millisecond
	begin := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, jobs)
	ids := make([]string, jobs)
	for i := range jobs {
		ids[i] = streams.NewJobID(time.Now())
		wg.Go(func() {
			errs <- runWorker(b, ids[i], updates, step)
		})
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(func() []error {
		var all []error
		for err := range errs {
			all = append(all, err)
		}
		return all
	}()...); err != nil {
		t.Fatal(err)
	}
	run := time.Since(begin)
	b.consumerIdle(waitLimit) // every event acked: all written (no Redis reads while waiting)

	stats := commandStats(ctx, t, b.rdb)
	var total int64
	for name, n := range stats {
		if cmd, _, _ := strings.Cut(name, "|"); cmd == "info" || cmd == "config" {
			delete(stats, name) // the test's own
			continue
		}
		total += n
	}
	budget := jobs*perJobBudget(run, b.cfg.ProgressInterval) + 20 // + connection set-up and sweeps
	t.Logf("%d jobs x %d progress updates in %s: Redis ran %d commands (%.1f per job, budget %d per job); "+
		"the client sent %d; commandstats %v", jobs, updates, run.Round(time.Millisecond), total,
		float64(total)/jobs, perJobBudget(run, b.cfg.ProgressInterval), b.m.CommandsTotal(), stats)
	if total > budget {
		t.Errorf("Redis ran %d commands, over the budget of %d", total, budget)
	}
	if n := stats["hset"]; n > jobs*(int64(run/b.cfg.ProgressInterval)+3) {
		t.Errorf("%d HSETs: more than one write per job per interval", n)
	}

	// And the result is right: the newest MaxCount jobs completed with full progress.
	completed := b.members(b.k.completed)
	if len(completed) != b.cfg.MaxCount {
		t.Fatalf("completed holds %d jobs, want %d", len(completed), b.cfg.MaxCount)
	}
	for _, id := range completed {
		if h := b.hash(id); h["progress"] != "100" || h["returnvalue"] != `{"added":100}` {
			t.Errorf("job %s = %v", id, h)
		}
	}
	b.checkKeys()
}

// runWorker publishes one job's events as a worker emits them.
func runWorker(b *bundle, id string, updates int, step time.Duration) error {
	evs := []streams.Event{
		{Type: streams.EventSubmitted, JobID: id, Name: "budget"},
		{Type: streams.EventStarted, JobID: id, Attempt: 1},
	}
	for _, ev := range evs {
		if err := tryPublish(b.js, ev); err != nil {
			return err
		}
	}
	tick := time.NewTicker(step)
	defer tick.Stop()
	for i := 1; i <= updates; i++ {
		<-tick.C
		p := api.NewProgress(i, updates, "")
		if err := tryPublish(b.js, streams.Event{Type: streams.EventProgress, JobID: id, Attempt: 1, Progress: &p}); err != nil {
			return err
		}
	}
	p := api.NewProgress(updates, updates, "")
	return tryPublish(b.js, streams.Event{Type: streams.EventCompleted, JobID: id, Attempt: 1, Progress: &p,
		Result: json.RawMessage(`{"added":100}`)})
}
