package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
)

// secret signs the bench's tokens; every jobwire child gets it as JOBWIRE_JWT_SECRET.
const secret = "jobwire-bench-secret-0123456789abcdef"

// stack is a jobwire deployment on this machine, one process per service as in production: a
// nats-server (the dev server's config, file store in a temp dir), the projector, the gateway and
// workers, each a `jobwire <service>` child process, plus a redis-server that jobwire must never touch
// (it gets no REDIS_URL) and that the legacy baseline and BullMQ use.
type stack struct {
	o   Options
	dir string
	exe string
	env map[string]string // added to every jobwire child

	nats       *testkit.Proc
	natsURL    string
	monitorURL string
	projector  *testkit.Proc
	gateway    *testkit.Proc
	gatewayURL string
	// gatewayOps is the base URL of the gateway's /metrics listener.
	gatewayOps string
	workers    []*testkit.Proc

	redis     *testkit.Proc
	redisAddr string
	rdb       *redis.Client

	nc     *nats.Conn
	js     jetstream.JetStream
	signer *auth.Signer
	pin    Pinning // the gateway's CPU under --pin
	nofile uint64  // the bench's RLIMIT_NOFILE, also each child's
}

// startStack starts redis-server (when installed), the nats-server and the projector. Under pin they
// run where the bench does (they inherit its CPU); the gateway runs on pin's gateway CPU.
func startStack(ctx context.Context, o Options, pin Pinning) (s *stack, err error) {
	dir, err := os.MkdirTemp(o.TempDir, "jobwire-bench-")
	if err != nil {
		return nil, err
	}
	s = &stack{o: o, dir: dir, pin: pin, signer: auth.NewSigner([]byte(secret), ""), env: map[string]string{
		"JOBWIRE_JWT_SECRET": secret, "JOBWIRE_LOG_LEVEL": "warn", "JOBWIRE_LOG_FORMAT": "text",
	}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if o.JobwireBin != "" {
		s.exe = o.JobwireBin
	} else {
		if s.exe, err = os.Executable(); err != nil {
			return s, err
		}
		s.env[childEnv] = "jobwire"
	}
	if err := s.startRedis(ctx); err != nil {
		return s, err
	}
	if err := s.startNATS(ctx); err != nil {
		return s, err
	}
	return s, s.startProjector(ctx)
}

// startProjector starts `jobwire projector` and waits until it is ready (its /readyz answers 200).
func (s *stack) startProjector(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	if s.projector, err = s.startJobwire("projector", map[string]string{"JOBWIRE_METRICS_ADDR": addr}, "projector"); err != nil {
		return err
	}
	return waitHTTP(ctx, s.projector, "http://"+addr+"/readyz", 60*time.Second)
}

func (s *stack) stopProjector() {
	_ = s.projector.Stop(10 * time.Second)
	s.projector = nil
}

// projectorCaughtUp waits until the projector's durable consumer has no event pending or unacked.
func (s *stack) projectorCaughtUp(ctx context.Context, timeout time.Duration) error {
	cons, err := s.js.Consumer(ctx, streams.StreamEvents, streams.ConsumerProjector)
	if err != nil {
		return fmt.Errorf("projector consumer: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		if err := exited(s.projector); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("projector consumer: %w", err)
			}
			return fmt.Errorf("projector not caught up within %s: %d events pending, %d unacked", timeout, info.NumPending, info.NumAckPending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *stack) startRedis(ctx context.Context) error {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		s.o.logf("redis-server not found: the Redis checks and baselines are skipped")
		return nil
	}
	if s.redisAddr, err = freeAddr(); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(s.redisAddr)
	rdir := filepath.Join(s.dir, "redis")
	if err := os.MkdirAll(rdir, 0o750); err != nil {
		return err
	}
	if s.redis, err = startProc("redis-server", path, []string{"--port", port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", rdir, "--maxclients", "20000"}, nil); err != nil {
		return err
	}
	s.rdb = redis.NewClient(&redis.Options{Addr: s.redisAddr, DisableIdentity: true, PoolSize: 64,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := s.rdb.Ping(ctx).Err(); err == nil {
			return nil
		}
		if err := exited(s.redis); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server not answering:\n%s", strings.TrimSpace(s.redis.Out.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisURL is the URL of the bench's redis-server ("" when there is none).
func (s *stack) redisURL() string {
	if s.redisAddr == "" {
		return ""
	}
	return "redis://" + s.redisAddr + "/0"
}

func (s *stack) startNATS(ctx context.Context) error {
	client, err := freeAddr()
	if err != nil {
		return err
	}
	mon, err := freeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(client)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if s.nats, err = startProc("nats-server", self, []string{filepath.Join(s.dir, "data"), port, mon},
		map[string]string{childEnv: "nats"}); err != nil {
		return err
	}
	s.natsURL, s.monitorURL = "nats://"+client, "http://"+mon
	s.env["NATS_URL"] = s.natsURL
	if err := waitHTTP(ctx, s.nats, s.monitorURL+"/healthz", 30*time.Second); err != nil {
		return err
	}
	s.nc, err = nats.Connect(s.natsURL, nats.Name("jobwire-bench"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	s.js, err = jetstream.New(s.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return streams.Ensure(ectx, s.js, streams.Config{})
}

// startJobwire runs `jobwire args...` with the stack's environment plus env.
func (s *stack) startJobwire(name string, env map[string]string, args ...string) (*testkit.Proc, error) {
	return s.startJobwireOn(-1, name, env, args...)
}

// startJobwireOn is startJobwire with the process on cpu only (when cpu >= 0).
func (s *stack) startJobwireOn(cpu int, name string, env map[string]string, args ...string) (*testkit.Proc, error) {
	all := map[string]string{}
	for k, v := range s.env {
		all[k] = v
	}
	for k, v := range env {
		all[k] = v
	}
	return startProcOn(cpu, name, s.exe, args, all)
}

// jobsGatewayStreams is the stream count the jobs benchmark's gateway is started for: it serves no
// watchers (the tracker watches JOB_STATE itself), so the least the gateway takes.
const jobsGatewayStreams = 100

// startGateway starts a fresh `jobwire gateway` that accepts maxStreams streams, all of them from one
// user if need be, without a submit rate limit, on its own CPU under --pin, and waits until it is ready.
func (s *stack) startGateway(ctx context.Context, maxStreams int) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	ops, err := freeAddr()
	if err != nil {
		return err
	}
	limit := strconv.Itoa(max(maxStreams+100, 20000))
	p, err := s.startJobwireOn(s.pin.gatewayCPU(), "gateway", map[string]string{
		"JOBWIRE_HTTP_ADDR": addr, "JOBWIRE_METRICS_ADDR": ops, "JOBWIRE_SSE_MAX_PER_USER": limit, "JOBWIRE_SSE_MAX_STREAMS": limit,
		"JOBWIRE_SUBMIT_RATE": "off", // the per-user submit limit would cap the bench's one user at 10/s
	}, "gateway")
	if err != nil {
		return err
	}
	s.gateway, s.gatewayURL, s.gatewayOps = p, "http://"+addr, "http://"+ops
	return waitHTTP(ctx, p, s.gatewayURL+"/readyz", 60*time.Second)
}

func (s *stack) stopGateway() {
	_ = s.gateway.Stop(15 * time.Second)
	s.gateway = nil
}

// startWorkers starts n `jobwire worker` processes running concurrency jobs each.
func (s *stack) startWorkers(ctx context.Context, n, concurrency int) error {
	for i := range n {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		p, err := s.startJobwire(fmt.Sprintf("worker-%d", i+1), map[string]string{
			"JOBWIRE_METRICS_ADDR": addr, "JOBWIRE_WORKER_CONCURRENCY": strconv.Itoa(concurrency),
			"JOBWIRE_WORKER_SHUTDOWN_GRACE": "2s", "JOBWIRE_NOOP_JOBS": "true",
		}, "worker")
		if err != nil {
			return err
		}
		s.workers = append(s.workers, p)
		if err := waitHTTP(ctx, p, "http://"+addr+"/readyz", 60*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (s *stack) stopWorkers() {
	for _, w := range s.workers {
		_ = w.Stop(15 * time.Second)
	}
	s.workers = nil
}

func (s *stack) close() {
	s.stopWorkers()
	if s.gateway != nil {
		s.stopGateway()
	}
	s.stopProjector()
	if s.nc != nil {
		s.nc.Close()
	}
	_ = s.nats.Stop(10 * time.Second)
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
	_ = s.redis.Stop(5 * time.Second)
	if !s.o.KeepData {
		_ = os.RemoveAll(s.dir)
	}
}

// token signs a one-hour token for user.
func (s *stack) token(user string) string {
	tok, err := s.signer.Sign(user, time.Hour, "", "")
	if err != nil {
		panic(err) // only fails on an unusable key, which the constant is not
	}
	return tok
}

// getJSON fetches url and decodes its JSON body into out.
func getJSON(ctx context.Context, url string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// consumers returns the number of consumers on the NATS server (monitoring /jsz).
func (s *stack) consumers(ctx context.Context) (int, error) {
	var jsz struct {
		Consumers int `json:"consumers"`
	}
	err := getJSON(ctx, s.monitorURL+"/jsz", &jsz)
	return jsz.Consumers, err
}

// varz is the part of the server's /varz the bench reads.
type varz struct {
	InMsgs   int64 `json:"in_msgs"`
	OutMsgs  int64 `json:"out_msgs"`
	InBytes  int64 `json:"in_bytes"`
	OutBytes int64 `json:"out_bytes"`
}

func (s *stack) varz(ctx context.Context) (varz, error) {
	var v varz
	err := getJSON(ctx, s.monitorURL+"/varz", &v)
	return v, err
}

// gatewayMetrics scrapes the gateway's /metrics into a map of series (name plus labels) to value.
func (s *stack) gatewayMetrics(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.gatewayOps+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// streamState is what the bench reads of a stream to count messages and bytes.
type streamState struct {
	LastSeq uint64
	Msgs    uint64
	Bytes   uint64
}

// streamStates returns the state of the streams the jobs benchmark accounts for.
func (s *stack) streamStates(ctx context.Context) (map[string]streamState, error) {
	out := map[string]streamState{}
	for _, name := range accountedStreams {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		out[name] = streamState{LastSeq: info.State.LastSeq, Msgs: info.State.Msgs, Bytes: info.State.Bytes}
	}
	return out, nil
}

var accountedStreams = []string{streams.StreamJobs, streams.StreamEvents, streams.KVStream(streams.BucketState), streams.KVStream(streams.BucketLibrary)}

// redisCommands returns INFO commandstats as command → calls (nil without redis).
func (s *stack) redisCommands(ctx context.Context) (map[string]int64, error) {
	if s.rdb == nil {
		return nil, nil
	}
	info, err := s.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out, nil
}

// commandDelta counts the commands run between two INFO commandstats snapshots, leaving out the
// bench's own INFO (and PING) calls.
func commandDelta(before, after map[string]int64) int64 {
	var n int64
	for name, calls := range after {
		if name == "info" || name == "ping" {
			continue
		}
		n += calls - before[name]
	}
	return n
}

var errNoRedis = errors.New("no redis-server")

// cpuSnapshot returns the CPU seconds used so far by each process of the stack and the bench.
func (s *stack) cpuSnapshot() map[string]float64 {
	out := map[string]float64{"bench": selfCPUSeconds()}
	add := func(name string, p *testkit.Proc) {
		if p != nil {
			out[name] += cpuSeconds(p.Pid())
		}
	}
	add("nats", s.nats)
	add("projector", s.projector)
	add("gateway", s.gateway)
	add("redis", s.redis)
	for _, w := range s.workers {
		add("workers", w)
	}
	return out
}

// cpuCores turns two snapshots d apart into cores used per process.
func cpuCores(a, z map[string]float64, d time.Duration) map[string]float64 {
	out := map[string]float64{}
	for k, v := range z {
		if c := (v - a[k]) / d.Seconds(); c > 0.005 {
			out[k] = float64(int(c*100+0.5)) / 100
		}
	}
	return out
}
