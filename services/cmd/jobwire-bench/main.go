// Command jobwire-bench drives a whole jobwire deployment on this machine and prints the tables of
// BENCHMARKS.md:
//
//	jobwire-bench relay --watchers 100,1000,10000 --jobs 1,100   # SSE relay vs the legacy Redis polling
//	jobwire-bench jobs                                           # throughput and latency vs BullMQ
//	jobwire-bench all [--quick]                                  # both (a full run takes under 10 minutes)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/services/internal/bench"
)

func main() {
	bench.RunChildIfRequested()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobwire-bench:", err)
		os.Exit(1)
	}
}

// flags are the command-line settings; zero values leave the options of the run (full or --quick).
type flags struct {
	quick, noBull, noDirect, npmInstall, keep bool
	floor, pin, jobsFloor, controls, traces   bool
	jsonOut, jobwire, bullDir                 string
	watchers, jobs, legacy, workers           []int
	duration, legacyDuration, rateDuration    time.Duration
	updates                                   float64
	concurrency, noopJobs, importJobs, tracks int
	bullJobs                                  int
	submitters, clientProcs                   int
	batchSize, backlogJobs                    int
}

func (f *flags) options(cmd *cobra.Command) bench.Options {
	o := bench.Options{BullMQ: true, DirectSubmit: true, Floor: true, JobsFloor: true}
	if f.quick {
		o = bench.Quick()
	}
	set := func(name string, apply func()) {
		if cmd.Flags().Changed(name) {
			apply()
		}
	}
	set("watchers", func() { o.Watchers = f.watchers })
	set("jobs", func() { o.Jobs = f.jobs })
	set("legacy-watchers", func() { o.LegacyWatchers = f.legacy })
	set("duration", func() { o.LoadDuration = f.duration })
	set("legacy-duration", func() { o.LegacyDuration = f.legacyDuration })
	set("updates", func() { o.UpdatesPerSec = f.updates })
	set("workers", func() { o.Workers = f.workers })
	set("concurrency", func() { o.Concurrency = f.concurrency })
	set("noop-jobs", func() { o.NoopJobs = f.noopJobs })
	set("bullmq-jobs", func() { o.BullMQJobs = f.bullJobs })
	set("import-jobs", func() { o.ImportJobs = f.importJobs })
	set("tracks", func() { o.ImportTracks = f.tracks })
	set("rate-duration", func() { o.RateDuration = f.rateDuration })
	set("submitters", func() { o.Submitters = f.submitters })
	set("floor", func() { o.Floor = f.floor })
	set("client-procs", func() { o.ClientProcs = f.clientProcs })
	set("batch-size", func() { o.BatchSize = f.batchSize })
	set("jobs-floor", func() { o.JobsFloor = f.jobsFloor })
	set("controls", func() { o.Controls = f.controls })
	set("traces", func() { o.Traces = f.traces })
	set("backlog-jobs", func() { o.BacklogJobs = f.backlogJobs })
	if f.noBull {
		o.BullMQ = false
	}
	if f.noDirect {
		o.DirectSubmit = false
	}
	o.NPMInstall, o.KeepData, o.JobwireBin, o.BullMQDir, o.Pin = f.npmInstall, f.keep, f.jobwire, f.bullDir, f.pin
	return o
}

