package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a child process with its output captured. Fill in the exported fields and call Start.
type Proc struct {
	Name string
	Path string
	Args []string
	// Env ("K=V" entries) is added to a minimal environment: PATH and HOME.
	Env []string
	// Out receives stdout and stderr; Start makes one when it is nil.
	Out *SyncBuffer

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts the process. On Linux the kernel kills it when this process dies.
func (p *Proc) Start() error {
	if p.Out == nil {
		p.Out = &SyncBuffer{}
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, p.Env...)
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd, p.done, p.err = cmd, make(chan struct{}), nil
	fmt.Fprintf(p.Out, "=== %s started, pid %d\n", p.Name, cmd.Process.Pid)
	go func(done chan struct{}) { p.err = cmd.Wait(); close(done) }(p.done)
	return nil
}

// Restart starts the process again with the same command; the previous one must have exited.
func (p *Proc) Restart() error {
	if !p.Exited() {
		return fmt.Errorf("restart %s: still running", p.Name)
	}
	return p.Start()
}

// Stop sends SIGTERM and waits up to timeout for the process to exit, then kills it. It returns an
// error unless the process exited cleanly in time. Safe on a nil, unstarted or exited Proc.
func (p *Proc) Stop(timeout time.Duration) error {
	if p == nil || p.cmd == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s exited with %v after SIGTERM", p.Name, p.err)
		}
		return nil
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM", p.Name, timeout)
	}
}

// Kill ends the process with SIGKILL (a crash) and waits for it. Safe on a nil, unstarted or exited
// Proc.
func (p *Proc) Kill() {
	if p == nil || p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended (nil before Start).
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended (nil while it runs).
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }
