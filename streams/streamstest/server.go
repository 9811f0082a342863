// Package streamstest runs real embedded nats-servers with JetStream for tests: a random client port, a
// monitoring port, a store in t.TempDir(), shut down by t.Cleanup. Every jobwire test that needs NATS
// uses it; nothing in jobwire mocks NATS.
package streamstest

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/streams"
)

// Server is a running embedded nats-server.
type Server struct {
	*server.Server
	// Opts are the options it was started with; Restart reuses them (same ports, same store).
	Opts *server.Options
	t    testing.TB
}

// Option changes the options of a server before it starts.
type Option func(*server.Options)

// WithStoreDir keeps the JetStream store in dir instead of a fresh temp dir.
func WithStoreDir(dir string) Option { return func(o *server.Options) { o.StoreDir = dir } }

// RunServer starts a JetStream nats-server on random loopback ports with its store in a temp dir. It is
// shut down when the test ends.
func RunServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := &server.Options{
		ServerName: "test",
		Host:       "127.0.0.1",
		Port:       FreePort(t),
		HTTPHost:   "127.0.0.1",
		HTTPPort:   FreePort(t),
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	for _, opt := range opts {
		opt(o)
	}
	s := &Server{Opts: o, t: t}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	ns, err := server.NewServer(s.Opts)
	if err != nil {
		s.t.Fatalf("new nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		s.t.Fatalf("nats-server not ready")
	}
	s.Server = ns
}

// Shutdown stops the server and waits until it is gone. Safe to call twice.
func (s *Server) Shutdown() {
	if s.Server != nil {
		s.Server.Shutdown()
		s.Server.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same ports with the same store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

// URL is the client URL (nats://127.0.0.1:port).
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.Opts.Host, strconv.Itoa(s.Opts.Port))
}

// MonitorURL is the base URL of the monitoring endpoint (/jsz, /connz, /varz).
func (s *Server) MonitorURL() string {
	return "http://" + net.JoinHostPort(s.Opts.HTTPHost, strconv.Itoa(s.Opts.HTTPPort))
}

// Connect returns a connection and JetStream context, closed when the test ends. The connection
// retries forever, like the services do, so it survives Restart.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Ensure connects and creates the jobwire topology with default settings (R1, file storage).
func (s *Server) Ensure(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return nc, js
}

// ConsumerCount returns the number of consumers on the server, as its monitoring /jsz reports it.
func (s *Server) ConsumerCount(t testing.TB) int {
	t.Helper()
	jsz, err := s.Jsz(&server.JSzOptions{})
	if err != nil {
		t.Fatalf("jsz: %v", err)
	}
	return jsz.Consumers
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond every 10 ms until it returns nil or timeout passes, then fails the test with the
// last error. Tests wait for conditions with it, never with a bare sleep.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
