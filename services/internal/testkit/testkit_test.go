package testkit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobwire/jobwire/streams/streamstest"
)

// childEnv makes the test binary a child that prints "ready" and exits with the given code on SIGTERM.
const childEnv = "TESTKIT_CHILD_EXIT"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		code, _ := strconv.Atoi(v)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("ready")
		<-sig
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// startChild starts the test binary as a child that exits with code on SIGTERM.
func startChild(t *testing.T, code int) *Proc {
	t.Helper()
	p := StartProc(t, "child", os.Args[0], []string{childEnv + "=" + strconv.Itoa(code)})
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(p.Out.String(), "ready") {
			return fmt.Errorf("child not ready: %q", p.Out.String())
		}
		return nil
	})
	return p
}

func TestSyncBufferKeepsTheTail(t *testing.T) {
	b := &SyncBuffer{Max: 4}
	fmt.Fprint(b, "abc")
	fmt.Fprint(b, "def")
	if got := b.String(); got != "cdef" {
		t.Fatalf("bounded buffer holds %q, want %q", got, "cdef")
	}
	u := &SyncBuffer{}
	fmt.Fprint(u, "1\n2\n3")
	if got := u.Tail(2); got != "2\n3" {
		t.Fatalf("Tail(2) = %q", got)
	}
}

func TestProcStopRestartKill(t *testing.T) {
	p := startChild(t, 0)
	if p.Exited() || p.Err() != nil || p.Pid() <= 0 {
		t.Fatalf("running child: exited %v, err %v, pid %d", p.Exited(), p.Err(), p.Pid())
	}
	if err := p.Restart(); err == nil {
		t.Fatal("restarted a running process")
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	p.Kill()
	p.Kill()
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Kill")
	}
	if p.Err() == nil {
		t.Fatal("killed process reports a clean exit")
	}
	if n := strings.Count(p.Out.String(), "=== child started"); n != 2 {
		t.Fatalf("output shows %d starts, want 2:\n%s", n, p.Out)
	}
	var none *Proc
	if err := none.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	none.Kill()
}

func TestProcStopReportsAnExitCode(t *testing.T) {
	p := startChild(t, 3)
	if err := p.Stop(10 * time.Second); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Stop = %v, want exit status 3", err)
	}
}

func TestProcStartFails(t *testing.T) {
	p := &Proc{Name: "missing", Path: "/nonexistent/binary"}
	if err := p.Start(); err == nil || !strings.Contains(err.Error(), "start missing") {
		t.Fatalf("Start = %v", err)
	}
	if p.Exited() {
		t.Fatal("unstarted process reports an exit")
	}
}

func TestFreeAddr(t *testing.T) {
	l, err := net.Listen("tcp", FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestRedisKillRestart(t *testing.T) {
	r := StartRedis(t, "--databases", "2")
	c := r.Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := r.URL(); got != "redis://"+r.Addr()+"/0" {
		t.Fatalf("URL %q", got)
	}
	r.Kill()
	r.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("killed redis-server answers")
	}
	r.Restart()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("restarted redis-server on %s: %v", r.Addr(), err)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("restarted redis-server kept data without persistence: %d %v", n, err)
	}
}
