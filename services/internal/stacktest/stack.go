// Package stacktest runs a whole jobwire in one test process: a real embedded nats-server, the
// projector, a worker serving jobwire's own job types (the real importer, and noop) on the public SDK,
// and a gateway on a loopback port.
// Tests of the CLI, the web page and the end-to-end flows build on it.
package stacktest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/importer"
	"github.com/jobwire/jobwire/services/internal/jobtypes"
	"github.com/jobwire/jobwire/services/internal/projector"
	"github.com/jobwire/jobwire/services/internal/sse"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
	"github.com/jobwire/jobwire/worker"
	"github.com/jobwire/jobwire/worker/workertest"
)

// Secret signs the tokens of the stack.
const Secret = "stacktest-secret-stacktest-secret-0123456789"

// Options tune the stack.
type Options struct {
	// TrackDelay is the importer's per-track delay (so progress can be watched).
	TrackDelay time.Duration
	// Gateway adjusts the gateway configuration before it starts.
	Gateway func(*gateway.Config)
	// Worker adjusts the worker's configuration.
	Worker func(*worker.Config)
	// Types are more job types for the worker to serve.
	Types []worker.JobType
	// ServerOptions are passed to the NATS test server.
	ServerOptions []streamstest.Option
}

// Stack is a running jobwire.
type Stack struct {
	Server  *streamstest.Server
	NC      *nats.Conn
	JS      jetstream.JetStream
	Gateway *gateway.Gateway
	// URL is the gateway's base URL (http://127.0.0.1:port).
	URL      string
	Signer   *auth.Signer
	Registry *prometheus.Registry
	Library  *importer.Library
	Worker   *worker.Worker
}

// Logger returns a logger that is silent unless JOBWIRE_TEST_LOG is set (workertest.Logger).
func Logger() *slog.Logger { return workertest.Logger() }

// Start runs a stack for the test; everything stops when the test ends.
func Start(t testing.TB, o Options) *Stack {
	t.Helper()
	srv := streamstest.RunServer(t, o.ServerOptions...)
	nc, js := srv.Ensure(t)
	log := Logger()
	ctx := context.Background()
	reg := prometheus.NewRegistry()

	proj := projector.New(projector.Config{}, js, reg, log)
	if err := proj.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Stop)

	kv, err := js.KeyValue(ctx, streams.BucketLibrary)
	if err != nil {
		t.Fatal(err)
	}
	lib := importer.NewLibrary(kv)
	im := &importer.Importer{Library: lib, Resolver: importer.LocalResolver{Delay: o.TrackDelay}}
	im.Limits.SetDefaults()
	s := &Stack{Server: srv, NC: nc, JS: js, Registry: reg, Library: lib, Signer: auth.NewSigner([]byte(Secret), "")}
	cfg := worker.Config{Logger: log, ShutdownGrace: time.Second, Defaults: worker.TypeOptions{ProgressInterval: 20 * time.Millisecond}}
	if o.Worker != nil {
		o.Worker(&cfg)
	}
	s.Worker = StartWorker(t, nc, cfg, func(w *worker.Worker) error {
		if err := jobtypes.Register(w, im, true); err != nil {
			return err
		}
		for _, typ := range o.Types {
			if err := w.Register(typ); err != nil {
				return err
			}
		}
		return nil
	})
	reg.MustRegister(s.Worker.Collectors()...)

	verifier, err := auth.NewVerifier([]byte(Secret))
	if err != nil {
		t.Fatal(err)
	}
	gcfg := gateway.Config{Addr: "127.0.0.1:0", SSE: sse.Config{Heartbeat: time.Second}}
	if o.Gateway != nil {
		o.Gateway(&gcfg)
	}
	gw := gateway.New(gcfg, gateway.Deps{NC: nc, JS: js, Verifier: verifier, Signer: s.Signer, Library: lib, Registry: reg, Logger: log})
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	s.Gateway, s.URL = gw, "http://"+gw.Addr()
	return s
}

// StartWorker starts a worker on nc whose types register adds, and stops it when the test ends.
func StartWorker(t testing.TB, nc *nats.Conn, cfg worker.Config, register func(*worker.Worker) error) *worker.Worker {
	t.Helper()
	w, err := worker.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := register(w); err != nil {
		t.Fatal(err)
	}
	workertest.Run(t, w)
	return w
}

// Token returns a one-hour token for user.
func (s *Stack) Token(t testing.TB, user string) string {
	t.Helper()
	tok, err := s.Signer.Sign(user, time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Client returns an API client for user.
func (s *Stack) Client(t testing.TB, user string) *api.Client {
	return api.NewClient(s.URL, s.Token(t, user))
}

// Operator returns an API client for user with the operator role.
func (s *Stack) Operator(t testing.TB, user string) *api.Client {
	t.Helper()
	tok, err := s.Signer.Sign(user, time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	return api.NewClient(s.URL, tok)
}
