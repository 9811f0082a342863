package worker

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
)

// A job type's jobs wait on three consumers, one per priority level (streams.Priorities). The fetch
// loop works in rounds: a round takes every free slot, fills them from the levels in the round's order
// (fetchOrder) with what is waiting now (no wait on the server), and leaves one long poll of a single
// job on each level that has none yet, for as long as slots remain (normal first, so a worker of one
// slot waits on normal). A round starts whenever a job ends or a long poll comes back, so a poll that
// brings the first job of a burst is followed at once by a round that fetches the rest.

// level is one priority level's consumer, as one worker sees it.
type level struct {
	priority api.Priority
	cons     jetstream.Consumer
	// emptyAt (Unix nanoseconds) is when this worker last found the level empty; it is not asked again
	// without waiting for probeEvery, outside fair rounds: a long poll waits on it instead.
	emptyAt atomic.Int64
	// polling is set while a long poll waits on the level.
	polling atomic.Bool
}

const (
	// fetchWait is how long one pull waits on the server for jobs. A pause stops the next pull at once;
	// one already waiting may still bring a job for up to fetchWait.
	fetchWait = time.Second
	// probeEvery is how long a level found empty is not asked again for what is waiting.
	probeEvery = 100 * time.Millisecond
	// fairEvery is the anti-starvation rule: of every fairEvery rounds, one takes normal jobs first and
	// one takes low jobs first; the others take the highest level with jobs first.
	fairEvery = 10
)

// pollOrder is the order in which idle levels get a long poll: normal first.
var pollOrder = [3]int{1, 0, 2}

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
	defer r.polls.Wait() // before r.jobs closes: a poll may still dispatch
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
		free -= r.fetchWaiting(ctx, free)
		free -= r.pollIdle(ctx, free)
		r.releaseSlots(free)
		select {
		case <-r.wake:
		case <-ctx.Done():
		}
	}
}

// nudge starts the next round of the fetch loop: a slot is free, or a long poll came back.
func (r *runner) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
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
		if l.polling.Load() || !fair && now.Sub(time.Unix(0, l.emptyAt.Load())) < probeEvery {
			continue
		}
		n := r.fetch(ctx, l, free-got, true)
		if n == 0 {
			l.emptyAt.Store(now.UnixNano())
		}
		got += n
	}
	return got
}

// pollIdle starts a long poll of one job, holding one of the free slots, on each level that has none
// (pollOrder) while slots remain, and returns how many slots it took.
func (r *runner) pollIdle(ctx context.Context, free int) int {
	took := 0
	for _, i := range pollOrder {
		l := r.levels[i]
		if took == free || l.polling.Load() {
			continue
		}
		took++
		l.polling.Store(true)
		r.polls.Go(func() {
			defer r.nudge()
			defer l.polling.Store(false)
			if r.fetch(ctx, l, 1, false) == 0 {
				l.emptyAt.Store(time.Now().UnixNano())
				r.releaseSlots(1)
			}
		})
	}
	return took
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
