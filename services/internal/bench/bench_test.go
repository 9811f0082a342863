package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/streams"
)

// TestMain lets the test binary play the jobwire services and the nats-server, as jobwire-bench does.
func TestMain(m *testing.M) {
	RunChildIfRequested()
	os.Exit(m.Run())
}

// bullmqAvailable says whether the BullMQ side can run here; when it cannot, the test skips that side,
// unless JOBWIRE_REQUIRE_BULLMQ=1 (CI), which makes it a failure.
func bullmqAvailable(t *testing.T) bool {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("redis-server"); err != nil {
		why = "redis-server is not installed"
	} else if _, err := exec.LookPath("node"); err != nil {
		why = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(bullmqDir(""), "node_modules", "bullmq", "package.json")); err != nil {
		why = "run `npm ci` in services/internal/bench/testdata/bullmq-bench"
	}
	if why == "" {
		return true
	}
	if os.Getenv("JOBWIRE_REQUIRE_BULLMQ") == "1" {
		t.Fatalf("the BullMQ side cannot run: %s (JOBWIRE_REQUIRE_BULLMQ=1)", why)
	}
	t.Logf("skipping the BullMQ side: %s", why)
	return false
}

// TestSmoke runs the smallest configuration of both benchmarks against real processes: 50 watchers
// of one job and their floor row, the legacy baseline, 5 noop jobs (the batch row in batches of 2) and
// 2 imports per run, the jobs floor of the backlog row, a backlog at scale of 10 jobs, and 5 BullMQ
// jobs. It proves the tool works; its numbers mean nothing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server, jobwire processes, redis-server and node")
	}
	o := Smoke()
	o.BullMQ = bullmqAvailable(t)
	o.TempDir = t.TempDir()
	var log bytes.Buffer
	o.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o, true, true)
	t.Logf("progress:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	t.Logf("report:\n%s", md.String())

	if len(rep.Relay) != 1 {
		t.Fatalf("relay results: %d, want 1", len(rep.Relay))
	}
	r := rep.Relay[0]
	if r.Connected != 50 || r.ConnectErrors != 0 {
		t.Errorf("streams open: %d (%d errors: %s), want 50", r.Connected, r.ConnectErrors, r.FirstError)
	}
	if r.Delivered == 0 || r.Latency.N == 0 || r.Published == 0 {
		t.Errorf("no progress delivered: published %d, delivered %d", r.Published, r.Delivered)
	}
	if r.StreamsEnded != 50 || r.OpenAfter != 0 {
		t.Errorf("streams ended by the server: %d, still open: %v; want 50 and 0", r.StreamsEnded, r.OpenAfter)
	}
	if r.ConsumersIdle != r.ConsumersBefore || r.ConsumersLoad != r.ConsumersBefore {
		t.Errorf("NATS consumers changed with the streams: %d → %d → %d", r.ConsumersBefore, r.ConsumersIdle, r.ConsumersLoad)
	}
	if r.RedisChecked && r.RedisCommands != 0 {
		t.Errorf("jobwire ran %d Redis commands, want 0", r.RedisCommands)
	}
	checkFloor(t, r)
	if _, err := exec.LookPath("redis-server"); err == nil {
		if len(rep.Legacy) != 1 || rep.Legacy[0].Polls == 0 || rep.Legacy[0].Commands == 0 {
			t.Errorf("legacy baseline did not poll: %+v", rep.Legacy)
		}
	}

	j := rep.Jobs
	if j == nil {
		t.Fatal("no jobs report")
	}
	kinds := map[string]bool{}
	for _, x := range j.Throughput {
		kinds[x.Kind+"/"+x.Submit] = true
		if x.Failed != 0 || x.JobsPerSec <= 0 {
			t.Errorf("%s via %s: %d failed, %.0f jobs/s", x.Kind, x.Submit, x.Failed, x.JobsPerSec)
		}
		if x.Cost != nil && x.Cost.RedisCommands != 0 {
			t.Errorf("%s via %s: jobwire ran %d Redis commands", x.Kind, x.Submit, x.Cost.RedisCommands)
		}
	}
	traced := 0
	for _, x := range j.Throughput {
		if x.Traces != nil {
			traced++
			// submit, queue wait, attempt, at least one projector write, the delivery of the completed state
			if x.Traces.SpansPerJob < 5 || x.Traces.BytesPerJob <= 0 {
				t.Errorf("traced row: %.1f spans and %.0f bytes per job, want every job's 5 spans or more", x.Traces.SpansPerJob, x.Traces.BytesPerJob)
			}
		}
	}
	if traced != 1 {
		t.Errorf("%d traced rows, want 1", traced)
	}
	for _, k := range []string{"noop/backlog", "noop/http", "noop/batch", "noop/js", "import/http"} {
		if !kinds[k] {
			t.Errorf("no %s run in %v", k, kinds)
		}
	}
	for _, x := range j.Rates {
		if x.Completed != x.Jobs {
			t.Errorf("%s at %.0f/s: %d of %d completed", x.Kind, x.TargetPerSec, x.Completed, x.Jobs)
		}
	}
	if o.BullMQ {
		if len(j.BullMQ) < 3 {
			t.Fatalf("BullMQ runs: %d, want throughput, drain and rate", len(j.BullMQ))
		}
		for _, b := range j.BullMQ {
			if b.Version == "" || b.RedisCommands == 0 {
				t.Errorf("BullMQ %s: version %q, %d Redis commands", b.Mode, b.Version, b.RedisCommands)
			}
		}
	}
	checkJobsFloor(t, j, o)
	checkBacklog(t, j.Backlog, o)
	for _, want := range []string{"### SSE relay", "### SSE relay against the floor", "| floor |", "### Jobs: throughput", "### Cost per job",
		"### Jobs: drain of a preloaded backlog against the floor", "| FLOOR_EVENTS | JOB_EVENTS |", "### Jobs: backlog at scale"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// checkFloor: the floor row ran the jobwire row's watchers, delivered its frames to all of them and
// ended their streams, and the ratios to it are computed.
func checkFloor(t *testing.T, r RelayResult) {
	t.Helper()
	f := r.Floor
	if f == nil || r.VsFloor == nil {
		t.Fatal("no floor row")
	}
	if f.Watchers != r.Watchers || f.Connected != r.Watchers || f.ConnectErrors != 0 {
		t.Errorf("floor streams: %d of %d open (%d errors: %s), want the jobwire row's %d", f.Connected, f.Watchers, f.ConnectErrors, f.FirstError, r.Watchers)
	}
	if f.Published == 0 || f.Delivered != f.Expected || f.Latency.N != f.Delivered || f.StreamsEnded != f.Watchers {
		t.Errorf("floor: published %d, delivered %d of %d (%d latencies), %d streams ended", f.Published, f.Delivered, f.Expected, f.Latency.N, f.StreamsEnded)
	}
	if f.CPUPerDelivery <= 0 || r.GatewayCPUPerDelivery <= 0 {
		t.Errorf("CPU per delivery: floor %.2f µs, gateway %.2f µs", f.CPUPerDelivery, r.GatewayCPUPerDelivery)
	}
	if v := r.VsFloor; v.LatencyP50 <= 0 || v.LatencyP99 <= 0 || v.CPUPerDelivery <= 0 {
		t.Errorf("ratios to the floor not computed: %+v", *v)
	}
}

// checkJobsFloor: the jobs floor drained the backlog row's jobs with at least one message per job to
// each stream, the sizes of jobwire's, and its ratio is computed.
func checkJobsFloor(t *testing.T, j *JobsReport, o Options) {
	t.Helper()
	f := j.Floor
	if f == nil {
		t.Fatal("no jobs floor")
	}
	if f.Jobs != o.NoopJobs || f.JobsPerSec <= 0 || f.VsFloor <= 0 {
		t.Errorf("jobs floor: %d jobs at %.0f/s, %.2f of it for jobwire, CPU %v", f.Jobs, f.JobsPerSec, f.VsFloor, f.CPU)
	}
	if len(f.Streams) != len(jobStreams) {
		t.Fatalf("jobs floor streams: %+v", f.Streams)
	}
	for _, s := range f.Streams {
		if s.Msgs < 1 || len(s.Bytes) != s.Msgs && s.Like != streams.StreamJobs || s.Bytes[0] <= 0 {
			t.Errorf("jobs floor %s (like %s): %d msgs per job (jobwire %.2f) of %v bytes", s.Name, s.Like, s.Msgs, s.Measured, s.Bytes)
		}
	}
	if states := f.Streams[len(f.Streams)-1].Msgs; f.StateMsgsPerJob < 1 || f.StateMsgsPerJob > float64(states) {
		t.Errorf("jobs floor: %.2f state writes per job, want 1 to %d", f.StateMsgsPerJob, states)
	}
}

// checkBacklog: the backlog at scale queued, stored, restarted over and drained its jobs.
func checkBacklog(t *testing.T, b *Backlog, o Options) {
	t.Helper()
	if b == nil {
		t.Fatal("no backlog at scale")
	}
	if b.Jobs != o.BacklogJobs || b.Failed != 0 || b.SubmitPerSec <= 0 || b.JobsPerSec <= 0 || b.GatewayReadySecs <= 0 || b.ProjectorReadySecs <= 0 {
		t.Errorf("backlog at scale: %+v", *b)
	}
	for _, name := range jobStreams {
		if b.StoreBytes[name] <= 0 {
			t.Errorf("backlog at scale: %.0f bytes stored per job in %s", b.StoreBytes[name], name)
		}
	}
	if r := b.RSS["gateway"]; r.Samples == 0 || r.Min <= 0 || b.RSS["worker-1"].Samples == 0 {
		t.Errorf("backlog at scale: RSS %v", b.RSS)
	}
}

func TestParseDigits(t *testing.T) {
	for in, want := range map[string]int64{`1700000000123456789","x`: 1700000000123456789, `42`: 42, `x1`: 0, ``: 0} {
		if got := parseDigits([]byte(in)); got != want {
			t.Errorf("parseDigits(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestCommandDeltaIgnoresTheBenchsOwnCalls(t *testing.T) {
	before := map[string]int64{"info": 3, "hgetall": 10}
	after := map[string]int64{"info": 9, "ping": 2, "hgetall": 15, "evalsha": 5}
	if got := commandDelta(before, after); got != 10 {
		t.Errorf("commandDelta = %d, want 10", got)
	}
}

func TestQuantiles(t *testing.T) {
	q := quantilesMicros([]uint32{1000, 2000}, []uint32{3000}, nil)
	if q.N != 3 || q.P50 != 2 || q.Max != 3 {
		t.Errorf("quantiles = %+v", q)
	}
	if q := quantilesMicros(); q.N != 0 {
		t.Errorf("empty quantiles = %+v", q)
	}
}

func TestWindow(t *testing.T) {
	var w window
	if w.contains(5) {
		t.Error("an unstarted window contains nothing")
	}
	w.start.Store(10)
	if !w.contains(10) || w.contains(9) || !w.contains(1<<40) {
		t.Error("open window bounds")
	}
	w.end.Store(20)
	if w.contains(20) || !w.contains(19) {
		t.Error("closed window bounds")
	}
}
