package bench

import (
	"context"
	"net"
	"sync"
	"time"
)

// clientSpec is a set of watchers: watcher i (counting from First) streams Requests[i mod
// len(Requests)] from Addr, dialling from LocalIP when set, with at most InFlight connects at once.
// LatCap is the latency samples each watcher makes room for up front.
type clientSpec struct {
	Addr     string   `json:"addr"`
	Requests [][]byte `json:"requests"`
	First    int      `json:"first"`
	Watchers int      `json:"watchers"`
	LocalIP  string   `json:"localIp,omitempty"`
	InFlight int      `json:"inFlight"`
	LatCap   int      `json:"latCap"`
}

// connectCounts is how the opening of a set of streams went.
type connectCounts struct {
	Connected  int    `json:"connected"`
	Errors     int    `json:"errors"`
	FirstError string `json:"firstError,omitempty"`
}

func (c *connectCounts) add(o connectCounts) {
	c.Connected += o.Connected
	c.Errors += o.Errors
	if c.FirstError == "" {
		c.FirstError = o.FirstError
	}
}

// fleetTotals is what a set of watchers received: progress events in the window, streams the server
// ended, and the latencies in microseconds (one slice per watcher, or per client process).
type fleetTotals struct {
	Delivered int
	Ended     int
	Lat       [][]uint32
}

func (t *fleetTotals) add(o fleetTotals) {
	t.Delivered += o.Delivered
	t.Ended += o.Ended
	t.Lat = append(t.Lat, o.Lat...)
}

// fleet is the watchers of one configuration, in the bench process (localFleet) or in watch-clients
// processes (procFleet).
type fleet interface {
	// opened waits until every stream has its first state event or failed.
	opened() (connectCounts, error)
	// setWindow tells the watchers the measurement window (the local fleet shares it already).
	setWindow(win *window) error
	// finish waits up to timeout for the server to end every stream, then closes those still open,
	// and returns what the watchers received.
	finish(timeout time.Duration) (fleetTotals, error)
	// cpuSeconds is the CPU time of the client processes so far (0 for the local fleet).
	cpuSeconds() float64
	// close ends the client processes.
	close()
}

// localFleet runs the watchers as goroutines of this process.
type localFleet struct {
	clients []*watcher
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	readyWG sync.WaitGroup
	mu      sync.Mutex
	counts  connectCounts
}

// startLocalFleet starts spec's watchers in this process, InFlight connects at a time, and returns
// when the last has started; they count progress events inside win.
func startLocalFleet(ctx context.Context, spec clientSpec, win *window) *localFleet {
	ctx, cancel := context.WithCancel(ctx)
	f := &localFleet{clients: make([]*watcher, spec.Watchers), cancel: cancel}
	var local net.Addr
	if spec.LocalIP != "" {
		local = &net.TCPAddr{IP: net.ParseIP(spec.LocalIP)}
	}
	sem := make(chan struct{}, max(spec.InFlight, 1))
	f.readyWG.Add(spec.Watchers)
	for i := range spec.Watchers {
		w := &watcher{lat: make([]uint32, 0, spec.LatCap)}
		f.clients[i] = w
		req := spec.Requests[(spec.First+i)%len(spec.Requests)]
		sem <- struct{}{}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			w.run(ctx, spec.Addr, local, req, win, func(err error) {
				<-sem
				f.connected(err)
			})
		}()
	}
	return f
}

func (f *localFleet) connected(err error) {
	f.mu.Lock()
	if err != nil {
		f.counts.Errors++
		if f.counts.FirstError == "" {
			f.counts.FirstError = err.Error()
		}
	} else {
		f.counts.Connected++
	}
	f.mu.Unlock()
	f.readyWG.Done()
}

func (f *localFleet) opened() (connectCounts, error) {
	f.readyWG.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts, nil
}

func (f *localFleet) setWindow(*window) error { return nil }

func (f *localFleet) finish(timeout time.Duration) (fleetTotals, error) {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	if timeout > 0 {
		select {
		case <-done:
		case <-time.After(timeout):
			f.cancel()
		}
	}
	<-done
	f.cancel()
	var t fleetTotals
	for _, w := range f.clients {
		t.Delivered += w.events
		t.Lat = append(t.Lat, w.lat)
		if w.ended {
			t.Ended++
		}
	}
	f.clients = nil
	return t, nil
}

func (f *localFleet) cpuSeconds() float64 { return 0 }

func (f *localFleet) close() { f.cancel() }

// openFleet starts the watchers of spec (Watchers of them, 64 connects in flight), in this process
// when procs is 0, else spread over procs watch-clients processes; they count progress events inside
// win.
func openFleet(ctx context.Context, o Options, spec clientSpec, procs int, win *window) (fleet, error) {
	spec.InFlight, spec.LatCap = 64, int(o.UpdatesPerSec*o.LoadDuration.Seconds())+8
	if procs == 0 {
		return startLocalFleet(ctx, spec, win), nil
	}
	return startProcFleet(spec, procs)
}

// openWindow sets win to open o.Warmup from now and to last o.LoadDuration, and returns now, the
// start of the load. Both ends are known before any event is published, so that every watcher, in
// this process or another, counts the same events.
func openWindow(o Options, win *window) time.Time {
	now := time.Now()
	start := now.Add(o.Warmup)
	win.start.Store(start.UnixNano())
	win.end.Store(start.Add(o.LoadDuration).UnixNano())
	return now
}

// seconds is the length of a closed window.
func (w *window) seconds() float64 { return float64(w.end.Load()-w.start.Load()) / 1e9 }

// cpuInWindow waits for win to open, reads the CPU time of process pid, waits for win to close, and
// returns the CPU seconds pid used in between (threadCPUSeconds).
func cpuInWindow(pid int, win *window) float64 {
	time.Sleep(time.Until(time.Unix(0, win.start.Load())))
	c0 := threadCPUSeconds(pid)
	time.Sleep(time.Until(time.Unix(0, win.end.Load())))
	return threadCPUSeconds(pid) - c0
}

// expectedDeliveries is what watchers streams should receive when watcher i watches job i mod jobs
// and job j published perJob[j] events inside the window.
func expectedDeliveries(perJob []int, watchers int) int {
	n := 0
	for i := range watchers {
		n += perJob[i%len(perJob)]
	}
	return n
}
