package cli

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/config"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/importer"
	"github.com/jobwire/jobwire/services/internal/jobtypes"
	"github.com/jobwire/jobwire/services/internal/jsmetrics"
	"github.com/jobwire/jobwire/services/internal/mirror"
	"github.com/jobwire/jobwire/services/internal/projector"
	"github.com/jobwire/jobwire/services/internal/telemetry"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/worker"
)

// service is a long-running part of a process.
type service interface {
	Start(ctx context.Context) error
	Stop()
}

// run starts the services in order, waits for ctx (a signal), and stops them in reverse order.
func run(ctx context.Context, log *slog.Logger, svcs ...service) error {
	started := make([]service, 0, len(svcs))
	stopAll := func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Stop()
		}
	}
	for _, s := range svcs {
		startCtx, cancel := context.WithTimeout(ctx, time.Minute)
		err := s.Start(startCtx)
		cancel()
		if err != nil {
			stopAll()
			return err
		}
		started = append(started, s)
	}
	<-ctx.Done()
	log.Info("shutting down")
	stopAll()
	return nil
}

// process holds what every service process shares: configuration, logger, NATS, metrics.
type process struct {
	env *config.Env
	log *slog.Logger
	nc  *nats.Conn
	// stopTraces flushes the traces (telemetry.Start) when the process ends.
	stopTraces func(context.Context) error
	js         jetstream.JetStream
	reg        *prometheus.Registry
	topo       streams.Config
	// topoMode overrides JOBWIRE_TOPOLOGY ("ensure" or "check").
	topoMode string
	// jwks, when JOBWIRE_JWT_JWKS_URL is set, keeps the identity provider's keys fresh until close.
	jwks *auth.RemoteJWKS
}

func newProcess(name, logFormat string) *process {
	env := config.FromOS()
	p := &process{env: env, log: newLogger(env, logFormat).With("service", name), reg: prometheus.NewRegistry()}
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.topo = streams.Config{
		Replicas:       env.Int("JOBWIRE_REPLICAS"),
		EventsMaxAge:   env.Duration("JOBWIRE_EVENTS_MAX_AGE"),
		StateRetention: env.Duration("JOBWIRE_STATE_RETENTION"),
	}
	return p
}

// connect connects to NATS (url, or NATS_URL) and ensures the topology.
// asyncAckTimeout is how long an asynchronous publish (a batch submit's) waits for its ack before it
// fails and frees its place among the pending ones.
const asyncAckTimeout = 10 * time.Second

func (p *process) connect(ctx context.Context, name, url string) error {
	stop, err := telemetry.Start(ctx, name)
	if err != nil {
		return err
	}
	p.stopTraces = stop
	o := worker.ConnectOptionsFromEnv(name)
	o.Logger = p.log
	if url != "" {
		o.URL = url
	}
	nc, err := worker.Connect(o)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(asyncAckTimeout))
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstream context: %w", err)
	}
	p.nc, p.js = nc, js
	p.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "jobwire_nats_connected", Help: "1 while the NATS connection is up."},
		func() float64 {
			if nc.IsConnected() {
				return 1
			}
			return 0
		}))
	p.reg.MustRegister(jsmetrics.New(js, p.log))
	if err := p.ensureTopology(ctx); err != nil {
		nc.Close()
		return fmt.Errorf("ensure topology (is NATS at %s reachable, with JetStream?): %w", o.URL, err)
	}
	return nil
}

// ensureTopology creates (JOBWIRE_TOPOLOGY=ensure) or checks (check) the topology. A NATS cluster that
// is still forming, or electing leaders after a node loss, answers slowly: it keeps trying, with a
// bounded wait per attempt, until it works or ctx ends.
func (p *process) ensureTopology(ctx context.Context) error {
	mode := p.topoMode
	if mode == "" {
		mode = p.env.String("JOBWIRE_TOPOLOGY")
	}
	if mode != "ensure" && mode != "check" {
		return fmt.Errorf("JOBWIRE_TOPOLOGY=%q: want ensure or check", mode)
	}
	retry := streams.Retry{Wait: time.Second, MaxWait: 10 * time.Second, Timeout: 20 * time.Second,
		Final:   func(error) bool { return false },
		OnRetry: func(err error, wait time.Duration) { p.log.Warn("ensure topology, retrying", "err", err, "in", wait) }}
	return retry.Do(ctx, func(ctx context.Context) error {
		if mode == "check" {
			return streams.Check(ctx, p.js)
		}
		return streams.Ensure(ctx, p.js, p.topo)
	})
}

