// Package gateway is jobwire's HTTP front door (Fiber v2): the REST API, the SSE streams relayed from one
// KV watch per process, the legacy BullMQ-era routes, health, metrics and the web page.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/console"
	"github.com/jobwire/jobwire/services/internal/jobstore"
	"github.com/jobwire/jobwire/services/internal/registry"
	"github.com/jobwire/jobwire/services/internal/relay"
	"github.com/jobwire/jobwire/services/internal/sse"
	"github.com/jobwire/jobwire/services/internal/telemetry"
	"github.com/jobwire/jobwire/services/internal/ticker"
	"github.com/jobwire/jobwire/services/internal/web"
	"github.com/jobwire/jobwire/streams"
)

// Defaults of Config.
const (
	DefaultAddr              = ":8080"
	DefaultBodyLimit         = 1 << 20
	DefaultMaxStreamsPerUser = 8
	DefaultMaxStreams        = 20000
	DefaultSnapshotJobs      = 200
	DefaultMaxResumeJobs     = 10000
	DefaultStreamTokenTTL    = 15 * time.Minute
	DefaultSubmitBurst       = 20
)

// DefaultSubmitRate is the default of Config.SubmitRate: 10 submits per second per user.
var DefaultSubmitRate = Rate{N: 10, Per: time.Second}

// Config configures the gateway. Zero fields take the documented defaults.
type Config struct {
	// Addr is the listen address (JOBWIRE_HTTP_ADDR). Default ":8080".
	Addr string
	// BodyLimit is the largest request body in bytes (JOBWIRE_BODY_LIMIT). Default 1 MiB.
	BodyLimit int
	// SSE configures the streams (heartbeat, maximum duration, write timeout).
	SSE sse.Config
	// Relay configures the hub; Relay.SnapshotMemory bounds the job states kept encoded for streams
	// that open or resume (JOBWIRE_SSE_SNAPSHOT_MEMORY, bytes). Default relay.DefaultSnapshotMemory.
	Relay relay.Config
	// MaxStreamsPerUser caps one user's open streams on this gateway (JOBWIRE_SSE_MAX_PER_USER).
	// Default 8. Past it: 429 with Retry-After.
	MaxStreamsPerUser int
	// MaxStreams caps all open streams on this gateway (JOBWIRE_SSE_MAX_STREAMS). Default 20000.
	// Past it: 503 with Retry-After.
	MaxStreams int
	// SnapshotJobs bounds the jobs sent when a multiplexed stream opens without a position, or after a
	// reset (newest first). Default 200.
	SnapshotJobs int
	// MaxResumeJobs bounds the jobs a resuming multiplexed stream catches up on (every job changed since
	// the client's position, whatever the user's job count); past it the stream resets. Default 10000.
	MaxResumeJobs int
	// StateRetention is how long finished jobs stay in JOB_STATE (JOBWIRE_STATE_RETENTION); after it,
	// reads fold the job's events instead. Default 24 h.
	StateRetention time.Duration
	// MaxRunAhead is how far ahead a submit's runAt may be (streams.Config.MaxRunAhead: the events'
	// retention less the state's). Default that of the default topology, 6 days.
	MaxRunAhead time.Duration
	// StreamTokenTTL is the lifetime of tokens from POST /v1/stream-tokens. Default 15 min.
	StreamTokenTTL time.Duration
	// SubmitRate limits submissions (POST /v1/jobs, POST /library/sync, retries) per user on this
	// gateway (JOBWIRE_SUBMIT_RATE, JOBWIRE_SUBMIT_BURST): a token bucket refilled at SubmitRate holding
	// SubmitBurst. Default 10/s, burst 20; a negative SubmitRate.N turns the limit off. Past it: 429
	// rate_limited with Retry-After. Streams are never limited by it.
	SubmitRate  Rate
	SubmitBurst int
	// CORSOrigins are the exact origins ("https://app.example.com") that browsers may call the API
	// from, with credentials (JOBWIRE_CORS_ORIGINS). Default none: no CORS headers at all.
	CORSOrigins []string
	// CookieSecure sets Secure on the session cookie even for plain-http requests
	// (JOBWIRE_COOKIE_SECURE); it is always set on https requests.
	CookieSecure bool
	// Ticker configures the consumer of periodic jobs' ticks that every gateway runs.
	Ticker ticker.Config
	// Console paces the operators' console (GET /v1/operator/events): its snapshots, dead-letter counts
	// and the gateways' stats. Zero fields take console's defaults.
	Console console.Config
}

