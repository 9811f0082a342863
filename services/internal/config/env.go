// Package config reads jobwire's configuration from environment variables. Every variable is declared
// once in Vars with its meaning, and its default is the constant of the package it configures (so a
// default is written once); the README table, `jobwire env` and the deployment tests all come from
// that list.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/devserver"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/mirror"
	"github.com/jobwire/jobwire/services/internal/relay"
	"github.com/jobwire/jobwire/services/internal/sse"
	"github.com/jobwire/jobwire/services/internal/ticker"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/worker"
)

// Var documents one environment variable.
type Var struct {
	Name     string
	Default  string
	Services string // which commands read it
	Help     string
}

// Vars is every environment variable jobwire reads.
var Vars = []Var{
	workerVar("NATS_URL", "gateway worker projector mirror admin"),
	workerVar("NATS_USER", "gateway worker projector mirror admin"),
	workerVar("NATS_PASSWORD", "gateway worker projector mirror admin"),
	workerVar("NATS_CREDS", "gateway worker projector mirror admin"),
	{"JOBWIRE_LOG_LEVEL", "info", "all", "debug, info, warn or error"},
	{"JOBWIRE_LOG_FORMAT", "json", "all", "json or text (dev defaults to text)"},
	{"JOBWIRE_METRICS_ADDR", "127.0.0.1:9090", "gateway worker projector mirror dev", "address of /metrics, /healthz and /readyz (its own listener, never the API's; loopback unless you open it, e.g. :9090 in a pod); empty disables"},
	{"JOBWIRE_PPROF", "false", "gateway worker projector mirror dev", "also serve Go's /debug/pprof/ on the metrics listener (profiles for operators; keep that listener private)"},
	{"JOBWIRE_REPLICAS", strconv.Itoa(streams.DefaultReplicas), "all", "replicas of every stream and bucket (3 on a cluster)"},
	{"JOBWIRE_TOPOLOGY", "ensure", "gateway worker projector mirror", "ensure: create or update streams and buckets at start; check: only verify they exist (created by jobwire admin ensure)"},
	{"JOBWIRE_EVENTS_MAX_AGE", duration(streams.DefaultEventsMaxAge), "all", "how long JOB_EVENTS keeps events"},
	{"JOBWIRE_STATE_RETENTION", duration(streams.DefaultStateRetention), "projector dev", "how long a finished job's state stays in JOB_STATE"},
	{"JOBWIRE_HTTP_ADDR", gateway.DefaultAddr, "gateway dev", "gateway listen address"},
	{"JOBWIRE_JWT_SECRET", "", "gateway dev token", "HS256 secret, at least 32 bytes (dev makes one up and keeps it in its data dir)"},
	{"JOBWIRE_JWT_ISSUER", "", "gateway dev token", "required iss claim, if set"},
	{"JOBWIRE_JWT_AUDIENCE", "", "gateway dev", "required aud claim, if set"},
	{"JOBWIRE_JWT_PUBLIC_KEYS", "", "gateway dev", "PEM (PUBLIC KEY blocks) or JWKS file of RS256, ES256, ES384 or EdDSA keys, read at start; tokens pick a key by kid"},
	{"JOBWIRE_JWT_JWKS_URL", "", "gateway dev", "your identity provider's JWKS URL (https): fetched at start, on schedule and on an unknown kid; its last good keys are kept while it is down"},
	{"JOBWIRE_JWT_JWKS_CA", "", "gateway dev", "PEM file of the CA certificates to trust for JOBWIRE_JWT_JWKS_URL instead of the system roots"},
	{"JOBWIRE_JWT_JWKS_REFRESH", duration(auth.DefaultJWKSRefresh), "gateway dev", "how often JOBWIRE_JWT_JWKS_URL is fetched again (an unknown kid fetches it sooner, at most every " + duration(auth.DefaultJWKSMinRefresh) + ")"},
	{"JOBWIRE_JWT_LEEWAY", duration(auth.DefaultLeeway), "gateway dev", "clock skew tolerated on exp, nbf and iat (at most " + duration(auth.MaxLeeway) + ")"},
	{"JOBWIRE_JWT_ROLES_CLAIM", auth.DefaultRolesClaim, "gateway dev token", "claim holding a token's roles (an array of strings, or space-separated): a top-level name, else a dotted path such as realm_access.roles"},
	{"JOBWIRE_OPERATOR_ROLE", auth.DefaultOperatorRole, "gateway dev token", "the role that makes a token an operator's (queue controls, dead letters, the console); empty: no operators"},
	{"JOBWIRE_JWT_MAX_LIFETIME", duration(auth.DefaultMaxLifetime), "gateway dev token", "longest a token may live, iat (or now) to exp; longer ones are refused; 0 removes the limit"},
	{"JOBWIRE_STREAM_TOKEN_TTL", duration(gateway.DefaultStreamTokenTTL), "gateway dev", "lifetime of tokens from POST /v1/stream-tokens (never past the caller's token)"},
	{"JOBWIRE_SUBMIT_RATE", gateway.DefaultSubmitRate.String(), "gateway dev", "submissions per user per gateway (n/s, n/m, n/h or off); 429 past it"},
	{"JOBWIRE_SUBMIT_BURST", strconv.Itoa(gateway.DefaultSubmitBurst), "gateway dev", "submissions a user may make at once before JOBWIRE_SUBMIT_RATE applies"},
	{"JOBWIRE_TICK_ACK_WAIT", duration(ticker.DefaultAckWait), "gateway dev", "a periodic job's tick taken by a gateway that died goes to another after this (the same on every gateway)"},
	{"JOBWIRE_CORS_ORIGINS", "", "gateway dev", "exact browser origins allowed to call the API with credentials, comma-separated; empty: no CORS"},
	{"JOBWIRE_COOKIE_SECURE", "false", "gateway dev", "always mark the jobwire_token cookie Secure (it is on https requests anyway)"},
	{"JOBWIRE_BODY_LIMIT", strconv.Itoa(gateway.DefaultBodyLimit), "gateway dev", "largest request body in bytes"},
	{"JOBWIRE_SSE_HEARTBEAT", duration(sse.DefaultHeartbeat), "gateway dev", "interval of : ping comments on quiet streams"},
	{"JOBWIRE_SSE_MAX_DURATION", duration(sse.DefaultMaxDuration), "gateway dev", "streams end after this (jittered) with event: expired"},
	{"JOBWIRE_SSE_MAX_PER_USER", strconv.Itoa(gateway.DefaultMaxStreamsPerUser), "gateway dev", "open streams per user per gateway (429 past it)"},
	{"JOBWIRE_SSE_MAX_STREAMS", strconv.Itoa(gateway.DefaultMaxStreams), "gateway dev", "open streams per gateway (503 past it)"},
	{"JOBWIRE_SSE_WRITE_TIMEOUT", duration(sse.DefaultWriteTimeout), "gateway dev", "a client that takes nothing of a pending write this long is dropped (the write waits parked, holding up no other stream)"},
	{"JOBWIRE_SSE_SNAPSHOT_MEMORY", strconv.Itoa(relay.DefaultSnapshotMemory), "gateway dev", "bytes of encoded job states kept for streams that open or resume (past it the oldest are read from JOB_STATE)"},
	workerVar("JOBWIRE_WORKER_NAME", "worker dev"),
	workerVar("JOBWIRE_WORKER_CONCURRENCY", "worker dev"),
	workerVar("JOBWIRE_WORKER_MAX_IN_FLIGHT", "worker dev"),
	workerVar("JOBWIRE_WORKER_JOB_TIMEOUT", "worker dev"),
	workerVar("JOBWIRE_WORKER_MAX_ATTEMPTS", "worker dev"),
	workerVar("JOBWIRE_WORKER_ACK_WAIT", "worker dev"),
	workerVar("JOBWIRE_WORKER_BACKOFF_BASE", "worker dev"),
	workerVar("JOBWIRE_WORKER_BACKOFF_MAX", "worker dev"),
	workerVar("JOBWIRE_WORKER_STOP_GRACE", "worker dev"),
	workerVar("JOBWIRE_WORKER_SHUTDOWN_GRACE", "worker dev"),
	workerVar("JOBWIRE_PROGRESS_INTERVAL", "worker dev"),
	{"JOBWIRE_NOOP_JOBS", "false", "worker dev", "also serve the noop job type (benchmarks, smoke tests)"},
	{"JOBWIRE_IMPORT_TRACK_DELAY", "0s", "worker dev", "per-track delay standing in for a remote catalogue look-up"},
	{"REDIS_URL", "", "mirror dev", "Redis for the legacy BullMQ mirror; unset: no Redis anywhere"},
	{"JOBWIRE_LEGACY_QUEUE", mirror.DefaultQueue, "mirror dev", "BullMQ queue name the mirror writes"},
	{"JOBWIRE_LEGACY_MAX_AGE", duration(mirror.DefaultMaxAge), "mirror dev", "finished jobs kept in Redis this long"},
	{"JOBWIRE_LEGACY_MAX_COUNT", strconv.Itoa(mirror.DefaultMaxCount), "mirror dev", "at most this many finished jobs per set in Redis"},
	{"JOBWIRE_DATA_DIR", "./data", "dev", "where the embedded NATS server keeps its data"},
	{"JOBWIRE_NATS_PORT", strconv.Itoa(devserver.DefaultPort), "dev", "client port of the embedded NATS server"},
	{"JOBWIRE_NATS_MONITOR_ADDR", devserver.DefaultMonitorAddr, "dev", "monitoring address of the embedded NATS server"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "gateway worker projector mirror dev", "OpenTelemetry collector (OTLP/HTTP, e.g. http://otel-collector:4318): set, the process exports its traces; unset, it installs nothing (the SDK's other OTEL_EXPORTER_OTLP_* variables apply: headers, certificates, timeouts)"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "gateway worker projector mirror dev", "the traces endpoint only (full URL, e.g. http://otel-collector:4318/v1/traces); also turns traces on"},
	{"OTEL_SERVICE_NAME", "jobwire-<command>", "gateway worker projector mirror dev", "service.name of the process's spans (service.instance.id is <host>-<pid>)"},
	{"OTEL_RESOURCE_ATTRIBUTES", "", "gateway worker projector mirror dev", "more resource attributes, key=value,... (e.g. deployment.environment.name=prod)"},
	{"OTEL_TRACES_SAMPLER", "parentbased_always_on", "gateway worker projector mirror dev", "which traces to keep; a gateway facing untrusted clients: traceidratio (see SECURITY.md)"},
	{"OTEL_TRACES_SAMPLER_ARG", "", "gateway worker projector mirror dev", "the sampler's argument, e.g. 0.1 for a ratio"},
	{"OTEL_SDK_DISABLED", "false", "gateway worker projector mirror dev", "true: no traces even with an endpoint set"},
	{"JOBWIRE_URL", "http://127.0.0.1:8080", "submit watch jobs cancel history library job-types", "gateway URL for the CLI"},
	{"JOBWIRE_TOKEN", "", "submit watch jobs cancel history library job-types", "token for the CLI"},
}

