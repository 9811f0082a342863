package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/jobwire/jobwire/streams"
)

// Consumer and connection settings.
const (
	// maxAckPending bounds the events delivered but not yet acked. Coalescing holds at most a few
	// messages per job with unwritten changes, for at most ProgressInterval.
	maxAckPending = 10_000
	// pullBatch is how many messages the consumer keeps buffered in the client.
	pullBatch = 256
	// startTimeout bounds the Redis ping of Start; a failing ping does not fail Start.
	startTimeout = 2 * time.Second
	// drainWait bounds how long Stop lets buffered messages be processed, and stopWait how long it then
	// waits for the consumer to end.
	drainWait = 5 * time.Second
	stopWait  = time.Second
	// opTimeout bounds one flush, sweep or ping.
	opTimeout = 5 * time.Second
)

// Mirror is the legacy Redis mirror: a durable consumer (streams.ConsumerMirror) on JOB_EVENTS that
// writes every job the way BullMQ stores it, for legacy readers (queue.getJob, job.getState, Bull
// Board). See the package documentation for the layout, the budget and the delivery guarantee.
type Mirror struct {
	cfg      Config
	js       jetstream.JetStream
	log      *slog.Logger
	rdb      *redis.Client
	redisURL string // redacted, for logs
	keys     keys
	met      *metrics

	// Knobs that tests change; New sets the production values.
	now        func() time.Time
	retryMin   time.Duration // first delay after Redis fails
	retryMax   time.Duration // longest delay between Redis probes and of a nak
	rateWindow time.Duration // period of the command rate check

	mu       sync.Mutex
	started  bool
	stopped  bool
	quit     chan struct{} // closed by Stop
	done     chan struct{} // closed when the loop has ended
	stopOnce sync.Once

	// Owned by the loop goroutine once started.
	stream        jetstream.Stream
	msgs          chan jetstream.Msg
	cache         *cache
	health        health
	sweep         sweeper
	rate          rateWatch
	resubAt       time.Time
	lastDown      string
	evictedLogged int
}

// New returns a Mirror for cfg (SetDefaults is applied to a copy). It parses RedisURL, and a bad URL
// is a clear error, but it does not connect: Start does. reg may be nil (no metrics exported);
// log may be nil (slog.Default()).
func New(cfg Config, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger) (*Mirror, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, fmt.Errorf("%w: no JetStream context", ErrConfig)
	}
	if log == nil {
		log = slog.Default()
	}
	opt, err := parseRedisURL(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	rdb.AddHook(countHook{met})
	m := &Mirror{
		cfg:        cfg,
		js:         js,
		log:        log.With("component", "mirror", "queue", cfg.Queue),
		rdb:        rdb,
		redisURL:   redact(cfg.RedisURL),
		keys:       newKeys(cfg.Queue),
		met:        met,
		now:        time.Now,
		retryMin:   200 * time.Millisecond,
		retryMax:   5 * time.Second,
		rateWindow: 10 * time.Second,
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		msgs:       make(chan jetstream.Msg),
		cache:      newCache(),
	}
	return m, nil
}

// parseRedisURL turns REDIS_URL into client options. Its errors never contain the URL's password.
func parseRedisURL(raw string) (*redis.Options, error) {
	opt, err := redis.ParseURL(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the whole URL, password included
		}
		return nil, fmt.Errorf("%w: REDIS_URL %s: %w", ErrConfig, redact(raw), err)
	}
	if opt.ClientName == "" {
		opt.ClientName = "jobwire-mirror"
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 2 * time.Second
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = 2 * time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = 2 * time.Second
	}
	if opt.PoolSize == 0 {
		opt.PoolSize = 4 // one loop writes; the rest is headroom
	}
	opt.MaxRetries = 1         // one retry for a stale pooled connection; outages are the mirror's job
	opt.PipelinePoolSize = -1  // pipelines share the small main pool
	opt.DisableIdentity = true // no CLIENT SETINFO per connection
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opt, nil
}