// Validate reports configuration errors SetDefaults cannot fix.
func (c *Config) Validate() error {
	_, err := parseOrigins(c.CORSOrigins)
	return err
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.MaxStreamsPerUser == 0 {
		c.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.SnapshotJobs == 0 {
		c.SnapshotJobs = DefaultSnapshotJobs
	}
	if c.MaxResumeJobs == 0 {
		c.MaxResumeJobs = DefaultMaxResumeJobs
	}
	if c.StateRetention == 0 {
		c.StateRetention = streams.DefaultStateRetention
	}
	if c.StreamTokenTTL == 0 {
		c.StreamTokenTTL = DefaultStreamTokenTTL
	}
	if c.MaxRunAhead == 0 {
		c.MaxRunAhead = streams.Config{StateRetention: c.StateRetention}.MaxRunAhead()
	}
	if c.SubmitRate == (Rate{}) {
		c.SubmitRate = DefaultSubmitRate
	}
	if c.SubmitBurst <= 0 {
		c.SubmitBurst = DefaultSubmitBurst
	}
}

// Deps are the gateway's collaborators.
type Deps struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Verifier *auth.Verifier
	// Signer issues stream tokens; nil when the gateway has no HS256 secret (POST /v1/stream-tokens
	// then answers 403, and browsers use the session cookie).
	Signer *auth.Signer
	// Library lists a user's tracks (GET /v1/library).
	Library LibraryLister
	// Registry receives the gateway's metrics (served by the process on its own listener, never on
	// the API's port).
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

// LibraryLister reads a user's library.
type LibraryLister interface {
	List(ctx context.Context, owner, cursor string, limit int) (api.TrackList, error)
}

// Gateway is the HTTP service.
type Gateway struct {
	cfg       Config
	deps      Deps
	log       *slog.Logger
	app       *fiber.App
	store     *jobstore.Store
	hub       *relay.Hub
	pool      *sse.Pool
	limits    *streamLimits
	submitted *prometheus.CounterVec
	submits   *submitLimiter
	origins   map[string]bool
	types     *registry.Registry
	typesKV   jetstream.KeyValue // JOB_TYPES, for operators' control entries
	ticker    *ticker.Ticker
	console   *console.Console

	mu       sync.Mutex
	ln       net.Listener
	serveErr chan error
	started  bool
	stopped  bool
}

// New builds a gateway; Start opens the watch and listens.
func New(cfg Config, d Deps) *Gateway {
	cfg.SetDefaults()
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	g := &Gateway{cfg: cfg, deps: d, log: d.Logger}
	g.pool = sse.NewPool(cfg.SSE, sse.NewMetrics(d.Registry), d.Logger)
	g.limits = newStreamLimits(cfg.MaxStreamsPerUser, cfg.MaxStreams, d.Registry)
	g.submitted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_jobs_submitted_total",
		Help: "Jobs accepted by this gateway, by type (a repeated Idempotency-Key is not counted)."}, []string{"type"})
	d.Registry.MustRegister(g.submitted)
	g.submits = newSubmitLimiter(cfg.SubmitRate, cfg.SubmitBurst, d.Registry)
	g.ticker = ticker.New(cfg.Ticker, d.JS, g.submitTick, d.Registry, d.Logger)
	origins, err := parseOrigins(cfg.CORSOrigins)
	if err != nil {
		d.Logger.Warn("gateway: ignoring CORS origins (call Config.Validate first)", "err", err)
	}
	g.origins = origins
	g.app = fiber.New(fiber.Config{
		AppName:               "jobwire",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second, // streams are hijacked and set their own deadlines
		IdleTimeout:           60 * time.Second,
		DisableStartupMessage: true,
		ErrorHandler:          g.errorHandler,
		ReadBufferSize:        8192,
	})
	g.app.Server().KeepHijackedConns = true
	// Let the goroutines that served a burst of stream requests go soon after (the streams need none).
	g.app.Server().MaxIdleWorkerDuration = 2 * time.Second
	g.routes()
	return g
}

