package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobwire/jobwire/services/internal/cli"
	"github.com/jobwire/jobwire/services/internal/devserver"
)

// childEnv selects what a re-executed bench binary runs instead of the bench: "jobwire" runs the
// jobwire command line (cli.Main, the very code of the jobwire binary) with the process arguments;
// "nats" runs the embedded nats-server of `jobwire dev` (devserver) on its own.
const childEnv = "JOBWIRE_BENCH_CHILD"

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
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ns.Shutdown()
	ns.WaitForShutdown()
	return 0
}

// proc is a child process of the bench: a jobwire service, the nats-server, redis-server or node.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error
}

// startProc starts path with args and env (added to a minimal environment: no REDIS_URL, no NATS_URL
// unless given). The child is killed if the bench dies (Pdeathsig).
func startProc(name, path string, args []string, env map[string]string) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+v)
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{name: name, cmd: cmd, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Pid returns the process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// exited reports an early exit with the process output.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, p.out.String())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to grace, then kills. Safe to call twice.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// RSS returns the resident set size of the process in bytes, from /proc/<pid>/status.
func (p *proc) RSS() (int64, error) { return rssOf(p.Pid()) }

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

// tailBuffer keeps the last max bytes written (child output, shown when something fails).
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
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
func waitHTTP(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
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
	return fmt.Errorf("%s not ready within %s: %v\n%s", p.name, timeout, last, p.out.String())
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit (children inherit it) and returns it.
func raiseNoFile() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}
