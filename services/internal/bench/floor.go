package bench

import (
	"context"
	"strconv"
	"time"

	"github.com/jobwire/jobwire/streams"
)

// FloorResult is the floor row of a relay configuration: the same watchers, jobs and updates per
// second, in the same run, against the floor server (FloorServerMain: raw TCP, one frame per update
// written to every socket of its job, no NATS, no hub, no HTTP framework), in its own process as the
// gateway is. It is what this machine can do; jobwire's row is compared with it (FloorRatios).
type FloorResult struct {
	Watchers      int       `json:"watchers"`
	Jobs          int       `json:"jobs"`
	Connected     int       `json:"connected"`
	ConnectErrors int       `json:"connectErrors"`
	FirstError    string    `json:"firstError,omitempty"`
	ConnectSecs   float64   `json:"connectSeconds"`
	Seconds       float64   `json:"seconds"`
	Published     int       `json:"published"`
	Expected      int       `json:"expectedDeliveries"`
	Delivered     int       `json:"delivered"`
	EventsPerSec  float64   `json:"deliveredPerSec"`
	Latency       Quantiles `json:"latency"`
	RSSLoad       int64     `json:"rssLoadBytes"`
	// CPU is the floor server's cores over warm-up, window and drain, as gatewayCpuCores;
	// CPUPerDelivery its CPU time inside the window per delivery there, in microseconds.
	CPU            float64 `json:"cpuCores"`
	CPUPerDelivery float64 `json:"cpuMicrosPerDelivery"`
	BenchCPU       float64 `json:"benchCpuCores"`
	ClientCPU      float64 `json:"clientProcsCpuCores"`
	StreamsEnded   int     `json:"streamsEndedByServer"`
}

// FloorRatios compare a jobwire row with its floor row: jobwire's figure divided by the floor's (0
// when the floor's is 0). CPUPerDelivery is gateway CPU seconds per delivery over the floor server's.
type FloorRatios struct {
	LatencyP50     float64 `json:"latencyP50"`
	LatencyP99     float64 `json:"latencyP99"`
	CPUPerDelivery float64 `json:"gatewayCpuPerDelivery"`
}

func floorRatios(r RelayResult, f FloorResult) *FloorRatios {
	return &FloorRatios{LatencyP50: ratio(r.Latency.P50, f.Latency.P50), LatencyP99: ratio(r.Latency.P99, f.Latency.P99),
		CPUPerDelivery: ratio(r.GatewayCPUPerDelivery, f.CPUPerDelivery)}
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// runFloor measures the floor row of a configuration against a fresh floor server process, on the
// gateway's CPU when pinned, with the watchers in procs watch-clients processes (0: in this one).
func runFloor(ctx context.Context, o Options, pin Pinning, watchers, jobs, procs int) (res FloorResult, err error) {
	res = FloorResult{Watchers: watchers, Jobs: jobs}
	o.logf("floor: %d watchers over %d jobs", watchers, jobs)
	p, err := startPiped("floor-server", childFloor, []string{"--updates", strconv.FormatFloat(o.UpdatesPerSec, 'g', -1, 64)}, pin.gatewayCPU())
	if err != nil {
		return res, err
	}
	defer p.stop()
	var hello floorReport
	if err := p.recv(&hello, 30*time.Second); err != nil {
		return res, err
	}
	ids := make([]string, jobs)
	reqs := make([][]byte, jobs)
	for j := range ids {
		ids[j] = streams.NewJobID(time.Now()) // the size of the gateway's job ids
		reqs[j] = watchRequest(hello.Listening, ids[j], "floor")
	}
	win := &window{}
	start := time.Now()
	f, err := openFleet(ctx, o, clientSpec{Addr: hello.Listening, Requests: reqs, Watchers: watchers}, procs, win)
	if err != nil {
		return res, err
	}
	defer f.close()
	cc, err := f.opened()
	if err != nil {
		return res, err
	}
	res.ConnectSecs = time.Since(start).Seconds()
	res.Connected, res.ConnectErrors, res.FirstError = cc.Connected, cc.Errors, cc.FirstError

	// Load: the floor server updates its jobs, the window as for the gateway.
	loadStart := openWindow(o, win)
	if err := f.setWindow(win); err != nil {
		return res, err
	}
	if err := p.send("window %d %d", win.start.Load(), win.end.Load()); err != nil {
		return res, err
	}
	cpu0 := [3]float64{cpuSeconds(p.pid()), selfCPUSeconds(), f.cpuSeconds()}
	inWindow := cpuInWindow(p.pid(), win)
	res.RSSLoad, _ = rssOf(p.pid())
	var pub floorReport
	if err := p.send("stop"); err != nil {
		return res, err
	}
	if err := p.recv(&pub, 30*time.Second); err != nil {
		return res, err
	}
	time.Sleep(o.Drain)
	elapsed := time.Since(loadStart).Seconds()
	res.CPU, res.BenchCPU, res.ClientCPU = (cpuSeconds(p.pid())-cpu0[0])/elapsed, (selfCPUSeconds()-cpu0[1])/elapsed, (f.cpuSeconds()-cpu0[2])/elapsed
	perJob := make([]int, jobs)
	for j, id := range ids {
		perJob[j] = pub.Published[id]
		res.Published += perJob[j]
	}
	res.Expected = expectedDeliveries(perJob, watchers)
	res.Seconds = win.seconds()

	// End: a terminal state on every stream, then the floor server closes them.
	if err := p.send("complete"); err != nil {
		return res, err
	}
	var end floorReport
	if err := p.recv(&end, 60*time.Second); err != nil {
		return res, err
	}
	tot, err := f.finish(30 * time.Second)
	if err != nil {
		return res, err
	}
	res.Delivered, res.StreamsEnded = tot.Delivered, tot.Ended
	res.EventsPerSec = float64(res.Delivered) / res.Seconds
	res.Latency = quantilesMicros(tot.Lat...)
	if res.Delivered > 0 {
		res.CPUPerDelivery = inWindow / float64(res.Delivered) * 1e6
	}
	o.logf("floor: %d watchers/%d jobs: %.0f events/s (expected %.0f), latency p50 %.2f ms p99 %.2f ms max %.1f ms, %.2f cores, %.2f µs CPU/delivery",
		watchers, jobs, res.EventsPerSec, float64(res.Expected)/res.Seconds, res.Latency.P50, res.Latency.P99, res.Latency.Max, res.CPU, res.CPUPerDelivery)
	return res, nil
}