func (p *process) close() {
	if p.jwks != nil {
		p.jwks.Close()
	}
	if p.nc != nil {
		_ = p.nc.Drain()
	}
	if p.stopTraces != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.stopTraces(ctx); err != nil {
			p.log.Warn("flush traces", "err", err)
		}
	}
}

// gatewayService builds the gateway from the environment. secret (HS256) may be empty when
// JOBWIRE_JWT_PUBLIC_KEYS or JOBWIRE_JWT_JWKS_URL is set; the gateway then issues no stream tokens.
func (p *process) gatewayService(secret []byte) (*gateway.Gateway, error) {
	env := p.env
	iss, aud := env.String("JOBWIRE_JWT_ISSUER"), env.String("JOBWIRE_JWT_AUDIENCE")
	verifier, err := p.verifier(secret)
	if err != nil {
		return nil, err
	}
	var signer *auth.Signer
	if len(secret) > 0 {
		// An operator's stream tokens carry the role where the verifier looks for it (the console).
		signer = auth.NewSigner(secret, iss, auth.SignAudience(aud), auth.SignRolesClaim(env.String("JOBWIRE_JWT_ROLES_CLAIM")))
	}
	rate, err := gateway.ParseRate(env.String("JOBWIRE_SUBMIT_RATE"))
	if err != nil {
		return nil, fmt.Errorf("JOBWIRE_SUBMIT_RATE: %w", err)
	}
	kv, err := p.js.KeyValue(context.Background(), streams.BucketLibrary)
	if err != nil {
		return nil, fmt.Errorf("open library: %w", err)
	}
	cfg := gateway.Config{
		Addr:              env.String("JOBWIRE_HTTP_ADDR"),
		BodyLimit:         env.Int("JOBWIRE_BODY_LIMIT"),
		MaxStreamsPerUser: env.Int("JOBWIRE_SSE_MAX_PER_USER"),
		MaxStreams:        env.Int("JOBWIRE_SSE_MAX_STREAMS"),
		StateRetention:    p.topo.StateRetention,
		MaxRunAhead:       p.topo.MaxRunAhead(),
		StreamTokenTTL:    env.Duration("JOBWIRE_STREAM_TOKEN_TTL"),
		SubmitRate:        rate,
		SubmitBurst:       env.Int("JOBWIRE_SUBMIT_BURST"),
		CORSOrigins:       strings.Split(env.String("JOBWIRE_CORS_ORIGINS"), ","),
		CookieSecure:      env.Bool("JOBWIRE_COOKIE_SECURE"),
	}
	cfg.SSE.Heartbeat = env.Duration("JOBWIRE_SSE_HEARTBEAT")
	cfg.SSE.MaxDuration = env.Duration("JOBWIRE_SSE_MAX_DURATION")
	cfg.SSE.WriteTimeout = env.Duration("JOBWIRE_SSE_WRITE_TIMEOUT")
	cfg.Relay.SnapshotMemory = env.Int("JOBWIRE_SSE_SNAPSHOT_MEMORY")
	cfg.Ticker.AckWait = env.Duration("JOBWIRE_TICK_ACK_WAIT")
	if err := env.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("JOBWIRE_CORS_ORIGINS: %w", err)
	}
	return gateway.New(cfg, gateway.Deps{NC: p.nc, JS: p.js, Verifier: verifier, Signer: signer,
		Library: importer.NewLibrary(kv), Registry: p.reg, Logger: p.log}), nil
}

