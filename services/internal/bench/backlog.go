package bench

import (
	"context"
	"fmt"
	"time"
)

// Backlog is the backlog at scale: Jobs no-op jobs submitted through POST /v1/jobs/batch with no
// worker running; what NATS stores per queued job; how long a restarted gateway takes to be ready and
// a restarted projector to be ready and caught up over it; then its drain by Workers worker
// processes, with the RSS of the workers and the gateway sampled every second.
type Backlog struct {
	Jobs          int     `json:"jobs"`
	BatchSize     int     `json:"batchSize"`
	SubmitSeconds float64 `json:"submitSeconds"`
	SubmitPerSec  float64 `json:"submitPerSec"`
	// StoreBytes are the bytes stored per queued job per stream (JOBS, JOB_EVENTS, KV_JOB_STATE; stream
	// info once the projector has folded every submitted event).
	StoreBytes map[string]float64 `json:"storeBytesPerQueuedJob"`
	// GatewayReadySecs is from the new gateway process's start to its first 200 on GET /readyz;
	// ProjectorReadySecs from the new projector's start until it is ready and its durable consumer has
	// nothing pending or unacked.
	GatewayReadySecs   float64 `json:"gatewayReadySeconds"`
	ProjectorReadySecs float64 `json:"projectorCaughtUpSeconds"`
	Workers            int     `json:"workers"`
	Failed             int     `json:"failed"`
	// Seconds and JobsPerSec are the drain, from the first job done to the last.
	Seconds    float64 `json:"drainSeconds"`
	JobsPerSec float64 `json:"drainJobsPerSec"`
	// RSS is the resident set of the gateway and of each worker process (worker-1, ...) during the drain.
	RSS map[string]RSSSeries `json:"rssMiB"`
	CPU map[string]float64   `json:"cpuCores"`
}

// RSSSeries summarises a process's resident set sampled every second, in MiB.
type RSSSeries struct {
	Samples int     `json:"samples"`
	First   float64 `json:"first"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Last    float64 `json:"last"`
}

func (s RSSSeries) String() string {
	return fmt.Sprintf("%.1f → %.1f MiB (min %.1f, max %.1f)", s.First, s.Last, s.Min, s.Max)
}

func (s *RSSSeries) add(mib float64) {
	if s.Samples == 0 {
		s.First, s.Min, s.Max = mib, mib, mib
	}
	s.Samples++
	s.Min, s.Max, s.Last = min(s.Min, mib), max(s.Max, mib), mib
}

// backlog runs the backlog at scale of n jobs, drained by workers worker processes. No worker may be
// running.
func (b *jobsBench) backlog(ctx context.Context, workers, n int) (res Backlog, err error) {
	res = Backlog{Jobs: n, BatchSize: b.o.BatchSize, Workers: workers}
	b.o.logf("jobs: backlog at scale: %d jobs in batches of %d, no worker running", n, b.o.BatchSize)
	p0, err := b.s.streamStates(ctx)
	if err != nil {
		return res, err
	}
	base := b.tr.Count()
	start := time.Now()
	ids, _, err := b.submitAll(ctx, KindNoop, SubmitBatch, n)
	if err != nil {
		return res, err
	}
	res.SubmitSeconds = time.Since(start).Seconds()
	res.SubmitPerSec = float64(n) / res.SubmitSeconds
	if err := b.s.projectorCaughtUp(ctx, b.o.jobTimeout(n)); err != nil {
		return res, err
	}
	p1, err := b.s.streamStates(ctx)
	if err != nil {
		return res, err
	}
	res.StoreBytes = map[string]float64{}
	for _, name := range jobStreams {
		res.StoreBytes[name] = (float64(p1[name].Bytes) - float64(p0[name].Bytes)) / float64(n)
	}
	b.o.logf("jobs: backlog at scale: submitted at %.0f/s; stored per job: %s", res.SubmitPerSec, cpuCell(res.StoreBytes))
	if err := b.restarts(ctx, &res); err != nil {
		return res, err
	}

	if err := b.s.startWorkers(ctx, workers, b.o.Concurrency); err != nil {
		return res, err
	}
	defer b.s.stopWorkers()
	pids := map[string]int{"gateway": b.s.gateway.Pid()}
	for i, w := range b.s.workers {
		pids[fmt.Sprintf("worker-%d", i+1)] = w.Pid()
	}
	rss := sampleRSS(pids)
	cpu0, t0 := b.s.cpuSnapshot(), time.Now()
	err = b.tr.waitCount(base+n, b.o.jobTimeout(n))
	res.RSS, res.CPU = rss.stop(), cpuCores(cpu0, b.s.cpuSnapshot(), time.Since(t0))
	if err != nil {
		return res, fmt.Errorf("backlog at scale: %w", err)
	}
	var first, last time.Time
	for _, id := range ids {
		at, _, failed := b.tr.ended(id)
		if failed {
			res.Failed++
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	res.Seconds = last.Sub(first).Seconds()
	res.JobsPerSec = float64(n-1) / res.Seconds
	b.o.logf("jobs: backlog at scale, %d workers: drained at %.0f jobs/s, %d failed; RSS %v", workers, res.JobsPerSec, res.Failed, res.RSS)
	return res, nil
}

// restarts restarts the gateway and the projector over the backlog and times how long each takes to
// be ready (the projector: and caught up).
func (b *jobsBench) restarts(ctx context.Context, res *Backlog) error {
	b.s.stopGateway()
	t := time.Now()
	if err := b.s.startGateway(ctx, jobsGatewayStreams); err != nil {
		return err
	}
	res.GatewayReadySecs = time.Since(t).Seconds()
	b.s.stopProjector()
	t = time.Now()
	if err := b.s.startProjector(ctx); err != nil {
		return err
	}
	if err := b.s.projectorCaughtUp(ctx, b.o.jobTimeout(res.Jobs)); err != nil {
		return err
	}
	res.ProjectorReadySecs = time.Since(t).Seconds()
	b.o.logf("jobs: backlog at scale: gateway ready in %.2f s, projector caught up in %.2f s", res.GatewayReadySecs, res.ProjectorReadySecs)
	return nil
}

// rssSampler reads the resident set of named processes every second until stopped.
type rssSampler struct {
	quit chan struct{}
	out  chan map[string]RSSSeries
}

func sampleRSS(pids map[string]int) *rssSampler {
	r := &rssSampler{quit: make(chan struct{}), out: make(chan map[string]RSSSeries, 1)}
	go func() {
		series := map[string]RSSSeries{}
		sample := func() {
			for name, pid := range pids {
				if b, err := rssOf(pid); err == nil {
					s := series[name]
					s.add(float64(b) / (1 << 20))
					series[name] = s
				}
			}
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			sample()
			select {
			case <-t.C:
			case <-r.quit:
				sample()
				r.out <- series
				return
			}
		}
	}()
	return r
}

// stop takes a last sample and returns the series.
func (r *rssSampler) stop() map[string]RSSSeries {
	close(r.quit)
	return <-r.out
}
