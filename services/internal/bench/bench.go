// Package bench is jobwire-bench: load tools that drive a whole jobwire deployment on this machine and
// report what BENCHMARKS.md shows. Every service runs in its own process, as in production (a
// nats-server with a file store, `jobwire projector`, `jobwire gateway`, `jobwire worker`), started
// from this very binary (RunChildIfRequested) or from a jobwire binary given with Options.JobwireBin.
//
//   - relay: SSE streams over loopback from lean raw-TCP clients, progress published to JOB_EVENTS as
//     a worker would, with the legacy design (Redis polled every 500 ms per stream) as the baseline.
//   - jobs: submit→completed throughput and latency of noop jobs and playlist imports, with the same
//     no-op workload on BullMQ (Node, npm bullmq, the same redis-server) in the same run.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/jobwire/jobwire/api"
)

// Options configure a run. Zero fields take the defaults of a full run (SetDefaults); Quick and Smoke
// return smaller ones.
type Options struct {
	// Relay benchmark.
	Watchers       []int         // streams per configuration (default 100, 1000, 10000)
	Jobs           []int         // jobs the streams are spread over (default 1, 100)
	UpdatesPerSec  float64       // progress updates per job per second (default 10)
	LoadDuration   time.Duration // measured load window per configuration (default 10 s)
	Warmup         time.Duration // load before the window (default 1 s)
	Settle         time.Duration // pause before memory readings (default 1 s)
	Drain          time.Duration // wait after the window for in-flight events (default 1 s)
	IdleWait       time.Duration // longest wait for fasthttp's idle request workers to exit (default 21 s)
	LegacyWatchers []int         // legacy baseline watcher counts (default 100, 1000, 10000)
	LegacyDuration time.Duration // measured window of each legacy run (default 6 s)
	Floor          bool          // also run each configuration against the floor server (jobwire-bench: on unless --floor=false)
	ClientProcs    int           // watch-clients processes for the watchers (default 0: only when one process cannot hold them)

	// Jobs benchmark.
	Workers      []int         // worker process counts (default 1, 2)
	Concurrency  int           // jobs at once per worker process, and BullMQ's Worker concurrency (default 50)
	NoopJobs     int           // jobs of each max-throughput jobwire noop run (default 6000)
	ImportJobs   int           // jobs of the max-throughput import run (default 400)
	ImportTracks int           // tracks per playlist (default 100)
	RateDuration time.Duration // length of each fixed-rate run (default 10 s)
	Submitters   int           // concurrent HTTP submitters (default 64)
	JobTimeout   time.Duration // how long a run may take to finish its jobs (default 3 min; more for a large run, see jobTimeout)
	DirectSubmit bool          // also run the direct JetStream submit path and the preloaded backlog (jobwire-bench: on)
	BatchSize    int           // jobs per POST /v1/jobs/batch of the batch row and the backlog at scale (default 1000, at most api.MaxBatchJobs)
	JobsFloor    bool          // after the first preloaded-backlog row, drain the same backlog on bare NATS (jobwire-bench: on unless --jobs-floor=false)
	BacklogJobs  int           // jobs of the backlog at scale, submitted in batches with no worker running (default 0: skipped)
	Controls     bool          // after the first HTTP noop row, the same run with every job at priority high, then under a rate limit it never reaches: what the queue controls cost per job
	Traces       bool          // after the first HTTP noop row (and the controls rows), the same run with every process exporting traces over OTLP/HTTP: what tracing on costs per job

	// BullMQ.
	BullMQJobs    int    // jobs of the BullMQ addBulk and backlog runs (default 20000)
	BullMQ        bool   // run the BullMQ side (jobwire-bench: on unless --bullmq=false)
	BullMQDir     string // directory of bench.mjs (default: found next to the sources)
	NPMInstall    bool   // run `npm ci` there when node_modules is missing
	RequireBullMQ bool   // fail instead of skipping when BullMQ cannot run (JOBWIRE_REQUIRE_BULLMQ=1)

	// Environment.
	Pin        bool      // the gateway (and floor server) on one CPU, every other process on another (Linux, 2+ CPUs)
	JobwireBin string    // a jobwire binary to run the services with (default: this binary)
	TempDir    string    // parent of the run's data directory (default os.TempDir())
	KeepData   bool      // keep the data directory
	Log        io.Writer // progress lines (default stderr)
}

