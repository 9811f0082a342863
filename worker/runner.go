package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// runner takes the jobs of one type from its durable consumer.
type runner struct {
	w    *Worker
	def  *definition
	opts TypeOptions
	log  *slog.Logger

	ctl      *control // paused, rate limit: what operators set
	levels   [len(streams.Priorities)]*level
	round    int            // fetch rounds so far (fetchOrder)
	wake     chan struct{}  // starts the next fetch round (nudge)
	polls    sync.WaitGroup // long polls waiting on the server
	slots    chan struct{}
	jobs     chan jetstream.Msg // to an idle job goroutine (dispatch)
	running  sync.WaitGroup
	loopCtx  context.Context    // ends when the worker stops fetching
	cancel   context.CancelFunc // stops fetching
	loopDone chan struct{}
}

// consumerConfig is the durable pull consumer of a job type's jobs at priority p. Every worker of the
// type shares it: MaxAckPending is the type's cluster-wide in-flight cap (per priority level).
func consumerConfig(name string, p api.Priority, o TypeOptions) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       streams.WorkerConsumerAt(name, p),
		Description:   "jobwire workers of " + name,
		FilterSubject: streams.QueueSubjectAt(name, p),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		// Attempts are counted by the worker (NumDelivered), which ends a job that crashed its worker
		// on every attempt; the server never parks a message on its own.
		MaxDeliver:    -1,
		MaxAckPending: o.MaxInFlight,
	}
}

func (r *runner) start(ctx context.Context) error {
	for i, p := range streams.Priorities {
		cons, err := r.w.js.CreateOrUpdateConsumer(ctx, streams.StreamJobs, consumerConfig(r.def.name, p, r.opts))
		if err != nil {
			return fmt.Errorf("worker: ensure consumer %s: %w", streams.WorkerConsumerAt(r.def.name, p), err)
		}
		r.levels[i] = &level{priority: p, cons: cons}
	}
	r.ctl = newControl(r.log, r.w.metrics.paused.WithLabelValues(r.def.name))
	if err := r.ctl.watch(ctx, r.w.registry.kv, r.def.name); err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	r.loopCtx, r.cancel, r.loopDone = loopCtx, cancel, make(chan struct{})
	r.slots = make(chan struct{}, r.opts.Concurrency)
	r.jobs = make(chan jetstream.Msg)
	r.wake = make(chan struct{}, 1)
	go r.fetchLoop(loopCtx)
	r.log.Info("serving job type", "consumer", streams.WorkerConsumer(r.def.name), "concurrency", r.opts.Concurrency)
	return nil
}

// stopFetching ends the fetch loop and waits for it; running jobs go on. Safe before start.
func (r *runner) stopFetching() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.loopDone
	r.ctl.stop()
}

// dispatch runs a job in hand (its slot taken) on an idle job goroutine, or on a new one: a goroutine
// serves job after job until the fetch loop ends, so a job costs no goroutine start and no stack
// growth. There are at most Concurrency of them, one per slot.
func (r *runner) dispatch(msg jetstream.Msg) {
	r.running.Add(1)
	select {
	case r.jobs <- msg:
	default:
		go r.serve(msg)
	}
}

// serve runs msg, then every job dispatched to it, until the fetch loop ends.
func (r *runner) serve(msg jetstream.Msg) {
	for ok := true; ok; msg, ok = <-r.jobs {
		r.runJob(msg)
	}
}

func (r *runner) runJob(msg jetstream.Msg) {
	defer r.running.Done()
	defer r.nudge()
	defer func() { <-r.slots }()
	r.process(msg)
}

// takeSlots waits for one free slot, then takes every other free one; 0 when ctx ended first.
func (r *runner) takeSlots(ctx context.Context) int {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	free := 1
	for free < cap(r.slots) {
		select {
		case r.slots <- struct{}{}:
			free++
		default:
			return free
		}
	}
	return free
}

func (r *runner) releaseSlots(n int) {
	for range n {
		<-r.slots
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// backoff is the pause before the attempt after attempt: BackoffBase doubled per attempt, at most
// BackoffMax, with full jitter so retries of many failed jobs do not arrive together.
func (r *runner) backoff(attempt int) time.Duration {
	d := r.opts.BackoffBase << min(attempt-1, 20)
	if d <= 0 || d > r.opts.BackoffMax {
		d = r.opts.BackoffMax
	}
	return d/2 + rand.N(d/2+1)
}
