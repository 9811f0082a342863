package mirror

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jobwire/jobwire/streams/streamstest"
)

func TestRetentionByCount(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: func(c *Config) { c.MaxCount = 3 }})

	var ids []string
	finished := map[string]bool{}
	for i := range 7 {
		id := b.finishedJob(fmt.Sprintf("list %d", i))
		ids = append(ids, id)
		finished[id] = true
		b.waitInSet(b.k.completed, id) // one by one, so finishedOn orders them
		b.checkTogether(finished)
	}
	if got, want := b.members(b.k.completed), ids[4:]; !slices.Equal(got, want) {
		t.Errorf("completed = %v, want the newest 3 %v", got, want)
	}
	for _, id := range ids[:4] {
		if h := b.hash(id); len(h) != 0 {
			t.Errorf("trimmed job %s still has a hash: %v", id, h)
		}
	}
	b.checkKeys()
}

func TestRetentionByAgeWithoutFurtherJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: func(c *Config) { c.MaxAge = 2 * time.Second }})

	finished := map[string]bool{}
	done := b.finishedJob("a")
	failed := b.newJob("b", true)
	b.fail(failed, "nope")
	finished[done], finished[failed] = true, true
	active := b.newJob("c", true)
	b.progress(active, 5, 10)
	b.waitInSet(b.k.completed, done)
	b.waitInSet(b.k.failed, failed)
	b.waitField(active, "progress", "50")
	start := time.Now()

	// Nothing else happens: the sweeper alone must expire both, set entry and hash together.
	streamstest.WaitFor(t, 10*time.Second, func() error {
		b.checkTogether(finished)
		if keys := b.allKeys(); len(keys) != 2 { // the active job's hash and the events stream
			return fmt.Errorf("keys %v, want only the active job and events", keys)
		}
		return nil
	})
	if age := time.Since(start); age < time.Second {
		t.Errorf("finished jobs expired after %s, before MaxAge", age)
	}
	if h := b.hash(active); h["progress"] != "50" {
		t.Errorf("active job touched by the sweeper: %v", h)
	}

	// An idle mirror sends Redis nothing: no polling sweeps once nothing is due. Proving that something
	// does not happen takes time, so this waits five ticks.
	before := b.m.CommandsTotal()
	time.Sleep(5 * b.cfg.ProgressInterval)
	if n := b.m.CommandsTotal() - before; n != 0 {
		t.Errorf("idle mirror sent %d Redis commands", n)
	}
}