// App exposes the Fiber app (tests).
func (g *Gateway) App() *fiber.App { return g.app }

// Hub exposes the relay hub (tests, metrics).
func (g *Gateway) Hub() *relay.Hub { return g.hub }

// Pool exposes the stream pool (tests, metrics).
func (g *Gateway) Pool() *sse.Pool { return g.pool }

// Addr returns the address the gateway listens on, once started.
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		return ""
	}
	return g.ln.Addr().String()
}

// Start opens the job store, the job-type registry's watch and the relay's watch, starts taking the
// ticks of periodic jobs, then listens on cfg.Addr. It returns once the gateway accepts connections.
func (g *Gateway) Start(ctx context.Context) error {
	store, err := jobstore.New(ctx, g.deps.NC, g.deps.JS)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	store.Retention = g.cfg.StateRetention
	g.store = store
	types, err := g.deps.JS.KeyValue(ctx, streams.BucketJobTypes)
	if err != nil {
		return fmt.Errorf("gateway: open %s: %w", streams.BucketJobTypes, err)
	}
	g.typesKV = types
	g.types = registry.New(types, g.log)
	if g.deps.Registry != nil {
		if err := g.deps.Registry.Register(g.types); err != nil {
			return fmt.Errorf("gateway: metrics: %w", err)
		}
	}
	if err := g.types.Start(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	relayCfg := g.cfg.Relay
	if telemetry.Enabled() && relayCfg.Traces == nil {
		if relayCfg.Traces, err = g.deps.JS.Stream(ctx, streams.KVStream(streams.BucketState)); err != nil {
			g.types.Stop()
			return fmt.Errorf("gateway: open %s for traces: %w", streams.KVStream(streams.BucketState), err)
		}
	}
	g.hub = relay.NewHub(store.State(), relayCfg, g.deps.Registry, g.log)
	if err := g.hub.Start(ctx); err != nil {
		g.types.Stop()
		return fmt.Errorf("gateway: %w", err)
	}
	// After the registry has loaded: a tick's job is checked against it.
	if err := g.ticker.Start(ctx); err != nil {
		g.hub.Stop()
		g.types.Stop()
		return fmt.Errorf("gateway: %w", err)
	}
	g.pool.Start()
	ln, err := net.Listen("tcp", g.cfg.Addr)
	if err != nil {
		g.stopParts()
		return fmt.Errorf("gateway: listen on %s: %w", g.cfg.Addr, err)
	}
	if err := g.startConsole(ctx, ln.Addr().String()); err != nil {
		_ = ln.Close()
		g.stopParts()
		return fmt.Errorf("gateway: %w", err)
	}
	g.mu.Lock()
	g.ln, g.started, g.serveErr = ln, true, make(chan error, 1)
	g.mu.Unlock()
	go func() { g.serveErr <- g.app.Listener(ln) }()
	g.log.Info("gateway listening", "addr", ln.Addr().String())
	return nil
}

// stopParts stops what Start started before it listens.
func (g *Gateway) stopParts() {
	g.pool.Stop()
	g.ticker.Stop()
	g.hub.Stop()
	g.types.Stop()
}

// startConsole starts the operators' console sampler of this gateway, which listens on addr.
func (g *Gateway) startConsole(ctx context.Context, addr string) error {
	host, _ := os.Hostname()
	self := api.ConsoleGateway{ID: streams.NewGatewayID(time.Now()), Host: host, Addr: addr}
	g.console = console.New(g.cfg.Console, self, g.deps.NC, console.Sources{Counts: g.hub.Counts, Types: g.types.List,
		OpenStreams: g.pool.Open, DeadLetters: g.store}, g.deps.Registry, g.log)
	return g.console.Start(ctx)
}

// Console exposes the operators' console sampler (tests).
func (g *Gateway) Console() *console.Console { return g.console }

// Stop stops accepting, ends every stream (clients reconnect elsewhere with Last-Event-ID), waits for
// in-flight requests up to 10 s and closes the watch. Safe to call twice or before Start.
func (g *Gateway) Stop() {
	g.mu.Lock()
	if g.stopped || !g.started {
		g.stopped = true
		g.mu.Unlock()
		return
	}
	g.stopped = true
	g.mu.Unlock()
	g.pool.Stop()
	if err := g.app.ShutdownWithTimeout(10 * time.Second); err != nil {
		g.log.Warn("gateway shutdown", "err", err)
	}
	if err := <-g.serveErr; err != nil && !errors.Is(err, net.ErrClosed) {
		g.log.Warn("gateway serve", "err", err)
	}
	g.console.Stop()
	g.ticker.Stop()
	g.hub.Stop()
	g.types.Stop()
	g.log.Info("gateway stopped")
}

func (g *Gateway) routes() {
	a := g.app
	a.Use(refuseAmbiguousFraming)
	a.Use(recover.New())
	a.Use(securityHeaders)
	a.Get("/healthz", g.healthz)
	a.Get("/readyz", g.readyz)

	v1 := a.Group("/v1", g.cors, apiHeaders)
	v1.Post("/jobs", g.authenticate(false), g.limitSubmits, g.submit)
	v1.Post("/jobs/batch", g.authenticate(false), g.submitBatch)
	v1.Get("/jobs", g.authenticate(false), g.listJobs)
	v1.Get("/jobs/:id", g.authenticate(false), g.getJob)
	v1.Post("/jobs/:id/cancel", g.authenticate(false), g.cancelJob)
	v1.Post("/jobs/:id/retry", g.authenticate(false), g.limitSubmits, g.retryJob)
	v1.Get("/jobs/:id/history", g.authenticate(false), g.history)
	v1.Get("/jobs/:id/events", g.authenticate(true), g.streamJob(sse.FlavorV1))
	v1.Get("/events", g.authenticate(true), g.streamOwner)
	v1.Get("/library", g.authenticate(false), g.library)
	v1.Get("/job-types", g.authenticate(false), g.jobTypes)
	v1.Post("/job-types/:type/pause", g.authenticate(false), requireOperator, g.setPaused(true))
	v1.Post("/job-types/:type/resume", g.authenticate(false), requireOperator, g.setPaused(false))
	v1.Put("/job-types/:type/rate-limit", g.authenticate(false), requireOperator, g.setRateLimit)
	v1.Delete("/job-types/:type/rate-limit", g.authenticate(false), requireOperator, g.removeRateLimit)
	v1.Get("/dead-letters", g.authenticate(false), requireOperator, g.listDeadLetters)
	v1.Post("/dead-letters/retry", g.authenticate(false), requireOperator, g.deadLetterAction(streams.AuditRetryDeadLetters))
	v1.Post("/dead-letters/purge", g.authenticate(false), requireOperator, g.deadLetterAction(streams.AuditPurgeDeadLetters))
	v1.Get("/operator/events", g.authenticate(true), requireConsoleViewer, g.streamConsole)
	v1.Get("/schedules", g.authenticate(false), requireOperator, g.listSchedules)
	v1.Post("/schedules", g.authenticate(false), requireOperator, g.createSchedule)
	v1.Get("/schedules/:id", g.authenticate(false), requireOperator, g.getSchedule)
	v1.Delete("/schedules/:id", g.authenticate(false), requireOperator, g.deleteSchedule)
	v1.Post("/stream-tokens", g.authenticate(false), g.streamToken)
	v1.Get("/session", g.authenticate(false), g.getSession)
	v1.Post("/session", g.createSession)
	v1.Delete("/session", g.deleteSession)

	legacy := a.Group("/library/sync", g.cors, apiHeaders)
	legacy.Post("/", g.authenticate(false), g.limitSubmits, g.legacySubmit)
	legacy.Get("/:id", g.authenticate(true), g.legacyGet)
	legacy.Get("/:id/progress", g.authenticate(true), g.streamJob(sse.FlavorLegacy))

	web.Register(a)
	a.Use(func(c *fiber.Ctx) error { return errNotFoundRoute })
}

// Ready reports whether NATS is connected, the topology exists and the registry and relay have loaded
// (GET /readyz).
func (g *Gateway) Ready(ctx context.Context) error {
	if g.deps.NC == nil || !g.deps.NC.IsConnected() {
		return errors.New("nats not connected")
	}
	if g.hub == nil || !g.hub.Ready() {
		return errors.New("relay not loaded")
	}
	if !g.types.Ready() {
		return errors.New("job-type registry not loaded")
	}
	return streams.Check(ctx, g.deps.JS)
}