func newRoot() *cobra.Command {
	f := &flags{}
	root := &cobra.Command{
		Use:           "jobwire-bench",
		Short:         "Benchmark jobwire's SSE relay and job throughput against the legacy Redis design and BullMQ",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	p := root.PersistentFlags()
	p.BoolVar(&f.quick, "quick", false, "a smoke run of about a minute (smaller counts, shorter windows)")
	p.StringVar(&f.jsonOut, "json", "", "also write the full report as JSON to this file")
	p.StringVar(&f.jobwire, "jobwire", "", "run the services from this jobwire binary (default: this binary runs them)")
	p.BoolVar(&f.keep, "keep-data", false, "keep the run's data directory (NATS store, redis)")
	p.BoolVar(&f.pin, "pin", false, "relay: the gateway and the floor server on CPU 1, every other process (nats, projector, the bench and its clients) on CPU 0: the second and first CPU this process may use (Linux, 2+ CPUs)")
	p.IntSliceVar(&f.watchers, "watchers", nil, "relay: streams per configuration (default 100,1000,10000)")
	p.IntSliceVar(&f.jobs, "jobs", nil, "relay: jobs the streams are spread over (default 1,100)")
	p.IntSliceVar(&f.legacy, "legacy-watchers", nil, "relay: watcher counts of the legacy Redis-polling baseline (default 100,1000,10000)")
	p.DurationVar(&f.duration, "duration", 0, "relay: measured load window per configuration (default 10s)")
	p.DurationVar(&f.legacyDuration, "legacy-duration", 0, "relay: measured window of each legacy run (default 6s)")
	p.Float64Var(&f.updates, "updates", 0, "relay: progress updates per job per second (default 10)")
	p.BoolVar(&f.floor, "floor", true, "relay: also run each configuration against the floor server (a minimal raw-TCP fan-out process) and report jobwire's ratios to it")
	p.IntVar(&f.clientProcs, "client-procs", 0, "relay: run the watchers in this many watch-clients processes, each dialling from its own 127.0.0.x (default: only when one process cannot hold them)")
	p.IntSliceVar(&f.workers, "workers", nil, "jobs: worker process counts (default 1,2)")
	p.IntVar(&f.concurrency, "concurrency", 0, "jobs: jobs at once per worker process and BullMQ Worker concurrency (default 50)")
	p.IntVar(&f.noopJobs, "noop-jobs", 0, "jobs: jobs per max-throughput jobwire noop run (default 6000)")
	p.IntVar(&f.bullJobs, "bullmq-jobs", 0, "jobs: jobs of the BullMQ addBulk and backlog runs (default 20000)")
	p.IntVar(&f.importJobs, "import-jobs", 0, "jobs: jobs of the max-throughput import run (default 400)")
	p.IntVar(&f.tracks, "tracks", 0, "jobs: tracks per playlist import (default 100)")
	p.DurationVar(&f.rateDuration, "rate-duration", 0, "jobs: length of each fixed-rate run (default 10s)")
	p.IntVar(&f.submitters, "submitters", 0, "jobs: concurrent HTTP submitters (default 64)")
	p.BoolVar(&f.noBull, "no-bullmq", false, "jobs: skip the BullMQ side")
	p.BoolVar(&f.noDirect, "no-direct", false, "jobs: skip the direct JetStream submit and preloaded-backlog runs (and so the jobs floor)")
	p.IntVar(&f.batchSize, "batch-size", 0, "jobs: jobs per POST /v1/jobs/batch of the batch row and the backlog at scale (default 1000, at most 1000)")
	p.BoolVar(&f.traces, "traces", false, "jobs: after the first HTTP noop row, the same run with every process exporting its traces over OTLP/HTTP to a collector in the bench (what tracing on costs per job)")
	p.BoolVar(&f.controls, "controls", false, "jobs: after the first HTTP noop row, the same run with every job at priority high and under a rate limit it never reaches (what the queue controls cost per job)")
	p.BoolVar(&f.jobsFloor, "jobs-floor", true, "jobs: after the first preloaded-backlog row, drain the same backlog on bare NATS (floor worker and projector processes writing jobwire's messages per job to streams configured as jobwire's) and report jobwire's drain as a fraction of it")
	p.IntVar(&f.backlogJobs, "backlog-jobs", 0, "jobs: the backlog at scale: queue this many noop jobs in batches with no worker running, then report store bytes per job, gateway and projector restart times and the drain with worker and gateway RSS (default 0: skipped; issue 15 asks for 1000000)")
	p.StringVar(&f.bullDir, "bullmq-dir", "", "jobs: directory of bench.mjs (default services/internal/bench/testdata/bullmq-bench)")
	p.BoolVar(&f.npmInstall, "npm-install", true, "jobs: run `npm ci` in the BullMQ directory when node_modules is missing")

	run := func(relay, jobs bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			rep, err := bench.Run(cmd.Context(), f.options(cmd), relay, jobs)
			if rep != nil {
				rep.WriteMarkdown(cmd.OutOrStdout())
				if f.jsonOut != "" {
					data, _ := json.MarshalIndent(rep, "", "  ")
					if werr := os.WriteFile(f.jsonOut, data, 0o644); werr != nil && err == nil {
						err = werr
					}
				}
			}
			return err
		}
	}
	root.AddCommand(
		&cobra.Command{Use: "relay", Short: "SSE relay: delivery, latency, memory and goroutines per stream, NATS consumers, Redis commands; legacy polling baseline", Args: cobra.NoArgs, RunE: run(true, false)},
		&cobra.Command{Use: "jobs", Short: "Jobs: submit→completed throughput and latency (noop, playlist import) vs BullMQ", Args: cobra.NoArgs, RunE: run(false, true)},
		&cobra.Command{Use: "all", Short: "Both benchmarks on one deployment", Args: cobra.NoArgs, RunE: run(true, true)},
		child("floor-server", "the relay benchmark's floor server (commands on stdin)", bench.FloorServerMain),
		child("watch-clients", "a process of relay watchers (spec and commands on stdin, reports on stdout)", bench.WatchClientsMain),
		child("floor-jobs", "a worker or the projector of the jobs floor (--role worker|projector; spec and commands on stdin, reports on stdout)", bench.JobsFloorMain),
	)
	return root
}

// child is a hidden subcommand that runs one of the bench's own child processes (the benchmarks
// start them themselves; by hand they are for debugging) with its arguments as they are.
func child(name, short string, main func([]string) int) *cobra.Command {
	return &cobra.Command{Use: name, Short: short, Hidden: true, DisableFlagParsing: true,
		Run: func(_ *cobra.Command, args []string) { os.Exit(main(args)) }}
}