// verifier builds the token verifier from the JOBWIRE_JWT_* variables: the HS256 secret, and public keys
// from a file (JOBWIRE_JWT_PUBLIC_KEYS) or an identity provider's JWKS URL (JOBWIRE_JWT_JWKS_URL).
func (p *process) verifier(secret []byte) (*auth.Verifier, error) {
	env := p.env
	opts := []auth.VerifierOption{auth.WithLeeway(env.Duration("JOBWIRE_JWT_LEEWAY")),
		auth.WithMaxLifetime(env.Duration("JOBWIRE_JWT_MAX_LIFETIME")),
		auth.WithOperatorRole(env.String("JOBWIRE_JWT_ROLES_CLAIM"), env.String("JOBWIRE_OPERATOR_ROLE"))}
	if iss := env.String("JOBWIRE_JWT_ISSUER"); iss != "" {
		opts = append(opts, auth.WithIssuer(iss))
	}
	if aud := env.String("JOBWIRE_JWT_AUDIENCE"); aud != "" {
		opts = append(opts, auth.WithAudience(aud))
	}
	path, jwksURL, refresh := env.String("JOBWIRE_JWT_PUBLIC_KEYS"), env.String("JOBWIRE_JWT_JWKS_URL"), env.Duration("JOBWIRE_JWT_JWKS_REFRESH")
	if err := env.Err(); err != nil {
		return nil, err
	}
	switch {
	case path != "" && jwksURL != "":
		return nil, errors.New("set JOBWIRE_JWT_PUBLIC_KEYS or JOBWIRE_JWT_JWKS_URL, not both")
	case path != "":
		ks, err := auth.LoadPublicKeys(path)
		if err != nil {
			return nil, fmt.Errorf("JOBWIRE_JWT_PUBLIC_KEYS: %w", err)
		}
		opts = append(opts, auth.WithPublicKeys(ks))
		p.log.Info("jwt public keys loaded", "path", path, "keys", ks.Len())
	case jwksURL != "":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client, err := jwksClient(env.String("JOBWIRE_JWT_JWKS_CA"))
		if err != nil {
			return nil, fmt.Errorf("JOBWIRE_JWT_JWKS_CA: %w", err)
		}
		r, err := auth.NewRemoteJWKS(ctx, jwksURL, auth.WithHTTPClient(client), auth.WithRefresh(refresh),
			auth.WithLogger(p.log))
		if err != nil {
			return nil, fmt.Errorf("JOBWIRE_JWT_JWKS_URL: %w", err)
		}
		p.jwks = r
		opts = append(opts, auth.WithRemoteKeys(r))
		p.log.Info("jwt keys fetched", "url", jwksURL, "keys", len(r.Keys()), "refresh", refresh)
	}
	verifier, err := auth.NewVerifier(secret, opts...)
	if err != nil {
		return nil, fmt.Errorf("JOBWIRE_JWT_SECRET / JOBWIRE_JWT_PUBLIC_KEYS / JOBWIRE_JWT_JWKS_URL / JOBWIRE_JWT_LEEWAY / JOBWIRE_JWT_MAX_LIFETIME: %w", err)
	}
	return verifier, nil
}

// jwksClient fetches JWKS, trusting the CA certificates of the PEM file caFile instead of the system
// roots when it is set (a provider behind a private CA).
func jwksClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return &http.Client{Timeout: auth.DefaultJWKSFetchTimeout}, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: auth.DefaultJWKSFetchTimeout, Transport: transport}, nil
}

// workerService builds the worker that serves jobwire's own job types (playlist.import, and noop
// when JOBWIRE_NOOP_JOBS is set) on the public SDK, configured by the same JOBWIRE_WORKER_* variables
// as any worker built on it.
func (p *process) workerService() (service, error) {
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	cfg.Logger = p.log
	kv, err := p.js.KeyValue(context.Background(), streams.BucketLibrary)
	if err != nil {
		return nil, fmt.Errorf("open library: %w", err)
	}
	im := &importer.Importer{Library: importer.NewLibrary(kv), Resolver: importer.LocalResolver{Delay: p.env.Duration("JOBWIRE_IMPORT_TRACK_DELAY")}}
	noop := p.env.Bool("JOBWIRE_NOOP_JOBS")
	if err := p.env.Err(); err != nil {
		return nil, err
	}
	w, err := worker.New(p.nc, cfg)
	if err != nil {
		return nil, err
	}
	if err := jobtypes.Register(w, im, noop); err != nil {
		return nil, err
	}
	p.reg.MustRegister(w.Collectors()...)
	return workerService{w, cfg.ShutdownGrace}, nil
}

// workerService runs a worker as a service of the process: Stop waits for the shutdown grace and a
// little more for handlers to return after it.
type workerService struct {
	w     *worker.Worker
	grace time.Duration
}

func (s workerService) Start(ctx context.Context) error { return s.w.Start(ctx) }

func (s workerService) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), s.grace+10*time.Second)
	defer cancel()
	_ = s.w.Stop(ctx)
}

func (p *process) projectorService() *projector.Projector {
	return projector.New(projector.Config{StateRetention: p.topo.StateRetention}, p.js, p.reg, p.log)
}