// redact returns raw with any password replaced, or a placeholder when raw is not a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// Start creates or updates the durable consumer and starts mirroring in the background. It fails
// when JOB_EVENTS is missing (run streams.Ensure first) or the consumer cannot be created; it does not
// fail when Redis is down: it logs, and the mirror retries with backoff while events wait in
// JetStream. Start may be called once; ctx bounds only the start itself.
func (m *Mirror) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.stopped:
		return errors.New("mirror: start after stop")
	case m.started:
		return errors.New("mirror: already started")
	}
	stream, err := m.js.Stream(ctx, streams.StreamEvents)
	if err != nil {
		return fmt.Errorf("mirror: stream %s: %w", streams.StreamEvents, err)
	}
	m.stream = stream
	cons, err := m.ensureConsumer(ctx)
	if err != nil {
		return err
	}
	m.health = health{min: m.retryMin, max: m.retryMax}
	pctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = m.rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		m.markDown(err)
	} else {
		m.health.ok()
		m.met.up.Set(1)
		m.loadScripts(ctx)
		m.log.Info("mirror: redis reachable", "redis", m.redisURL)
	}
	cc, err := m.consume(cons)
	if err != nil {
		return err
	}
	m.rate = rateWatch{start: m.now(), base: m.met.total.Load()}
	m.started = true
	go m.run(cc)
	return nil
}

// Stop stops consuming, writes what is pending (for at most a few seconds), naks what it could not
// write so it is redelivered at once to the next mirror, and closes the Redis client. It waits for the
// mirror's goroutines. Safe to call twice and before Start.
func (m *Mirror) Stop() {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		started := m.started
		m.stopped = true
		m.mu.Unlock()
		close(m.quit)
		if started {
			<-m.done
		}
		if err := m.rdb.Close(); err != nil {
			m.log.Debug("mirror: close redis client", "err", err)
		}
	})
}

// CommandsTotal returns how many Redis commands the mirror has sent, as counted by its go-redis hook
// (connection set-up included). Scripts count as one command here; Redis's INFO commandstats also
// counts the commands a script runs.
func (m *Mirror) CommandsTotal() uint64 { return m.met.total.Load() }

// ensureConsumer creates the durable consumer, or updates the settings of an existing one without
// touching its position. A new consumer starts MaxAge (plus a minute) in the past rather than at the
// beginning of JOB_EVENTS (7 days): older finished jobs would be dropped by retention anyway.
func (m *Mirror) ensureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	want := jetstream.ConsumerConfig{
		Durable:       streams.ConsumerMirror,
		Description:   "jobwire legacy Redis mirror (BullMQ layout, queue " + m.cfg.Queue + ")",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       m.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
	}
	c, err := m.stream.Consumer(ctx, streams.ConsumerMirror)
	if err == nil {
		cur := c.CachedInfo().Config
		cur.Description, cur.AckPolicy, cur.AckWait = want.Description, want.AckPolicy, want.AckWait
		cur.MaxDeliver, cur.MaxAckPending = want.MaxDeliver, want.MaxAckPending
		if c, err = m.stream.UpdateConsumer(ctx, cur); err != nil {
			return nil, fmt.Errorf("mirror: update consumer %s: %w", streams.ConsumerMirror, err)
		}
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("mirror: consumer %s: %w", streams.ConsumerMirror, err)
	}
	start := m.now().Add(-m.cfg.MaxAge - time.Minute)
	want.DeliverPolicy, want.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	c, err = m.stream.CreateConsumer(ctx, want)
	if errors.Is(err, jetstream.ErrConsumerExists) { // another mirror created it meanwhile
		c, err = m.stream.Consumer(ctx, streams.ConsumerMirror)
	}
	if err != nil {
		return nil, fmt.Errorf("mirror: create consumer %s: %w", streams.ConsumerMirror, err)
	}
	return c, nil
}

// consume starts delivering the consumer's messages to the loop.
func (m *Mirror) consume(c jetstream.Consumer) (jetstream.ConsumeContext, error) {
	cc, err := c.Consume(func(msg jetstream.Msg) {
		select {
		case m.msgs <- msg:
		case <-m.done:
		}
	},
		jetstream.PullMaxMessages(pullBatch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			m.log.Warn("mirror: consume", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("mirror: consume %s: %w", streams.ConsumerMirror, err)
	}
	return cc, nil
}
