package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
)

// A job type's jobs wait on three consumers, one per priority level (streams.Priorities). In each
// round, the fetch loop takes as many free slots as it can and fills them from the levels in the
// round's order (fetchOrder), asking each only for what is waiting (no wait on the server); when no
// level has a job, it waits on all of them at once for up to fetchWait.

// level is one priority level's consumer, as one worker sees it.
type level struct {
	priority api.Priority
	cons     jetstream.Consumer
	// emptyAt is when this worker last found the level empty; a level other than normal is asked
	// again only after probeEvery, so a type whose jobs are all normal costs no more requests.
	emptyAt time.Time
}

const (
	// fetchWait is how long one pull waits on the server for jobs. A pause stops the next pull at once;
	// one already waiting may still bring jobs for up to fetchWait.
	fetchWait = time.Second
	// probeEvery is how long a level other than normal that was found empty is not asked again while
	// the others keep the worker busy: a high job waits at most this long behind a backlog.
	probeEvery = 100 * time.Millisecond
	// fairEvery is the anti-starvation rule: of every fairEvery rounds, one takes normal jobs first and
	// one takes low jobs first; the others take the highest level with jobs first.
	fairEvery = 10
)

// fetchOrder is the order of the levels in round n: high, normal, low, except in the two fair rounds
// of every fairEvery.
func fetchOrder(n int) (order [3]int, fair bool) {
	switch n % fairEvery {
	case fairEvery/2 - 1:
		return [3]int{1, 0, 2}, true // normal first
	case fairEvery - 1:
		return [3]int{2, 0, 1}, true // low first
	}
	return [3]int{0, 1, 2}, false
}

// fetchLoop asks the server for exactly as many jobs as there are free slots, so no job waits in a
// local buffer while its lease runs, and asks nothing while the type is paused.
func (r *runner) fetchLoop(ctx context.Context) {
	defer close(r.loopDone)
	defer close(r.jobs)
	for ctx.Err() == nil {
		if !r.ctl.waitRunning(ctx) {
			return
		}
		free := r.takeSlots(ctx)
		if free == 0 {
			return
		}
		if e, _ := r.ctl.current(); e.Paused { // paused while waiting for a slot
			r.releaseSlots(free)
			continue
		}
		got := r.fetchWaiting(ctx, free)
		if got == 0 {
			got = r.waitForJobs(ctx, free)
		}
		r.releaseSlots(free - got)
	}
}

// fetchWaiting fills up to free slots with the jobs waiting now, level by level in this round's order,
// and returns how many it took.
func (r *runner) fetchWaiting(ctx context.Context, free int) int {
	order, fair := fetchOrder(r.round)
	r.round++
	got := 0
	now := time.Now()
	for _, i := range order {
		l := r.levels[i]
		if got == free {
			break
		}
		if l.priority != "" && !fair && now.Sub(l.emptyAt) < probeEvery {
			continue
		}
		n := r.fetch(ctx, l, free-got, true)
		if n == 0 {
			l.emptyAt = now
		}
		got += n
	}
	return got
}

// waitForJobs waits up to fetchWait for jobs on every level at once, the free slots shared among them
// (normal gets all but one for each other level; with one free slot only normal is waited on), and
// returns how many it took.
func (r *runner) waitForJobs(ctx context.Context, free int) int {
	shares := [3]int{0, free, 0}
	for _, i := range []int{0, 2} {
		if shares[1] > 1 {
			shares[i], shares[1] = 1, shares[1]-1
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := 0
	for i, n := range shares {
		if n == 0 {
			continue
		}
		wg.Go(func() {
			k := r.fetch(ctx, r.levels[i], n, false)
			mu.Lock()
			got += k
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// fetch pulls up to n jobs from l, without waiting on the server when now is set, dispatches them and
// returns how many it dispatched.
func (r *runner) fetch(ctx context.Context, l *level, n int, now bool) int {
	var batch jetstream.MessageBatch
	var err error
	if now {
		batch, err = l.cons.FetchNoWait(n)
	} else {
		fetchCtx, cancel := context.WithTimeout(ctx, fetchWait)
		defer cancel()
		batch, err = l.cons.Fetch(n, jetstream.FetchContext(fetchCtx))
	}
	got := 0
	if err == nil {
		for msg := range batch.Messages() {
			got++
			r.dispatch(msg)
		}
		err = batch.Error()
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		r.log.Warn("fetch jobs", "priority", string(l.priority), "err", err)
		sleepCtx(ctx, 250*time.Millisecond)
	}
	return got
}
