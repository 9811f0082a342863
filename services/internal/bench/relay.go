package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/jobtypes"
	"github.com/jobwire/jobwire/streams"
)

// RelayResult is one configuration of the SSE relay benchmark: Watchers streams spread evenly over
// Jobs active jobs, each job getting UpdatesPerSec progress updates.
type RelayResult struct {
	Watchers      int     `json:"watchers"`
	Jobs          int     `json:"jobs"`
	UpdatesPerSec float64 `json:"updatesPerSecPerJob"`
	Connected     int     `json:"connected"`
	ConnectErrors int     `json:"connectErrors"`
	FirstError    string  `json:"firstError,omitempty"`
	ConnectSecs   float64 `json:"connectSeconds"`

	// WatchersRequested is the configuration's watcher count; Watchers is less when the gateway cannot
	// hold that many streams (its RLIMIT_NOFILE), and CappedBecause says why. ClientProcs is the
	// watch-clients processes that held the watchers (0: the bench process).
	WatchersRequested int    `json:"watchersRequested"`
	CappedBecause     string `json:"watchersCappedBecause,omitempty"`
	ClientProcs       int    `json:"clientProcs"`

	// Idle cost, measured with every stream open and nothing changing.
	RSSBefore        int64   `json:"rssBeforeBytes"`
	RSSIdle          int64   `json:"rssIdleBytes"`
	RSSPerStream     float64 `json:"rssPerStreamBytes"`
	HeapPerStream    float64 `json:"heapInusePerStreamBytes"`
	StackPerStream   float64 `json:"stackInusePerStreamBytes"`
	GoroutinesBefore int     `json:"goroutinesBefore"`
	GoroutinesOpened int     `json:"goroutinesJustOpened"` // with fasthttp's idle request workers
	GoroutinesIdle   int     `json:"goroutinesIdle"`
	GoroutinesPerStr float64 `json:"goroutinesPerStream"`

	// Load: progress updates for Seconds.
	Seconds         float64   `json:"seconds"`
	Published       int       `json:"published"`
	Expected        int       `json:"expectedDeliveries"`
	Delivered       int       `json:"delivered"`
	EventsPerSec    float64   `json:"deliveredPerSec"`
	Coalesced       float64   `json:"coalesced"`
	Latency         Quantiles `json:"latency"`
	RSSLoad         int64     `json:"rssLoadBytes"`
	GatewayCPU      float64   `json:"gatewayCpuCores"`
	ProjectorCPU    float64   `json:"projectorCpuCores"`
	NATSCPU         float64   `json:"natsCpuCores"`
	BenchCPU        float64   `json:"benchCpuCores"`
	GoroutinesAfter int       `json:"goroutinesAfterStreamsEnded"`
	OpenAfter       float64   `json:"streamsOpenAfter"`
	StreamsEnded    int       `json:"streamsEndedByServer"`
	// GatewayCPUPerDelivery is the gateway's CPU time inside the window per delivery there, in
	// microseconds (the floor row's cpuMicrosPerDelivery, measured the same way).
	GatewayCPUPerDelivery float64 `json:"gatewayCpuMicrosPerDelivery"`
	ClientCPU             float64 `json:"clientProcsCpuCores"` // watch-clients processes, beside benchCpuCores

	// Floor is the same configuration against the floor server, in the same run; VsFloor compares.
	Floor   *FloorResult `json:"floor,omitempty"`
	VsFloor *FloorRatios `json:"vsFloor,omitempty"`

	ConsumersBefore int   `json:"natsConsumersBefore"`
	ConsumersIdle   int   `json:"natsConsumersIdle"`
	ConsumersLoad   int   `json:"natsConsumersLoad"`
	RedisCommands   int64 `json:"redisCommands"`
	RedisChecked    bool  `json:"redisChecked"`
}

// relayUser owns the jobs of the relay benchmark; every watcher streams as this user, so the gateway
// runs with JOBWIRE_SSE_MAX_PER_USER raised to the number of watchers.
const relayUser = "bench-relay"

