package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jobwire/jobwire/streams"
)

// WriteMarkdown writes the report as the tables of BENCHMARKS.md.
func (r *Report) WriteMarkdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "Machine: %d cores, %s, %s, Linux %s, RLIMIT_NOFILE %d, load average at start %s (%s)\n\n",
		m.Cores, m.CPU, m.GoVersion, m.Kernel, m.NoFile, m.Load, m.Start)
	if len(r.Relay) > 0 {
		fmt.Fprintln(w, "### SSE relay (jobwire gateway process, raw-TCP clients in the bench process or in watch-clients processes)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| watchers | jobs | open | delivered/s (expected) | p50 ms | p99 ms | max ms | RSS/idle stream | heap/idle stream | goroutines/stream | NATS consumers before/idle/load | gateway CPU | Redis cmds |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, x := range r.Relay {
			fmt.Fprintf(w, "| %d | %d | %d | %.0f (%.0f) | %.2f | %.2f | %.1f | %s | %s | %.3f | %d / %d / %d | %.2f | %s |\n",
				x.Watchers, x.Jobs, x.Connected, x.EventsPerSec, float64(x.Expected)/max(x.Seconds, 1e-9),
				x.Latency.P50, x.Latency.P99, x.Latency.Max, kib(x.RSSPerStream), kib(x.HeapPerStream), x.GoroutinesPerStr,
				x.ConsumersBefore, x.ConsumersIdle, x.ConsumersLoad, x.GatewayCPU, redisCell(x.RedisChecked, x.RedisCommands))
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| watchers | jobs | connect s | gateway RSS before → idle → load | stack/stream | coalesced | ended by server | open after | goroutines before → just opened → idle → after end | CPU cores: projector / nats / bench / client procs |")
		fmt.Fprintln(w, "|---:|---:|---:|---|---:|---:|---:|---:|---|---|")
		for _, x := range r.Relay {
			fmt.Fprintf(w, "| %d | %d | %.1f | %s → %s → %s | %s | %.0f | %d | %.0f | %d → %d → %d → %d | %.2f / %.2f / %.2f / %.2f |\n",
				x.Watchers, x.Jobs, x.ConnectSecs, mib(x.RSSBefore), mib(x.RSSIdle), mib(x.RSSLoad), kib(x.StackPerStream), x.Coalesced, x.StreamsEnded, x.OpenAfter,
				x.GoroutinesBefore, x.GoroutinesOpened, x.GoroutinesIdle, x.GoroutinesAfter, x.ProjectorCPU, x.NATSCPU, x.BenchCPU, x.ClientCPU)
		}
		fmt.Fprintln(w)
		writeRelayNotes(w, r.Relay)
		r.writeFloor(w)
	}
	if len(r.Legacy) > 0 {
		fmt.Fprintln(w, "### Legacy baseline (HGETALL + getState script every 500 ms per stream, real redis-server)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| watchers | polls/s (expected) | Redis cmds/s | per watcher per s | per poll | update seen p50 ms | p99 ms | max ms | redis CPU | bench CPU |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, x := range r.Legacy {
			fmt.Fprintf(w, "| %d | %.0f (%.0f) | %.0f | %.1f | %.2f | %.0f | %.0f | %.0f | %.2f | %.2f |\n",
				x.Watchers, x.PollsPerSec, x.ExpectedPerSec, x.CommandsPerSec, x.PerWatcherSec, x.CommandsPerPoll,
				x.Latency.P50, x.Latency.P99, x.Latency.Max, x.RedisCPU, x.BenchCPU)
		}
		fmt.Fprintln(w)
	}
	if j := r.Jobs; j != nil {
		fmt.Fprintln(w, "### Jobs: throughput (as fast as the submitters go)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| system | job | submit | worker procs | jobs | jobs/s | submits/s | submit→completed p50 ms | p99 ms | failed | CPU cores by process |")
		fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
		for _, b := range j.BullMQ {
			if b.Mode != "rate" {
				fmt.Fprintf(w, "| BullMQ %s | noop | %s | 1 | %d | %.0f | | | | | %s |\n", b.Version, bullSubmit(b.Mode), b.Jobs, b.JobsPerSec, cpuCell(b.CPU))
			}
		}
		for _, t := range j.Throughput {
			lat50, lat99 := fmt.Sprintf("%.0f", t.Latency.P50), fmt.Sprintf("%.0f", t.Latency.P99)
			if t.Submit == SubmitBacklog {
				lat50, lat99 = "", ""
			}
			fmt.Fprintf(w, "| jobwire | %s | %s | %d | %d | %.0f | %.0f | %s | %s | %d | %s |\n",
				t.Kind, t.Submit, t.Workers, t.Jobs, t.JobsPerSec, t.SubmitPerSec, lat50, lat99, t.Failed, cpuCell(t.CPU))
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Jobs: fixed rate (half the measured maximum)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| system | job | worker procs | target/s | offered/s | completed | p50 ms | p99 ms | max ms | CPU cores by process |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
		for _, b := range j.BullMQ {
			if b.Mode == "rate" {
				fmt.Fprintf(w, "| BullMQ %s (QueueEvents; worker-side p50/p99 %.2f/%.2f) | noop | 1 | %.0f | %.0f | %d/%d | %.2f | %.2f | %.1f | %s |\n",
					b.Version, b.WorkerLatency.P50, b.WorkerLatency.P99, b.TargetPerSec, b.OfferedPerSec, b.Completed, b.Jobs, b.Latency.P50, b.Latency.P99, b.Latency.Max, cpuCell(b.CPU))
			}
		}
		for _, x := range j.Rates {
			fmt.Fprintf(w, "| jobwire (%s) | %s | %d | %.0f | %.0f | %d/%d | %.2f | %.2f | %.1f | %s |\n",
				x.Submit, x.Kind, x.Workers, x.TargetPerSec, x.OfferedPerSe, x.Completed, x.Jobs, x.Latency.P50, x.Latency.P99, x.Latency.Max, cpuCell(x.CPU))
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Cost per job (messages written / bytes kept, per stream; NATS server traffic; Redis)")
		fmt.Fprintln(w)
		names := accountedStreams
		fmt.Fprintf(w, "| run | %s | NATS in msgs / bytes | NATS out msgs / bytes | Redis cmds |\n", strings.Join(names, " | "))
		fmt.Fprintf(w, "|---|%s---:|---:|---:|\n", strings.Repeat("---:|", len(names)))
		for _, b := range j.BullMQ {
			if b.Mode != "rate" {
				fmt.Fprintf(w, "| BullMQ %s noop | %s | | | %.1f per job |\n", bullSubmit(b.Mode), strings.Repeat("| ", len(names)-1), b.CommandsPerJob)
			}
		}
		for _, t := range j.Throughput {
			if t.Cost == nil {
				continue
			}
			c := t.Cost
			cells := make([]string, len(names))
			for i, n := range names {
				cells[i] = fmt.Sprintf("%.2f / %.0f", c.Msgs[n], c.Bytes[n])
				if n == streams.StreamJobs && t.Submit != SubmitBacklog {
					cells[i] = fmt.Sprintf("%.2f / (acked)", c.Msgs[n])
				}
			}
			fmt.Fprintf(w, "| jobwire %s %s, %d procs | %s | %.1f / %.0f | %.1f / %.0f | %d |\n", t.Kind, t.Submit, t.Workers,
				strings.Join(cells, " | "), c.NATSInMsgs, c.NATSInBytes, c.NATSOutMsgs, c.NATSOutBytes, c.RedisCommands)
		}
		fmt.Fprintln(w)
		j.writeFloor(w)
		j.writeBacklog(w)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "Skipped: %s\n", s)
	}
}

// writeRelayNotes says which configurations ran fewer watchers than asked for, and why, and which
// ran their watchers in client processes.
func writeRelayNotes(w io.Writer, rows []RelayResult) {
	n := 0
	for _, x := range rows {
		if x.CappedBecause != "" {
			fmt.Fprintf(w, "- %d watchers over %d jobs requested, %d run: %s.\n", x.WatchersRequested, x.Jobs, x.Watchers, x.CappedBecause)
			n++
		}
		if x.ClientProcs > 0 {
			fmt.Fprintf(w, "- %d watchers over %d jobs: clients in %d watch-clients processes (about %d each), each dialling from its own loopback address.\n",
				x.Watchers, x.Jobs, x.ClientProcs, x.Watchers/x.ClientProcs)
			n++
		}
	}
	if n > 0 {
		fmt.Fprintln(w)
	}
}

// writeFloor writes the relay rows beside their floor rows, with the ratios of jobwire's to the floor's.
func (r *Report) writeFloor(w io.Writer) {
	if !slices.ContainsFunc(r.Relay, func(x RelayResult) bool { return x.Floor != nil }) {
		return
	}
	fmt.Fprintln(w, "### SSE relay against the floor (same watchers, jobs, updates and window; floor server: raw TCP, one frame per update written to every socket)")
	fmt.Fprintln(w)
	if p := r.Pin; p.Enabled {
		fmt.Fprintf(w, "Pinned (%s): gateway and floor server on CPU %v, every other process (bench and clients included) on CPU %v.\n\n", p.Method, p.GatewayCPUs, p.OtherCPUs)
	} else {
		fmt.Fprintln(w, "Not pinned: the gateway and the floor server share the cores with every other process (--pin to give them one).")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| watchers | jobs | server | open | delivered/s (expected) | p50 ms | p99 ms | max ms | server CPU cores | CPU µs/delivery | p50 × floor | p99 × floor | CPU/delivery × floor |")
	fmt.Fprintln(w, "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, x := range r.Relay {
		f, v := x.Floor, x.VsFloor
		if f == nil {
			continue
		}
		fmt.Fprintf(w, "| %d | %d | jobwire gateway | %d | %.0f (%.0f) | %.2f | %.2f | %.1f | %.2f | %.2f | %s | %s | %s |\n",
			x.Watchers, x.Jobs, x.Connected, x.EventsPerSec, float64(x.Expected)/max(x.Seconds, 1e-9), x.Latency.P50, x.Latency.P99, x.Latency.Max,
			x.GatewayCPU, x.GatewayCPUPerDelivery, times(v.LatencyP50), times(v.LatencyP99), times(v.CPUPerDelivery))
		fmt.Fprintf(w, "| %d | %d | floor | %d | %.0f (%.0f) | %.2f | %.2f | %.1f | %.2f | %.2f | | | |\n",
			f.Watchers, f.Jobs, f.Connected, f.EventsPerSec, float64(f.Expected)/max(f.Seconds, 1e-9), f.Latency.P50, f.Latency.P99, f.Latency.Max,
			f.CPU, f.CPUPerDelivery)
	}
	fmt.Fprintln(w)
}

// writeFloor writes the first preloaded-backlog row beside its floor, and the floor's message pattern.
func (j *JobsReport) writeFloor(w io.Writer) {
	f := j.Floor
	if f == nil {
		return
	}
	fmt.Fprintln(w, "### Jobs: drain of a preloaded backlog against the floor (bare NATS: floor worker and projector processes writing jobwire's messages per job, no jobwire logic)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| system | worker procs | concurrency | jobs | drain jobs/s | jobwire ÷ floor | CPU cores by process |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|")
	if i := slices.IndexFunc(j.Throughput, func(t Throughput) bool { return t.Submit == SubmitBacklog }); i >= 0 {
		t := j.Throughput[i]
		fmt.Fprintf(w, "| jobwire | %d | %d | %d | %.0f | %s | %s |\n", t.Workers, f.Concurrency, t.Jobs, t.JobsPerSec, times(f.VsFloor), cpuCell(t.CPU))
	}
	fmt.Fprintf(w, "| floor | %d | %d | %d | %.0f | | %s |\n", f.Workers, f.Concurrency, f.Jobs, f.JobsPerSec, cpuCell(f.CPU))
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Floor pattern per job (worker: consumer MaxAckPending %d, %d slots per process, fetches of as many jobs as free slots, non-terminal events published asynchronously, the terminal one awaited before the ack; "+
		"projector: as jobwire's, every event arrived (up to 512) in one batch, one state write per job per batch with the expected last subject sequence (a job's last with a TTL), the batch's writes pipelined, then its events acked; "+
		"so FLOOR_STATE's floor msgs/job is the most, and it wrote %.2f per job, fewer where a batch held several events of a job):\n\n", f.MaxAckPending, f.Concurrency, f.StateMsgsPerJob)
	fmt.Fprintln(w, "| floor stream | settings of | jobwire msgs/job | floor msgs/job | body bytes |")
	fmt.Fprintln(w, "|---|---|---:|---:|---|")
	for _, st := range f.Streams {
		sizes := make([]string, len(st.Bytes))
		for i, b := range st.Bytes {
			sizes[i] = fmt.Sprint(b)
		}
		fmt.Fprintf(w, "| %s | %s | %.2f | %d | %s |\n", st.Name, st.Like, st.Measured, st.Msgs, strings.Join(sizes, ", "))
	}
	fmt.Fprintln(w)
}

// writeBacklog writes the backlog at scale.
func (j *JobsReport) writeBacklog(w io.Writer) {
	b := j.Backlog
	if b == nil {
		return
	}
	fmt.Fprintf(w, "### Jobs: backlog at scale (%d noop jobs queued through POST /v1/jobs/batch, %d a batch, no worker running)\n\n", b.Jobs, b.BatchSize)
	fmt.Fprintf(w, "| jobs | submits/s | %s | gateway ready s | projector caught up s | worker procs | drain jobs/s | failed | CPU cores by process |\n",
		strings.Join(mapStrings(jobStreams, func(n string) string { return n + " bytes/job" }), " | "))
	fmt.Fprintf(w, "|---:|---:|%s---:|---:|---:|---:|---:|---|\n", strings.Repeat("---:|", len(jobStreams)))
	fmt.Fprintf(w, "| %d | %.0f | %s | %.2f | %.2f | %d | %.0f | %d | %s |\n", b.Jobs, b.SubmitPerSec,
		strings.Join(mapStrings(jobStreams, func(n string) string { return fmt.Sprintf("%.0f", b.StoreBytes[n]) }), " | "),
		b.GatewayReadySecs, b.ProjectorReadySecs, b.Workers, b.JobsPerSec, b.Failed, cpuCell(b.CPU))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| process (RSS during the drain, sampled every second) | first MiB | min | max | last | samples |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	names := make([]string, 0, len(b.RSS))
	for name := range b.RSS {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		r := b.RSS[name]
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f | %.1f | %d |\n", name, r.First, r.Min, r.Max, r.Last, r.Samples)
	}
	fmt.Fprintln(w)
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

// times is a ratio as "3.2×", or "n/a" when it could not be computed (0).
func times(r float64) string {
	if r <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", r)
}

func bullSubmit(mode string) string {
	if mode == "drain" {
		return "backlog"
	}
	return "addBulk"
}

func cpuCell(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.2f", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func redisCell(checked bool, n int64) string {
	if !checked {
		return "n/a"
	}
	return fmt.Sprint(n)
}
