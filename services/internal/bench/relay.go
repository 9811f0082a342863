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
	res = RelayResult{Watchers: watchers, Jobs: jobs, UpdatesPerSec: o.UpdatesPerSec}
	o.logf("relay: %d watchers over %d jobs", watchers, jobs)
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
	owner, _ := streams.OwnerToken(relayUser)
	ids, err := createActiveJobs(ctx, s.js, owner, jobs)
	if err != nil {
		return res, err
	}

	// Before: the gateway has loaded the bucket and served nothing but /readyz and /metrics.
	time.Sleep(o.Settle)
	before, err := s.gatewayMetrics(ctx)
	if err != nil {
		return res, err
	}
	res.RSSBefore, _ = rssOf(s.gateway.Pid())
	res.GoroutinesBefore = int(before["go_goroutines"])
	res.ConsumersBefore, _ = s.consumers(ctx)

	// Open the streams, a few dozen at a time, and wait for each one's first state.
	u, _ := url.Parse(s.gatewayURL)
	token := s.token(relayUser)
	reqs := make([][]byte, jobs)
	for j, id := range ids {
		reqs[j] = watchRequest(u.Host, id, token)
	}
	win := &window{}
	clients := make([]*watcher, watchers)
	cctx, cancelClients := context.WithCancel(ctx)
	defer cancelClients()
	var (
		wg      sync.WaitGroup
		readyWG sync.WaitGroup
		mu      sync.Mutex
		sem     = make(chan struct{}, 64)
	)
	start := time.Now()
	readyWG.Add(watchers)
	for i := range watchers {
		w := &watcher{lat: make([]uint32, 0, int(o.UpdatesPerSec*o.LoadDuration.Seconds())+8)}
		clients[i] = w
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(cctx, u.Host, reqs[i%jobs], win, func(err error) {
				<-sem
				if err != nil {
					mu.Lock()
					res.ConnectErrors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
					mu.Unlock()
				}
				readyWG.Done()
			})
		}()
	}
	readyWG.Wait()
	res.ConnectSecs = time.Since(start).Seconds()
	res.Connected = watchers - res.ConnectErrors
	if res.ConnectErrors > 0 {
		o.logf("relay: %d of %d streams failed to open, first: %s", res.ConnectErrors, watchers, res.FirstError)
	}

	// Idle: every stream open, nothing changing. fasthttp keeps the worker goroutines that served the
	// requests (at most as many as were in flight: 64 here) for MaxIdleWorkerDuration (10 s) before
	// its cleaner ends them, so wait up to IdleWait for them to go before reading goroutines and memory.
	time.Sleep(o.Settle)
	opened, err := s.gatewayMetrics(ctx)
	if err != nil {
		return res, err
	}
	res.GoroutinesOpened = int(opened["go_goroutines"])
	idle := opened
	for waited := time.Duration(0); waited < o.IdleWait && int(idle["go_goroutines"]) > res.GoroutinesBefore+2; waited += 500 * time.Millisecond {
		time.Sleep(500 * time.Millisecond)
		if idle, err = s.gatewayMetrics(ctx); err != nil {
			return res, err
		}
	}
	res.RSSIdle, _ = rssOf(s.gateway.Pid())
	res.GoroutinesIdle = int(idle["go_goroutines"])
	res.ConsumersIdle, _ = s.consumers(ctx)
	if res.Connected > 0 {
		res.RSSPerStream = float64(res.RSSIdle-res.RSSBefore) / float64(res.Connected)
		res.StackPerStream = (idle["go_memstats_stack_inuse_bytes"] - before["go_memstats_stack_inuse_bytes"]) / float64(res.Connected)
		res.HeapPerStream = (idle["go_memstats_heap_inuse_bytes"] - before["go_memstats_heap_inuse_bytes"]) / float64(res.Connected)
		res.GoroutinesPerStr = float64(res.GoroutinesIdle-res.GoroutinesBefore) / float64(res.Connected)
	}

	// Load: every job gets UpdatesPerSec progress events, published as a worker would.
	cpu0 := [4]float64{cpuSeconds(s.gateway.Pid()), cpuSeconds(s.projector.Pid()), cpuSeconds(s.nats.Pid()), selfCPUSeconds()}
	pubCtx, stopPub := context.WithCancel(ctx)
	perJob := make([]int, jobs)
	var pubWG sync.WaitGroup
	loadStart := time.Now()
	win.start.Store(loadStart.Add(o.Warmup).UnixNano())
	for j, id := range ids {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			perJob[j] = publishProgress(pubCtx, s.js, owner, id, o.UpdatesPerSec, time.Duration(j)*time.Second/time.Duration(max(jobs, 1))/time.Duration(max(o.UpdatesPerSec, 1)), win)
		}()
	}
	time.Sleep(o.Warmup + o.LoadDuration)
	win.end.Store(time.Now().UnixNano())
	mid, _ := s.gatewayMetrics(ctx)
	res.RSSLoad, _ = rssOf(s.gateway.Pid())
	res.ConsumersLoad, _ = s.consumers(ctx)
	stopPub()
	pubWG.Wait()
	time.Sleep(o.Drain) // let the last events of the window arrive
	elapsed := time.Since(loadStart).Seconds()
	cpu1 := [4]float64{cpuSeconds(s.gateway.Pid()), cpuSeconds(s.projector.Pid()), cpuSeconds(s.nats.Pid()), selfCPUSeconds()}
	res.GatewayCPU, res.ProjectorCPU, res.NATSCPU, res.BenchCPU = (cpu1[0]-cpu0[0])/elapsed, (cpu1[1]-cpu0[1])/elapsed, (cpu1[2]-cpu0[2])/elapsed, (cpu1[3]-cpu0[3])/elapsed
	res.Seconds = float64(win.end.Load()-win.start.Load()) / 1e9
	for i := range watchers {
		res.Expected += perJob[i%jobs]
	}
	for _, n := range perJob {
		res.Published += n
	}
	if mid != nil {
		res.Coalesced = mid["jobwire_sse_events_coalesced_total"] - idle["jobwire_sse_events_coalesced_total"]
	}

	// End: complete the jobs; every job stream ends after its terminal state.
	if err := completeJobs(ctx, s.js, owner, ids); err != nil {
		return res, err
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		o.logf("relay: streams still open 30s after their jobs completed; closing them")
		cancelClients()
		<-done
	}
	lat := make([][]uint32, 0, watchers)
	for _, w := range clients {
		res.Delivered += w.events
		lat = append(lat, w.lat)
		if w.ended {
			res.StreamsEnded++
		}
	}
	res.EventsPerSec = float64(res.Delivered) / res.Seconds
	res.Latency = quantilesMicros(lat...)
	clients = nil

	// After: the gateway released every stream (invariant 3).
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, err := s.gatewayMetrics(ctx)
		if err == nil {
			res.OpenAfter = after["jobwire_sse_streams_open"]
			res.GoroutinesAfter = int(after["go_goroutines"])
		}
		if (res.OpenAfter == 0 && res.GoroutinesAfter <= res.GoroutinesBefore+2) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stopGateway()
	if redisBefore != nil {
		redisAfter, err := s.redisCommands(ctx)
		if err != nil {
			return res, err
		}
		res.RedisCommands, res.RedisChecked = commandDelta(redisBefore, redisAfter), true
	}
	o.logf("relay: %d watchers/%d jobs: %.0f events/s (expected %.0f), latency p50 %.2f ms p99 %.2f ms max %.1f ms, %.0f B RSS/stream, %.3f goroutines/stream",
		watchers, jobs, res.EventsPerSec, float64(res.Expected)/res.Seconds, res.Latency.P50, res.Latency.P99, res.Latency.Max, res.RSSPerStream, res.GoroutinesPerStr)
	return res, nil
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