// runRelay measures one configuration against a fresh gateway process.
func runRelay(ctx context.Context, s *stack, o Options, watchers, jobs int) (res RelayResult, err error) {
	res = RelayResult{Watchers: watchers, WatchersRequested: watchers, Jobs: jobs, UpdatesPerSec: o.UpdatesPerSec}
	redisBefore, err := s.redisCommands(ctx)
	if err != nil {
		return res, err
	}
	if err := s.startGateway(ctx, watchers); err != nil {
		return res, err
	}
	defer func() {
		if s.gateway != nil {
			s.stopGateway()
		}
	}()
	if n, why := gatewayCapacity(s.gateway.Pid()); n > 0 && n < watchers {
		res.Watchers, res.CappedBecause = n, why
		o.logf("relay: %d watchers requested, running %d: %s", watchers, n, why)
	}
	watchers = res.Watchers
	res.ClientProcs = clientProcs(o, watchers, s.nofile)
	o.logf("relay: %d watchers over %d jobs (%s)", watchers, jobs, clientsWhere(res.ClientProcs))
	r := &relayRun{s: s, o: o, res: &res, win: &window{}}
	r.owner, _ = streams.OwnerToken(relayUser)
	defer func() {
		if r.fleet != nil {
			r.fleet.close()
		}
	}()
	if r.ids, err = createActiveJobs(ctx, s.js, r.owner, jobs); err != nil {
		return res, err
	}
	for _, phase := range []func(context.Context) error{r.measureBefore, r.open, r.measureIdle, r.load, r.end} {
		if err := phase(ctx); err != nil {
			return res, err
		}
	}
	r.measureRelease(ctx)
	s.stopGateway()
	if redisBefore != nil {
		redisAfter, err := s.redisCommands(ctx)
		if err != nil {
			return res, err
		}
		res.RedisCommands, res.RedisChecked = commandDelta(redisBefore, redisAfter), true
	}
	o.logf("relay: %d watchers/%d jobs: %.0f events/s (expected %.0f), latency p50 %.2f ms p99 %.2f ms max %.1f ms, %.0f B RSS/stream, %.3f goroutines/stream, %.2f µs gateway CPU/delivery",
		watchers, jobs, res.EventsPerSec, float64(res.Expected)/res.Seconds, res.Latency.P50, res.Latency.P99, res.Latency.Max, res.RSSPerStream, res.GoroutinesPerStr, res.GatewayCPUPerDelivery)
	return res, nil
}

// gatewayReserve is the descriptors a gateway needs beyond its streams and what it has open once
// ready: connections being accepted, /metrics scrapes, a NATS reconnect, log files.
const gatewayReserve = 64

// gatewayCapacity is how many streams the gateway process pid can hold, rounded down to a hundred
// from 1,000 up, and why; 0 when /proc does not tell.
func gatewayCapacity(pid int) (int, string) {
	n, limit, open, ok := streamHeadroom(pid, gatewayReserve)
	if !ok {
		return 0, ""
	}
	if n >= 1000 {
		n -= n % 100
	}
	return max(n, 1), fmt.Sprintf("the gateway is one process with RLIMIT_NOFILE %d: %d descriptors open when ready (listeners, NATS, logs) and %d kept for accepts, scrapes and reconnects leave room for %d streams",
		limit, open, gatewayReserve, n)
}

// clientsWhere says where a configuration's watchers run.
func clientsWhere(procs int) string {
	if procs == 0 {
		return "clients in the bench process"
	}
	return fmt.Sprintf("clients in %d watch-clients processes", procs)
}

// relayRun is one configuration of the relay benchmark while it runs, phase by phase.
type relayRun struct {
	s     *stack
	o     Options
	res   *RelayResult
	owner string
	ids   []string
	fleet fleet
	win   *window

	before, idle map[string]float64 // gateway metrics
	perJob       []int              // progress events published inside the window, by job
	// gatewayWindowCPU is the gateway's CPU seconds inside the window.
	gatewayWindowCPU float64
}

// measureBefore reads the gateway once it has loaded the bucket and served nothing but /readyz.
func (r *relayRun) measureBefore(ctx context.Context) (err error) {
	time.Sleep(r.o.Settle)
	if r.before, err = r.s.gatewayMetrics(ctx); err != nil {
		return err
	}
	r.res.RSSBefore, _ = rssOf(r.s.gateway.Pid())
	r.res.GoroutinesBefore = int(r.before["go_goroutines"])
	r.res.ConsumersBefore, _ = r.s.consumers(ctx)
	return nil
}

// open opens the streams, a few dozen at a time, and waits for each one's first state.
func (r *relayRun) open(ctx context.Context) error {
	u, _ := url.Parse(r.s.gatewayURL)
	token := r.s.token(relayUser)
	reqs := make([][]byte, len(r.ids))
	for j, id := range r.ids {
		reqs[j] = watchRequest(u.Host, id, token)
	}
	start := time.Now()
	var err error
	r.fleet, err = openFleet(ctx, r.o, clientSpec{Addr: u.Host, Requests: reqs, Watchers: r.res.Watchers}, r.res.ClientProcs, r.win)
	if err != nil {
		return err
	}
	cc, err := r.fleet.opened()
	if err != nil {
		return err
	}
	r.res.ConnectSecs = time.Since(start).Seconds()
	r.res.Connected, r.res.ConnectErrors, r.res.FirstError = cc.Connected, cc.Errors, cc.FirstError
	if cc.Errors > 0 {
		r.o.logf("relay: %d of %d streams failed to open, first: %s", cc.Errors, r.res.Watchers, cc.FirstError)
	}
	return nil
}

