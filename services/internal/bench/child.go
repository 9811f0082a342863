package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/jobwire/jobwire/services/internal/testkit"
)

// pipedProc is a child of the bench that it talks to over stdin and stdout, one line per message:
// text commands in, JSON reports out. The floor server and the watch-clients processes are such
// children, both this very binary (childEnv). A child exits when its stdin closes, so none outlives
// the bench.
type pipedProc struct {
	name  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan []byte // stdout, line by line; closed at EOF
	errs  *testkit.SyncBuffer
	done  chan struct{}
}

// startPiped runs this binary as the child named mode with args, on cpu when cpu >= 0.
func startPiped(name, mode string, args []string, cpu int) (*pipedProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	path, args, after := onCPU(cpu, self, args)
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), childEnv + "=" + mode}, procEnv(nil)...)
	p := &pipedProc{name: name, cmd: cmd, lines: make(chan []byte, 16), errs: &testkit.SyncBuffer{Max: 64 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.errs
	if p.in, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go p.read(out)
	if err := after(cmd.Process.Pid); err != nil {
		p.stop()
		return nil, fmt.Errorf("pin %s: %w", name, err)
	}
	return p, nil
}

func (p *pipedProc) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 256<<20) // a report carries every latency sample
	for sc.Scan() {
		p.lines <- append([]byte(nil), sc.Bytes()...)
	}
	close(p.lines)
	_ = p.cmd.Wait()
	close(p.done)
}

// exited reports whether the child has ended.
func (p *pipedProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// pid is the child's process id.
func (p *pipedProc) pid() int { return p.cmd.Process.Pid }

// send writes one command line.
func (p *pipedProc) send(format string, args ...any) error {
	if _, err := fmt.Fprintf(p.in, format+"\n", args...); err != nil {
		return fmt.Errorf("%s: %w%s", p.name, err, p.stderr())
	}
	return nil
}

// recv decodes the next report line into v, waiting up to timeout.
func (p *pipedProc) recv(v any, timeout time.Duration) error {
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.done
			return fmt.Errorf("%s exited (%v)%s", p.name, p.cmd.ProcessState, p.stderr())
		}
		if err := json.Unmarshal(line, v); err != nil {
			return fmt.Errorf("%s: report %.200q: %w", p.name, line, err)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s: no report within %s%s", p.name, timeout, p.stderr())
	}
}

func (p *pipedProc) stderr() string {
	if s := strings.TrimSpace(p.errs.String()); s != "" {
		return ":\n" + s
	}
	return ""
}

// stop closes the child's stdin, which ends it, and kills it if it is still there after 10 s.
func (p *pipedProc) stop() {
	_ = p.in.Close()
	go func() { // drain what it still reports, so that it is not blocked writing
		for range p.lines {
		}
	}()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// errStdinClosed is how a child's command loop ends when the bench closes its stdin.
var errStdinClosed = errors.New("stdin closed")

// commands calls handle with each line of stdin (a child's commands from the bench: a word, then its
// argument) until stdin closes or handle fails.
func commands(handle func(cmd, arg string) error) error {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 64<<20) // a watch-clients spec carries every request
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if cmd == "" {
			continue
		}
		if err := handle(cmd, arg); err != nil {
			return err
		}
	}
	return errStdinClosed
}

// reporter writes a child's JSON reports to stdout, one line each, from any goroutine.
type reporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *reporter) report(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.w.Write(append(b, '\n'))
}
