package mirror

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// metrics are the mirror's Prometheus collectors.
type metrics struct {
	commands *prometheus.CounterVec // jobwire_redis_commands_total{cmd}
	writes   *prometheus.CounterVec // jobwire_mirror_writes_total{result}
	up       prometheus.Gauge       // jobwire_mirror_redis_up
	total    atomic.Uint64          // every command, for CommandsTotal and the rate warning
}

// Results of a job write, the label of jobwire_mirror_writes_total.
const (
	writeOK      = "ok"      // the job's state was written
	writeSkipped = "skipped" // Redis already held this state or a newer one
	writeError   = "error"   // the write failed and its events were nakked for a retry
)

// newMetrics creates the collectors and registers them with reg, which may be nil. A collector that
// is already registered (a second Mirror on the same registry) is shared.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobwire_redis_commands_total",
			Help: "Redis commands sent by the legacy mirror, by command (connection set-up included; " +
				"the commands a script runs inside Redis are not seen here, see INFO commandstats).",
		}, []string{"cmd"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobwire_mirror_writes_total",
			Help: "Job writes of the legacy Redis mirror, by result (ok, skipped, error).",
		}, []string{"result"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jobwire_mirror_redis_up",
			Help: "1 while the legacy mirror can write to Redis, 0 while it waits for Redis to come back.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.commands, err = register(reg, m.commands); err != nil {
		return nil, err
	}
	if m.writes, err = register(reg, m.writes); err != nil {
		return nil, err
	}
	if m.up, err = register(reg, m.up); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("mirror: register metrics: %w", err)
	}
	return c, nil
}

// count records one command.
func (m *metrics) count(name string) {
	m.total.Add(1)
	m.commands.WithLabelValues(name).Inc()
}

// countHook is a go-redis hook that counts every command the client sends, pipelined ones and the
// connection set-up (HELLO, CLIENT SETNAME) included.
type countHook struct{ m *metrics }

var _ redis.Hook = countHook{}

// DialHook leaves dialing as it is.
func (h countHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// ProcessHook counts a single command.
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.m.count(cmd.Name())
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts every command of a pipeline.
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.m.count(cmd.Name())
		}
		return next(ctx, cmds)
	}
}