// measureIdle reads the gateway with every stream open and nothing changing. fasthttp keeps the worker
// goroutines that served the requests (at most as many as were in flight: 64 here) for
// MaxIdleWorkerDuration (10 s) before its cleaner ends them, so it waits up to IdleWait for them to go
// before reading goroutines and memory.
func (r *relayRun) measureIdle(ctx context.Context) error {
	res := r.res
	time.Sleep(r.o.Settle)
	opened, err := r.s.gatewayMetrics(ctx)
	if err != nil {
		return err
	}
	res.GoroutinesOpened = int(opened["go_goroutines"])
	idle := opened
	for waited := time.Duration(0); waited < r.o.IdleWait && int(idle["go_goroutines"]) > res.GoroutinesBefore+2; waited += 500 * time.Millisecond {
		time.Sleep(500 * time.Millisecond)
		if idle, err = r.s.gatewayMetrics(ctx); err != nil {
			return err
		}
	}
	r.idle = idle
	res.RSSIdle, _ = rssOf(r.s.gateway.Pid())
	res.GoroutinesIdle = int(idle["go_goroutines"])
	res.ConsumersIdle, _ = r.s.consumers(ctx)
	if res.Connected > 0 {
		n := float64(res.Connected)
		res.RSSPerStream = float64(res.RSSIdle-res.RSSBefore) / n
		res.StackPerStream = (idle["go_memstats_stack_inuse_bytes"] - r.before["go_memstats_stack_inuse_bytes"]) / n
		res.HeapPerStream = (idle["go_memstats_heap_inuse_bytes"] - r.before["go_memstats_heap_inuse_bytes"]) / n
		res.GoroutinesPerStr = float64(res.GoroutinesIdle-res.GoroutinesBefore) / n
	}
	return nil
}

// load publishes UpdatesPerSec progress events per job, as a worker would, through the warm-up and
// the window, then waits o.Drain for the last of them to arrive.
func (r *relayRun) load(ctx context.Context) error {
	s, o, res := r.s, r.o, r.res
	cpuNow := func() [5]float64 {
		return [5]float64{cpuSeconds(s.gateway.Pid()), cpuSeconds(s.projector.Pid()), cpuSeconds(s.nats.Pid()), selfCPUSeconds(), r.fleet.cpuSeconds()}
	}
	cpu0 := cpuNow()
	pubCtx, stopPub := context.WithCancel(ctx)
	jobs := len(r.ids)
	r.perJob = make([]int, jobs)
	var pubWG sync.WaitGroup
	loadStart := openWindow(o, r.win)
	if err := r.fleet.setWindow(r.win); err != nil {
		stopPub()
		return err
	}
	for j, id := range r.ids {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			offset := time.Duration(j) * time.Second / time.Duration(max(jobs, 1)) / time.Duration(max(o.UpdatesPerSec, 1))
			r.perJob[j] = publishProgress(pubCtx, s.js, r.owner, id, o.UpdatesPerSec, offset, r.win)
		}()
	}
	inWindow := cpuInWindow(s.gateway.Pid(), r.win)
	mid, _ := s.gatewayMetrics(ctx)
	res.RSSLoad, _ = rssOf(s.gateway.Pid())
	res.ConsumersLoad, _ = s.consumers(ctx)
	stopPub()
	pubWG.Wait()
	time.Sleep(o.Drain) // let the last events of the window arrive
	elapsed := time.Since(loadStart).Seconds()
	cpu1 := cpuNow()
	res.GatewayCPU, res.ProjectorCPU, res.NATSCPU = (cpu1[0]-cpu0[0])/elapsed, (cpu1[1]-cpu0[1])/elapsed, (cpu1[2]-cpu0[2])/elapsed
	res.BenchCPU, res.ClientCPU = (cpu1[3]-cpu0[3])/elapsed, (cpu1[4]-cpu0[4])/elapsed
	res.Seconds = r.win.seconds()
	res.Expected = expectedDeliveries(r.perJob, res.Watchers)
	for _, n := range r.perJob {
		res.Published += n
	}
	if mid != nil {
		res.Coalesced = mid["jobwire_sse_events_coalesced_total"] - r.idle["jobwire_sse_events_coalesced_total"]
	}
	r.gatewayWindowCPU = inWindow
	return nil
}