// SetDefaults fills zero fields with a full run's values.
func (o *Options) SetDefaults() {
	if len(o.Watchers) == 0 {
		o.Watchers = []int{100, 1000, 10000}
	}
	if len(o.Jobs) == 0 {
		o.Jobs = []int{1, 100}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.UpdatesPerSec == 0 {
		o.UpdatesPerSec = 10
	}
	def(&o.LoadDuration, 10*time.Second)
	def(&o.Warmup, time.Second)
	def(&o.Settle, time.Second)
	def(&o.Drain, time.Second)
	def(&o.IdleWait, 21*time.Second)
	def(&o.LegacyDuration, 6*time.Second)
	if o.LegacyWatchers == nil {
		o.LegacyWatchers = []int{100, 1000, 10000}
	}
	if len(o.Workers) == 0 {
		o.Workers = []int{1, 2}
	}
	if o.Concurrency == 0 {
		o.Concurrency = 50
	}
	if o.NoopJobs == 0 {
		o.NoopJobs = 6000
	}
	if o.BullMQJobs == 0 {
		o.BullMQJobs = 20000
	}
	if o.ImportJobs == 0 {
		o.ImportJobs = 400
	}
	if o.ImportTracks == 0 {
		o.ImportTracks = 100
	}
	def(&o.RateDuration, 10*time.Second)
	if o.Submitters == 0 {
		o.Submitters = 64
	}
	def(&o.JobTimeout, 3*time.Minute)
	if o.BatchSize == 0 {
		o.BatchSize = 1000
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if os.Getenv("JOBWIRE_REQUIRE_BULLMQ") == "1" {
		o.RequireBullMQ = true
	}
}

// Quick returns the options of a smoke run of about a minute: 1,000 watchers over 1 and 100 jobs, one
// worker process, short windows, no direct-submit runs; memory figures include fasthttp's idle workers.
func Quick() Options {
	return Options{Watchers: []int{1000}, Jobs: []int{1, 100}, LoadDuration: 3 * time.Second, IdleWait: 2 * time.Second,
		LegacyWatchers: []int{1000}, LegacyDuration: 2 * time.Second, Workers: []int{1}, NoopJobs: 2000, BullMQJobs: 5000,
		ImportJobs: 40, RateDuration: 3 * time.Second, BatchSize: 250, BullMQ: true, Floor: true, JobsFloor: true}
}

// Smoke returns the smallest configuration (the package test): 50 watchers of one job (and their
// floor row), 5 noop jobs (batches of 2) and 2 imports on one worker and the jobs floor of the 5, a
// backlog at scale of 10 jobs, the controls rows, the traced row, 5 BullMQ jobs.
func Smoke() Options {
	return Options{Watchers: []int{50}, Jobs: []int{1}, LoadDuration: time.Second, Warmup: 500 * time.Millisecond,
		Settle: 500 * time.Millisecond, Drain: 500 * time.Millisecond, IdleWait: time.Second, LegacyWatchers: []int{50}, LegacyDuration: time.Second,
		Workers: []int{1}, Concurrency: 8, NoopJobs: 5, BullMQJobs: 5, ImportJobs: 2, ImportTracks: 10, RateDuration: time.Second,
		Submitters: 4, JobTimeout: time.Minute, BatchSize: 2, BacklogJobs: 10, BullMQ: true, DirectSubmit: true, Floor: true, JobsFloor: true, Controls: true, Traces: true}
}

// jobTimeout is how long a run of n jobs may take to finish them: JobTimeout, or for a large backlog 5
// ms a job (200 jobs/s: a fifth of what one worker drains on 2 cores, so a million jobs get 83 min).
func (o Options) jobTimeout(n int) time.Duration {
	return max(o.JobTimeout, time.Duration(n)*5*time.Millisecond)
}

func (o Options) logf(format string, args ...any) {
	fmt.Fprintf(o.Log, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// Machine describes where a run happened.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go"`
	Kernel    string `json:"kernel"`
	NoFile    uint64 `json:"rlimitNofile"`
	Load      string `json:"loadavgAtStart"`
	Start     string `json:"start"`
}

func describeMachine(nofile uint64) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), NoFile: nofile, Start: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

// Report is everything a run measured.
type Report struct {
	Machine Machine        `json:"machine"`
	Pin     Pinning        `json:"pin"`
	Relay   []RelayResult  `json:"relay,omitempty"`
	Legacy  []LegacyResult `json:"legacy,omitempty"`
	Jobs    *JobsReport    `json:"jobs,omitempty"`
	Skipped []string       `json:"skipped,omitempty"`
}

// JobsReport is the jobs benchmark.
type JobsReport struct {
	Throughput []Throughput `json:"throughput"`
	Rates      []Rate       `json:"rates"`
	BullMQ     []BullMQRun  `json:"bullmq,omitempty"`
	// Floor is the first preloaded-backlog row's drain on bare NATS (JobsFloorMain).
	Floor *JobsFloor `json:"floor,omitempty"`
	// Backlog is the backlog at scale (Options.BacklogJobs).
	Backlog *Backlog `json:"backlog,omitempty"`
}

// Run runs the relay benchmark (relay), the jobs benchmark (jobs), or both, on one stack.
func Run(ctx context.Context, o Options, relay, jobs bool) (*Report, error) {
	o.SetDefaults()
	nofile := raiseNoFile()
	rep := &Report{Machine: describeMachine(nofile)}
	pin, err := setupPin(o.Pin)
	if err != nil {
		return rep, err
	}
	rep.Pin = pin
	s, err := startStack(ctx, o, pin)
	if err != nil {
		return rep, err
	}
	s.nofile = nofile
	defer s.close()
	if relay {
		if err := runRelaySuite(ctx, s, o, rep); err != nil {
			return rep, err
		}
	}
	if jobs {
		if err := runJobsSuite(ctx, s, o, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func runRelaySuite(ctx context.Context, s *stack, o Options, rep *Report) error {
	for _, w := range o.Watchers {
		for _, j := range o.Jobs {
			if w <= 0 || j <= 0 {
				return fmt.Errorf("watchers and jobs must be positive, got %d and %d", w, j)
			}
			r, err := runRelay(ctx, s, o, w, j)
			if err != nil {
				return fmt.Errorf("relay %d watchers, %d jobs: %w", w, j, err)
			}
			if o.Floor {
				f, err := runFloor(ctx, o, s.pin, r.Watchers, j, r.ClientProcs)
				if err != nil {
					return fmt.Errorf("floor %d watchers, %d jobs: %w", r.Watchers, j, err)
				}
				r.Floor, r.VsFloor = &f, floorRatios(r, f)
			}
			rep.Relay = append(rep.Relay, r)
		}
	}
	if s.rdb == nil {
		rep.Skipped = append(rep.Skipped, "legacy baseline and Redis command checks: redis-server is not installed")
		return nil
	}
	for _, w := range o.LegacyWatchers {
		if w <= 0 { // --legacy-watchers 0: no baseline
			continue
		}
		r, err := runLegacy(ctx, s, o, w)
		if err != nil {
			return fmt.Errorf("legacy %d watchers: %w", w, err)
		}
		rep.Legacy = append(rep.Legacy, r)
	}
	return nil
}

func runJobsSuite(ctx context.Context, s *stack, o Options, rep *Report) error {
	jr := &JobsReport{}
	rep.Jobs = jr
	if o.BatchSize < 1 || o.BatchSize > api.MaxBatchJobs {
		return fmt.Errorf("batch size must be 1 to %d, got %d", api.MaxBatchJobs, o.BatchSize)
	}
	if o.JobsFloor && !o.DirectSubmit {
		rep.Skipped = append(rep.Skipped, "jobs floor: it copies the preloaded-backlog row, which --no-direct skips")
	}
	if err := s.startGateway(ctx, jobsGatewayStreams); err != nil {
		return err
	}
	tr, err := startTracker(ctx, s.js)
	if err != nil {
		return err
	}
	defer tr.Stop()
	b := newJobsBench(s, o, tr)

	// BullMQ first: its max rate is the number to beat.
	dir := bullmqDir(o.BullMQDir)
	bull := o.BullMQ
	if bull {
		if why := bullmqReady(ctx, s, dir, o.NPMInstall, o.logf); why != "" {
			if o.RequireBullMQ {
				return fmt.Errorf("BullMQ side cannot run: %s (JOBWIRE_REQUIRE_BULLMQ=1)", why)
			}
			rep.Skipped = append(rep.Skipped, "BullMQ: "+why)
			o.logf("bullmq: skipped: %s", why)
			bull = false
		}
	}
	conc := fmt.Sprint(o.Concurrency)
	var bullMax float64
	if bull {
		for _, mode := range []string{"throughput", "drain"} {
			r, err := runBullMQ(ctx, s, dir, map[string]string{"MODE": mode, "JOBS": fmt.Sprint(o.BullMQJobs), "CONCURRENCY": conc}, o.logf)
			if err != nil {
				return err
			}
			jr.BullMQ = append(jr.BullMQ, r)
			if mode == "throughput" {
				bullMax = r.JobsPerSec
			}
		}
	}

	var jwRate float64
	for _, workers := range o.Workers {
		if o.DirectSubmit {
			// Preloaded backlog: queue every job, then start the workers (also gives JOBS bytes per job).
			r, err := b.throughput(ctx, KindNoop, SubmitBacklog, workers, o.NoopJobs)
			if err != nil {
				return err
			}
			jr.Throughput = append(jr.Throughput, r)
			if o.JobsFloor && jr.Floor == nil {
				f, err := b.floor(ctx, r)
				if err != nil {
					return fmt.Errorf("jobs floor: %w", err)
				}
				jr.Floor = &f
			}
		} else if err := s.startWorkers(ctx, workers, o.Concurrency); err != nil {
			return err
		}
		best, err := b.throughput(ctx, KindNoop, SubmitHTTP, workers, o.NoopJobs)
		if err != nil {
			return err
		}
		jr.Throughput = append(jr.Throughput, best)
		if o.Controls && workers == o.Workers[0] {
			rows, err := b.controls(ctx, workers, o.NoopJobs)
			if err != nil {
				return fmt.Errorf("controls: %w", err)
			}
			jr.Throughput = append(jr.Throughput, rows...)
		}
		if o.Traces && workers == o.Workers[0] {
			row, err := b.traced(ctx, workers, o.NoopJobs)
			if err != nil {
				return fmt.Errorf("traces: %w", err)
			}
			jr.Throughput = append(jr.Throughput, row)
		}
		batch, err := b.throughput(ctx, KindNoop, SubmitBatch, workers, o.NoopJobs)
		if err != nil {
			return err
		}
		jr.Throughput = append(jr.Throughput, batch)
		if o.DirectSubmit {
			r, err := b.throughput(ctx, KindNoop, SubmitJS, workers, o.NoopJobs)
			if err != nil {
				return err
			}
			jr.Throughput = append(jr.Throughput, r)
		}
		half := best.JobsPerSec / 2
		if workers == o.Workers[0] {
			jwRate = half
		}
		rr, err := b.rate(ctx, KindNoop, SubmitHTTP, workers, half, o.RateDuration)
		if err != nil {
			return err
		}
		jr.Rates = append(jr.Rates, rr)
		imp, err := b.throughput(ctx, KindImport, SubmitHTTP, workers, o.ImportJobs)
		if err != nil {
			return err
		}
		jr.Throughput = append(jr.Throughput, imp)
		ir, err := b.rate(ctx, KindImport, SubmitHTTP, workers, imp.JobsPerSec/2, o.RateDuration)
		if err != nil {
			return err
		}
		jr.Rates = append(jr.Rates, ir)
		s.stopWorkers()
	}

	if bull {
		rates := []float64{bullMax / 2}
		if jwRate > 0 && (jwRate < bullMax/2*0.8 || jwRate > bullMax/2*1.25) {
			rates = append(rates, jwRate) // the same rate as jobwire's first fixed-rate run
		}
		for _, r := range rates {
			run, err := runBullMQ(ctx, s, dir, map[string]string{"MODE": "rate", "RATE": fmt.Sprintf("%.0f", max(r, 1)),
				"DURATION_MS": fmt.Sprint(o.RateDuration.Milliseconds()), "CONCURRENCY": conc}, o.logf)
			if err != nil {
				return err
			}
			jr.BullMQ = append(jr.BullMQ, run)
		}
	}

	if o.BacklogJobs > 0 {
		bl, err := b.backlog(ctx, o.Workers[0], o.BacklogJobs)
		if err != nil {
			return err
		}
		jr.Backlog = &bl
	}
	return nil
}