// duration writes a default duration as the variables take it ("15s", "30m", "24h").
func duration(d time.Duration) string { return worker.FormatDuration(d) }

// workerVar declares a variable of the worker SDK (worker.EnvVars, which holds its default and
// meaning) with the commands that read it.
func workerVar(name, services string) Var {
	for _, v := range worker.EnvVars {
		if v.Name == name {
			return Var{Name: name, Default: v.Default, Services: services, Help: v.Help}
		}
	}
	panic("config: the worker SDK declares no variable " + name)
}

// Env reads variables, collecting every error so a bad configuration is reported at once.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// FromOS reads the process environment.
func FromOS() *Env { return &Env{lookup: os.LookupEnv} }

// FromMap reads from m (tests).
func FromMap(m map[string]string) *Env {
	return &Env{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

func defaultOf(name string) string {
	for _, v := range Vars {
		if v.Name == name {
			return v.Default
		}
	}
	panic("config: undeclared variable " + name)
}

func (e *Env) raw(name string) string {
	def := defaultOf(name)
	if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// String returns the variable or its declared default.
func (e *Env) String(name string) string { return e.raw(name) }

// Int returns the variable as an integer.
func (e *Env) Int(name string) int {
	s := e.raw(name)
	n, err := strconv.Atoi(s)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not an integer", name, s))
	}
	return n
}

// Duration returns the variable as a Go duration ("250ms", "15s", "24h").
func (e *Env) Duration(name string) time.Duration {
	s := e.raw(name)
	d, err := time.ParseDuration(s)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not a duration (e.g. 15s, 30m)", name, s))
	}
	return d
}

// Bool returns the variable as a boolean (1, t, true, 0, f, false, ...).
func (e *Env) Bool(name string) bool {
	s := e.raw(name)
	b, err := strconv.ParseBool(s)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not a boolean (true or false)", name, s))
	}
	return b
}

// Err returns every error seen so far.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// MarkdownTable renders Vars as the README's configuration table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| variable | default | read by | meaning |\n|---|---|---|---|\n")
	for _, v := range Vars {
		def := "—"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Name, def, v.Services, v.Help)
	}
	return b.String()
}
