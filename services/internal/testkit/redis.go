package testkit

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/jobwire/jobwire/streams/streamstest"
)

// Redis is a real redis-server on a free loopback port, killed when the test ends.
type Redis struct {
	t    testing.TB
	port int
	proc *Proc
}

// StartRedis starts redis-server without persistence, its dir in t.TempDir() (extra arguments
// override), and waits until it answers PING. When redis-server is not installed it skips the test,
// or fails it under JOBWIRE_REQUIRE_BULLMQ=1.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("JOBWIRE_REQUIRE_BULLMQ") == "1" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed (apt-get install redis-server)")
	}
	r := &Redis{t: t, port: FreePort(t)}
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir()}, extra...)
	r.proc = StartProc(t, "redis-server", "redis-server", nil, args...)
	r.waitReady()
	return r
}

// waitReady waits until the server answers PING, and fails the test if it exits.
func (r *Redis) waitReady() {
	r.t.Helper()
	c := r.newClient()
	defer c.Close()
	streamstest.WaitFor(r.t, 30*time.Second, func() error {
		if r.proc.Exited() {
			r.t.Fatalf("redis-server exited: %v", r.proc.Err())
		}
		return c.Ping(context.Background()).Err()
	})
}

// Kill stops the server abruptly (SIGKILL). Safe to call twice.
func (r *Redis) Kill() { r.proc.Kill() }

// Restart kills the server if it runs and starts it again on the same port and dir.
func (r *Redis) Restart() {
	r.t.Helper()
	r.proc.Kill()
	if err := r.proc.Restart(); err != nil {
		r.t.Fatal(err)
	}
	r.waitReady()
}

// Addr is the server's address, 127.0.0.1:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// URL is the server's URL with database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Client returns a go-redis client of the server, closed when the test ends.
func (r *Redis) Client(t testing.TB) *redis.Client {
	c := r.newClient()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newClient makes a client that sends no CLIENT SETINFO and has maintenance notifications off.
func (r *Redis) newClient() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                     r.Addr(),
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}
