package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

// The bench process holds its watchers itself while they fit beside its own descriptors
// (benchFDs: NATS, Redis pools, HTTP clients); above that they run in watch-clients processes of at
// most perClientProc each (each process has the same RLIMIT_NOFILE, and needs clientFDs of its own).
const (
	benchFDs      = 512
	clientFDs     = 64
	perClientProc = 10000
)

// clientProcs is how many watch-clients processes hold a configuration's watchers: o.ClientProcs when
// set (at most one per watcher), else none while the bench process can hold them under nofile, else
// enough of them.
func clientProcs(o Options, watchers int, nofile uint64) int {
	if o.ClientProcs > 0 {
		return min(o.ClientProcs, watchers)
	}
	if uint64(watchers)+benchFDs <= nofile {
		return 0
	}
	per := perClientProc
	if nofile < uint64(per+clientFDs) {
		per = int(nofile) - clientFDs
	}
	return (watchers + per - 1) / max(per, 1)
}

// clientSourceIP is the loopback address client process k dials from (127.0.0.2 on), so that the
// ephemeral ports of one address do not run out; "" (the default) outside Linux, where only 127.0.0.1
// is sure to exist.
func clientSourceIP(k int) string {
	if runtime.GOOS != "linux" {
		return ""
	}
	return "127.0.0." + strconv.Itoa(2+k%250)
}

// clientReport is a line a watch-clients process writes: Ready once every stream is open (or failed),
// Done once every stream has ended.
type clientReport struct {
	Ready *connectCounts `json:"ready,omitempty"`
	Done  *clientTotals  `json:"done,omitempty"`
}

// clientTotals is fleetTotals on the wire: the latencies of all the process's watchers in one
// little-endian uint32 array (microseconds), base64 in JSON.
type clientTotals struct {
	Delivered int    `json:"delivered"`
	Ended     int    `json:"ended"`
	Lat       []byte `json:"latencyMicrosLE32"`
}

func encodeTotals(t fleetTotals) *clientTotals {
	out := &clientTotals{Delivered: t.Delivered, Ended: t.Ended}
	for _, part := range t.Lat {
		for _, v := range part {
			out.Lat = binary.LittleEndian.AppendUint32(out.Lat, v)
		}
	}
	return out
}

func (c *clientTotals) decode() fleetTotals {
	lat := make([]uint32, len(c.Lat)/4)
	for i := range lat {
		lat[i] = binary.LittleEndian.Uint32(c.Lat[4*i:])
	}
	return fleetTotals{Delivered: c.Delivered, Ended: c.Ended, Lat: [][]uint32{lat}}
}

// WatchClientsMain is `jobwire-bench watch-clients` (hidden; the relay benchmark runs it when its
// watchers do not fit in one process, or with --client-procs): the relay benchmark's watchers in a
// process of their own. Commands on stdin, one a line:
//
//	spec <clientSpec JSON>       open the streams; report {"ready":{...}} when each has its first state
//	window <start ns> <end ns>   the measurement window
//	stop                         close the streams still open
//
// It reports {"done":{...}} (deliveries, streams the server ended, every latency) once every stream has
// ended, and exits when stdin closes.
func WatchClientsMain(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "watch-clients: no arguments; commands on stdin")
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	win := &window{}
	specs := make(chan clientSpec, 1)
	failed := make(chan error, 1)
	go func() {
		err := commands(func(cmd, arg string) error { return clientCommand(cmd, arg, win, specs, cancel) })
		if !errors.Is(err, errStdinClosed) {
			failed <- err
		}
		cancel()
	}()
	var spec clientSpec
	select {
	case spec = <-specs:
	case err := <-failed:
		fmt.Fprintln(os.Stderr, "watch-clients:", err)
		return 1
	case <-ctx.Done():
		return 0
	}
	out := &reporter{w: os.Stdout}
	f := startLocalFleet(ctx, spec, win)
	cc, _ := f.opened()
	out.report(clientReport{Ready: &cc})
	tot, _ := f.finish(0)
	out.report(clientReport{Done: encodeTotals(tot)})
	return 0
}

func clientCommand(cmd, arg string, win *window, specs chan<- clientSpec, stop func()) error {
	switch cmd {
	case "spec":
		var spec clientSpec
		if err := json.Unmarshal([]byte(arg), &spec); err != nil {
			return fmt.Errorf("spec: %w", err)
		}
		if spec.Watchers <= 0 || len(spec.Requests) == 0 {
			return fmt.Errorf("spec: %d watchers of %d requests", spec.Watchers, len(spec.Requests))
		}
		select {
		case specs <- spec:
		default:
			return errors.New("a second spec")
		}
	case "window":
		var start, end int64
		if _, err := fmt.Sscan(arg, &start, &end); err != nil {
			return fmt.Errorf("window %q: %w", arg, err)
		}
		win.start.Store(start)
		win.end.Store(end)
	case "stop":
		stop()
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}

// procFleet is the watchers of a configuration spread over watch-clients processes, each dialling from
// its own loopback address.
type procFleet struct {
	procs []*pipedProc
}

// startProcFleet starts n watch-clients processes holding spec's watchers between them.
func startProcFleet(spec clientSpec, n int) (*procFleet, error) {
	f := &procFleet{}
	for k := range n {
		sub := spec
		sub.First, sub.Watchers = spec.Watchers*k/n, spec.Watchers*(k+1)/n-spec.Watchers*k/n
		sub.LocalIP, sub.InFlight = clientSourceIP(k), max(spec.InFlight/n, 8)
		p, err := startPiped(fmt.Sprintf("watch-clients-%d", k+1), childClients, nil, -1)
		if err != nil {
			f.close()
			return nil, err
		}
		f.procs = append(f.procs, p)
		b, _ := json.Marshal(sub)
		if err := p.send("spec %s", b); err != nil {
			f.close()
			return nil, err
		}
	}
	return f, nil
}

func (f *procFleet) opened() (connectCounts, error) {
	var cc connectCounts
	for _, p := range f.procs {
		var r clientReport
		if err := p.recv(&r, 5*time.Minute); err != nil {
			return cc, err
		}
		if r.Ready == nil {
			return cc, fmt.Errorf("%s: no ready report", p.name)
		}
		cc.add(*r.Ready)
	}
	return cc, nil
}

func (f *procFleet) setWindow(win *window) error {
	for _, p := range f.procs {
		if err := p.send("window %d %d", win.start.Load(), win.end.Load()); err != nil {
			return err
		}
	}
	return nil
}

// finish waits for each process's done report until timeout, then tells those still waiting to stop.
func (f *procFleet) finish(timeout time.Duration) (fleetTotals, error) {
	var tot fleetTotals
	deadline := time.Now().Add(timeout)
	for _, p := range f.procs {
		var r clientReport
		err := p.recv(&r, max(time.Until(deadline), time.Millisecond))
		if err != nil && r.Done == nil && !p.exited() {
			if err := p.send("stop"); err != nil {
				return tot, err
			}
			err = p.recv(&r, time.Minute)
		}
		if err != nil {
			return tot, err
		}
		if r.Done == nil {
			return tot, fmt.Errorf("%s: no done report", p.name)
		}
		tot.add(r.Done.decode())
	}
	return tot, nil
}

func (f *procFleet) cpuSeconds() float64 {
	var s float64
	for _, p := range f.procs {
		s += cpuSeconds(p.pid())
	}
	return s
}

func (f *procFleet) close() {
	for _, p := range f.procs {
		p.stop()
	}
}