// end completes the jobs, after which the gateway ends every job stream, and collects what the
// watchers received.
func (r *relayRun) end(ctx context.Context) error {
	if err := completeJobs(ctx, r.s.js, r.owner, r.ids); err != nil {
		return err
	}
	tot, err := r.fleet.finish(30 * time.Second)
	if err != nil {
		return err
	}
	res := r.res
	res.Delivered, res.StreamsEnded = tot.Delivered, tot.Ended
	if res.StreamsEnded < res.Connected {
		r.o.logf("relay: %d of %d streams still open 30s after their jobs completed; closed them", res.Connected-res.StreamsEnded, res.Connected)
	}
	res.EventsPerSec = float64(res.Delivered) / res.Seconds
	res.Latency = quantilesMicros(tot.Lat...)
	if res.Delivered > 0 {
		res.GatewayCPUPerDelivery = r.gatewayWindowCPU / float64(res.Delivered) * 1e6
	}
	return nil
}

// measureRelease waits up to 10 s for the gateway to release every stream (invariant 3): open-stream
// gauge back to 0, goroutines back to their count before the streams.
func (r *relayRun) measureRelease(ctx context.Context) {
	res := r.res
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, err := r.s.gatewayMetrics(ctx)
		if err == nil {
			res.OpenAfter = after["jobwire_sse_streams_open"]
			res.GoroutinesAfter = int(after["go_goroutines"])
		}
		if (res.OpenAfter == 0 && res.GoroutinesAfter <= res.GoroutinesBefore+2) || time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createActiveJobs writes job.submitted and job.started events for n new noop jobs of owner straight
// to JOB_EVENTS (no JOBS message: no worker runs them; the bench plays the worker) and waits until the
// projector has made them active in JOB_STATE.
func createActiveJobs(ctx context.Context, js jetstream.JetStream, owner string, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = streams.NewJobID(time.Now())
		base := streams.Event{V: streams.EventVersion, JobID: ids[i], JobType: jobtypes.NoopType, Owner: owner}
		sub := base
		// No worker runs these jobs (the bench plays the worker): naming a queue sequence keeps the
		// projector from failing them as orphans.
		sub.Type, sub.At, sub.Name, sub.QueueSeq = streams.EventSubmitted, time.Now().UTC(), "relay bench", 1
		if err := publishEvent(ctx, js, sub, 0); err != nil {
			return nil, err
		}
		st := base
		st.Type, st.At, st.Attempt, st.Worker = streams.EventStarted, time.Now().UTC(), 1, "jobwire-bench"
		if err := publishEvent(ctx, js, st, 0); err != nil {
			return nil, err
		}
	}
	kv, err := js.KeyValue(ctx, streams.BucketState)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			e, err := kv.Get(ctx, streams.StateKey(owner, id))
			if err == nil {
				var st api.JobState
				if json.Unmarshal(e.Value(), &st) == nil && st.State == api.StateActive {
					break
				}
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("job %s not active in %s after 30s (projector running?): %v", id, streams.BucketState, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return ids, nil
}

// completeJobs ends the jobs (job.completed), which ends their streams.
func completeJobs(ctx context.Context, js jetstream.JetStream, owner string, ids []string) error {
	for _, id := range ids {
		ev := streams.Event{V: streams.EventVersion, Type: streams.EventCompleted, JobID: id, JobType: jobtypes.NoopType,
			Owner: owner, At: time.Now().UTC(), Attempt: 1, Result: json.RawMessage(`{}`)}
		if err := publishEvent(ctx, js, ev, 0); err != nil {
			return err
		}
	}
	return nil
}

// publishEvent stores ev synchronously with the Nats-Msg-Id a worker would use.
func publishEvent(ctx context.Context, js jetstream.JetStream, ev streams.Event, n int) error {
	m, err := ev.Msg()
	if err != nil {
		return err
	}
	if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(ev.MsgID(0, n))); err != nil {
		return fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return nil
}

// publishProgress publishes job.progress events for one job at perSec until ctx ends, after waiting
// offset (so jobs do not all publish at the same instant). Each event carries its publish time in
// progress.message ("t=<unix ns>"). It returns how many were published inside win.
func publishProgress(ctx context.Context, js jetstream.JetStream, owner, id string, perSec float64, offset time.Duration, win *window) int {
	select {
	case <-time.After(offset):
	case <-ctx.Done():
		return 0
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / perSec))
	defer t.Stop()
	counted := 0
	for n := 1; ; n++ {
		now := time.Now()
		ns := now.UnixNano()
		p := api.NewProgress(n, 1_000_000, "t="+strconv.FormatInt(ns, 10))
		ev := streams.Event{V: streams.EventVersion, Type: streams.EventProgress, JobID: id, JobType: jobtypes.NoopType,
			Owner: owner, At: now.UTC(), Attempt: 1, Progress: &p}
		if m, err := ev.Msg(); err == nil {
			if _, err := publishAsync(js, m, jetstream.WithMsgID(ev.MsgID(0, n))); err == nil && win.contains(ns) {
				counted++
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Second):
			}
			return counted
		}
	}
}
