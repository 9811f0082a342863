package deploytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a process started by a test (nats-server, a jobwire service, redis-server). It is killed when
// the test ends, and its output is logged when the test failed.
type proc struct {
	name string
	bin  string
	args []string
	env  []string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc runs bin with args and env (added to a minimal environment).
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, bin: bin, args: args, env: env, out: &syncBuffer{}}
	p.start(t)
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s (last 150 lines) ---\n%s", name, tail(p.out.String(), 150))
		}
	})
	return p
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, p.env...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.done, p.err = cmd, make(chan struct{}), nil
	fmt.Fprintf(p.out, "=== %s started, pid %d\n", p.name, cmd.Process.Pid)
	go func(done chan struct{}) { p.err = cmd.Wait(); close(done) }(p.done)
}

// restart starts the process again with the same command; the previous one must have exited.
func (p *proc) restart(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	default:
		t.Fatalf("restart %s: still running", p.name)
	}
	p.start(t)
}

// stop sends SIGTERM and waits up to timeout for the process to exit; a non-zero exit fails the test.
func (p *proc) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s exited with %v after SIGTERM", p.name, p.err)
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s of SIGTERM", p.name, timeout)
	}
}

// kill ends the process with SIGKILL (a crash) and waits for it. Safe to call on an exited process.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 50 ms until it returns nil or timeout passes, then fails the test with the
// last error.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// poll is waitFor without the test: it returns cond's last error at the deadline.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpGet returns the status and body of GET url (with a 5 s timeout).
func httpGet(url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// waitHTTP200 waits until GET url answers 200 (a readiness probe), or the process p exits.
func waitHTTP200(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "GET "+url, func() error {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		}
		code, body, err := httpGet(url)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("status %d: %s", code, body)
		}
		return nil
	})
}