// mirrorService builds the legacy mirror, or nil when REDIS_URL is unset.
func (p *process) mirrorService() (service, error) {
	url := p.env.String("REDIS_URL")
	if url == "" {
		return nil, nil
	}
	cfg := mirror.Config{
		RedisURL: url,
		Queue:    p.env.String("JOBWIRE_LEGACY_QUEUE"),
		MaxAge:   p.env.Duration("JOBWIRE_LEGACY_MAX_AGE"),
		MaxCount: p.env.Int("JOBWIRE_LEGACY_MAX_COUNT"),
	}
	if err := p.env.Err(); err != nil {
		return nil, err
	}
	return mirror.New(cfg, p.js, p.reg, p.log)
}

// gatewayOps serves the gateway's /metrics (and health) on JOBWIRE_METRICS_ADDR, never on the API's
// port: metrics tell who uses the system and how much.
func (p *process) gatewayOps(gw *gateway.Gateway) *opsServer {
	return &opsServer{addr: p.env.String("JOBWIRE_METRICS_ADDR"), p: p, ready: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return gw.Ready(ctx)
	}}
}

// opsServer serves /metrics, /healthz and /readyz on a listener of their own.
type opsServer struct {
	addr  string
	p     *process
	srv   *http.Server
	ready func() error
}

func (o *opsServer) Start(context.Context) error {
	if o.addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.p.reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		err := errors.New("nats not connected")
		if o.p.nc.IsConnected() {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			err = streams.Check(ctx, o.p.js)
			cancel()
		}
		if err == nil && o.ready != nil {
			err = o.ready()
		}
		if err != nil {
			http.Error(w, `{"status":"not ready"}`, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"ready"}`))
	})
	if o.p.env.Bool("JOBWIRE_PPROF") {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("metrics listener %s: %w", o.addr, err)
	}
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go o.srv.Serve(ln)
	o.p.log.Info("metrics listening", "addr", ln.Addr().String())
	return nil
}

func (o *opsServer) Stop() {
	if o.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = o.srv.Shutdown(ctx)
	}
}

func newGatewayCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gateway",
		Short: "Run the HTTP gateway (REST API, SSE relay, web page) against NATS_URL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newProcess("gateway", "json")
			secret := p.env.String("JOBWIRE_JWT_SECRET")
			if secret == "" && p.env.String("JOBWIRE_JWT_PUBLIC_KEYS") == "" && p.env.String("JOBWIRE_JWT_JWKS_URL") == "" {
				return errors.New("JOBWIRE_JWT_SECRET (at least 32 bytes), JOBWIRE_JWT_PUBLIC_KEYS or JOBWIRE_JWT_JWKS_URL is required")
			}
			if err := p.connect(cmd.Context(), "jobwire-gateway", ""); err != nil {
				return err
			}
			defer p.close()
			gw, err := p.gatewayService([]byte(secret))
			if err != nil {
				return err
			}
			return run(cmd.Context(), p.log, gw, p.gatewayOps(gw))
		},
	}
}

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run jobs from the JOBS work queue against NATS_URL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newProcess("worker", "json")
			if err := p.connect(cmd.Context(), "jobwire-worker", ""); err != nil {
				return err
			}
			defer p.close()
			w, err := p.workerService()
			if err != nil {
				return err
			}
			return run(cmd.Context(), p.log, &opsServer{addr: p.env.String("JOBWIRE_METRICS_ADDR"), p: p}, w)
		},
	}
}

func newProjectorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "projector",
		Short: "Fold JOB_EVENTS into the JOB_STATE bucket",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newProcess("projector", "json")
			if err := p.connect(cmd.Context(), "jobwire-projector", ""); err != nil {
				return err
			}
			defer p.close()
			return run(cmd.Context(), p.log, &opsServer{addr: p.env.String("JOBWIRE_METRICS_ADDR"), p: p}, p.projectorService())
		},
	}
}

func newMirrorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "mirror",
		Short: "Mirror job state into Redis in BullMQ's layout for legacy readers (needs REDIS_URL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newProcess("mirror", "json")
			if p.env.String("REDIS_URL") == "" {
				return errors.New("REDIS_URL is not set: the mirror has nothing to write to")
			}
			if err := p.connect(cmd.Context(), "jobwire-mirror", ""); err != nil {
				return err
			}
			defer p.close()
			m, err := p.mirrorService()
			if err != nil {
				return err
			}
			return run(cmd.Context(), p.log, &opsServer{addr: p.env.String("JOBWIRE_METRICS_ADDR"), p: p}, m)
		},
	}
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
