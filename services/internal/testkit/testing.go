package testkit

import (
	"net"
	"strconv"
	"testing"

	"github.com/jobwire/jobwire/streams/streamstest"
)

// StartProc starts bin for the test, failing it when bin cannot start. The process is killed when
// the test ends, and its last 150 lines of output are logged if the test failed.
func StartProc(t testing.TB, name, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Path: bin, Args: args, Env: env}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s (last 150 lines) ---\n%s", name, p.Out.Tail(150))
		}
	})
	return p
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	return streamstest.FreePort(t)
}

// FreeAddr returns a loopback address (127.0.0.1:port) that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
