package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jobwire/jobwire/services/internal/cli"
	"github.com/jobwire/jobwire/services/internal/devserver"
	"github.com/jobwire/jobwire/services/internal/testkit"
)

// childEnv selects what a re-executed bench binary runs instead of the bench: "jobwire" runs the
// jobwire command line (cli.Main, the very code of the jobwire binary) with the process arguments;
// "nats" runs the embedded nats-server of `jobwire dev` (devserver) on its own; childFloor,
// childClients and childJobsFloor run the floor server, a watch-clients process and a process of the
// jobs floor.
const childEnv = "JOBWIRE_BENCH_CHILD"

// The children of the relay and jobs benchmarks that are bench code, by their childEnv value (also
// the names of jobwire-bench's hidden subcommands that run them).
const (
	childFloor   = "floor-server"
	childClients = "watch-clients"
	// childJobsFloor is a worker or the projector of the jobs benchmark's floor (JobsFloorMain).
	childJobsFloor = "floor-jobs"
)

// RunChildIfRequested turns this process into a jobwire service or a nats-server when the bench
// started it as one, and exits. main and TestMain call it first, so the bench needs no separately
// built binary (--jobwire selects one instead).
func RunChildIfRequested() {
	switch os.Getenv(childEnv) {
	case "":
		return
	case "jobwire":
		os.Exit(cli.Main(os.Args[1:]))
	case "nats":
		os.Exit(runNATSChild(os.Args[1:]))
	case childFloor:
		os.Exit(FloorServerMain(os.Args[1:]))
	case childClients:
		os.Exit(WatchClientsMain(os.Args[1:]))
	case childJobsFloor:
		os.Exit(JobsFloorMain(os.Args[1:]))
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: unknown child\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

// runNATSChild runs the dev server's nats-server (JetStream on disk, system account) until SIGTERM.
// Arguments: data dir, client port, monitoring address.
func runNATSChild(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "nats child: want <data dir> <port> <monitor addr>")
		return 2
	}
	port, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats child:", err)
		return 2
	}
	ns, err := devserver.Start(devserver.Options{DataDir: args[0], Port: port, MonitorAddr: args[2]})
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats child:", err)
		return 1
	}
	if on, _ := strconv.ParseBool(os.Getenv("JOBWIRE_PPROF")); on {
		serveProfiles()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ns.Shutdown()
	ns.WaitForShutdown()
	return 0
}

// serveProfiles serves Go's profiles of this process (the nats-server's CPU) on a free loopback port,
// printed on stderr, for a run with JOBWIRE_PPROF=true.
func serveProfiles() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats child: profiles:", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	fmt.Fprintf(os.Stderr, "nats child: profiles on http://%s/debug/pprof/\n", ln.Addr())
	go http.Serve(ln, mux)
}

// startProc starts path with args and env as a child of the bench: a jobwire service, the nats-server,
// redis-server or node. Its environment is minimal (no REDIS_URL, no NATS_URL unless given) plus
// GOMAXPROCS when set; it keeps the last 64 KiB of its output and, on Linux, dies with the bench.
func startProc(name, path string, args []string, env map[string]string) (*testkit.Proc, error) {
	return startProcOn(-1, name, path, args, env)
}

// startProcOn is startProc with the process on cpu only (when cpu >= 0; see onCPU).
func startProcOn(cpu int, name, path string, args []string, env map[string]string) (*testkit.Proc, error) {
	path, args, after := onCPU(cpu, path, args)
	p := &testkit.Proc{Name: name, Path: path, Args: args, Env: procEnv(env), Out: &testkit.SyncBuffer{Max: 64 << 10}}
	if err := p.Start(); err != nil {
		return nil, err
	}
	if err := after(p.Pid()); err != nil {
		p.Kill()
		return nil, fmt.Errorf("pin %s: %w", name, err)
	}
	return p, nil
}

// procEnv is the environment of a child beyond PATH and HOME: GOMAXPROCS and JOBWIRE_PPROF when set
// (to profile a run: JOBWIRE_PPROF=true, then /debug/pprof/ on the child's JOBWIRE_METRICS_ADDR), and env.
func procEnv(env map[string]string) []string {
	var list []string
	for _, name := range []string{"GOMAXPROCS", "JOBWIRE_PPROF"} {
		if v := os.Getenv(name); v != "" {
			list = append(list, name+"="+v)
		}
	}
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	return list
}

// exited reports an early exit of p with its output.
func exited(p *testkit.Proc) error {
	if !p.Exited() {
		return nil
	}
	return fmt.Errorf("%s exited (%v):\n%s", p.Name, p.Err(), strings.TrimSpace(p.Out.String()))
}

// rssOf returns the resident set size of a process in bytes, from /proc/<pid>/status.
func rssOf(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// streamHeadroom is how many more connections process pid can open: its soft RLIMIT_NOFILE (from
// /proc/<pid>/limits) less the descriptors it has open (/proc/<pid>/fd) and reserve. ok is false
// without /proc or without a limit.
func streamHeadroom(pid, reserve int) (headroom, limit, open int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0, 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "Max open files"); found {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0, 0, 0, false
			}
			if limit, err = strconv.Atoi(f[0]); err != nil { // "unlimited"
				return 0, 0, 0, false
			}
		}
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil || limit == 0 {
		return 0, 0, 0, false
	}
	return limit - len(fds) - reserve, limit, len(fds), true
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, p exits, or timeout passes.
func waitHTTP(ctx context.Context, p *testkit.Proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := exited(p); err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s: %v\n%s", p.Name, timeout, last, strings.TrimSpace(p.Out.String()))
}
