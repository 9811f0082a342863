// Package console is a gateway's side of the operators' live console (GET /v1/operator/events): one
// sampler per gateway folds the relay hub's counts, the job-type registry, the dead letters and every
// gateway's stats into one snapshot, encodes it once and offers it to every console stream of the
// gateway. It samples only while a console stream is open, and its work does not depend on how many are.
package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/relay"
	"github.com/jobwire/jobwire/services/internal/sse"
)

// Defaults of Config.
const (
	DefaultInterval           = time.Second
	DefaultDeadLetterInterval = 5 * time.Second
	DefaultStatsInterval      = 2 * time.Second
)

// deadLetterTimeout bounds one count of the dead letters; the snapshot waits for it.
const deadLetterTimeout = 5 * time.Second

// Config configures a Console. Zero fields take the defaults.
type Config struct {
	// Interval is how often the snapshot is made again while a console stream is open; it is sent only
	// when it changed. Default 1 s.
	Interval time.Duration
	// DeadLetterInterval is how often the dead letters are counted while a console stream is open (and
	// at the next Interval after this gateway retried or purged some). Default 5 s.
	DeadLetterInterval time.Duration
	// StatsInterval is how often the gateway publishes its own stats for the consoles of every gateway;
	// a gateway not heard of for three intervals is left out. Default 2 s.
	StatsInterval time.Duration
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.DeadLetterInterval <= 0 {
		c.DeadLetterInterval = DefaultDeadLetterInterval
	}
	if c.StatsInterval <= 0 {
		c.StatsInterval = DefaultStatsInterval
	}
}

// Sources are where the numbers come from. Every one but DeadLetters is read from memory.
type Sources struct {
	// Counts are the relay hub's (relay.Hub.Counts).
	Counts func(now time.Time) map[string]relay.TypeCounts
	// Types are the registered job types (registry.Registry.List).
	Types func() []api.JobType
	// OpenStreams is this gateway's open SSE streams.
	OpenStreams func() int
	// DeadLetters reads JOBS_DLQ (jobstore.Store).
	DeadLetters DeadLetterReader
}

// Work is what a console has done so far (tests compare it with NATS's own counts).
type Work struct {
	// Samples are the snapshots made; DeadLetterSamples the dead-letter counts among them.
	Samples, DeadLetterSamples uint64
	// Sent are the snapshots that changed and were offered to the streams.
	Sent uint64
	// StatsPublished are this gateway's stats messages.
	StatsPublished uint64
}

// Console is one gateway's console sampler and the streams it feeds. It is safe for concurrent use.
type Console struct {
	cfg   Config
	self  api.ConsoleGateway
	nc    *nats.Conn
	src   Sources
	log   *slog.Logger
	dead  *deadLetterIndex
	peers *peers

	mu      sync.Mutex
	viewers map[relay.Subscriber]struct{}
	latest  *sse.Message // the last snapshot sent; nil while nobody watches
	body    []byte       // its JSON without the time, to tell a change
	seq     uint64
	poked   bool

	samples, deadSamples, sent, published atomic.Uint64

	wake    chan struct{}
	stop    chan struct{}
	done    sync.WaitGroup
	sub     *nats.Subscription
	started bool
	once    sync.Once
}

// New returns a console for the gateway self (its ID, Host and Addr); Start starts it. reg may be nil.
func New(cfg Config, self api.ConsoleGateway, nc *nats.Conn, src Sources, reg prometheus.Registerer, log *slog.Logger) *Console {
	cfg.SetDefaults()
	c := &Console{cfg: cfg, self: self, nc: nc, src: src, log: log, dead: newDeadLetterIndex(src.DeadLetters),
		peers: newPeers(self.ID, 3*cfg.StatsInterval), viewers: map[relay.Subscriber]struct{}{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	if reg != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "jobwire_console_streams_open",
			Help: "Open operator console streams on this gateway (one sampler serves them all)."},
			func() float64 { return float64(c.Viewers()) }))
	}
	return c
}

// Start subscribes to the other gateways' stats and starts publishing this one's, and the sampler.
func (c *Console) Start(ctx context.Context) error {
	sub, err := c.peers.subscribe(c.nc, c.log)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	c.sub, c.started = sub, true
	c.done.Add(2)
	go c.publishStats()
	go c.run()
	return nil
}

// Stop ends the sampler and the stats. Safe to call twice or before Start.
func (c *Console) Stop() {
	c.once.Do(func() { close(c.stop) })
	if !c.started {
		return
	}
	c.done.Wait()
	if err := c.sub.Unsubscribe(); err != nil && c.nc.IsConnected() {
		c.log.Warn("console: unsubscribe from the gateways' stats", "err", err)
	}
}

// Subscribe offers s the latest snapshot at once (or the first one, made within moments) and every
// change after it, until the returned function is called.
func (c *Console) Subscribe(s relay.Subscriber) (unsubscribe func()) {
	c.mu.Lock()
	c.viewers[s] = struct{}{}
	if c.latest != nil {
		s.Offer(c.latest)
	}
	c.mu.Unlock()
	c.signal()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.viewers, s)
			c.mu.Unlock()
		})
	}
}

// Viewers is the number of open console streams.
func (c *Console) Viewers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.viewers)
}

// Poke says this gateway changed the dead letters (a retry or purge): they are counted again at the
// next sample rather than at the next DeadLetterInterval.
func (c *Console) Poke() {
	c.mu.Lock()
	c.poked = true
	c.mu.Unlock()
}

// Work returns what the console has done so far.
func (c *Console) Work() Work {
	return Work{Samples: c.samples.Load(), DeadLetterSamples: c.deadSamples.Load(), Sent: c.sent.Load(),
		StatsPublished: c.published.Load()}
}

func (c *Console) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run waits for a console stream, then samples every Interval for as long as one is open.
func (c *Console) run() {
	defer c.done.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		c.sampleWhileWatched()
	}
}

func (c *Console) sampleWhileWatched() {
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	var lastDead time.Time
	for c.Viewers() > 0 {
		now := time.Now()
		c.mu.Lock()
		countDead := c.poked || now.Sub(lastDead) >= c.cfg.DeadLetterInterval
		c.poked = false
		c.mu.Unlock()
		if countDead {
			lastDead = now
		}
		c.sample(now, countDead)
		select {
		case <-c.stop:
			return
		case <-tick.C:
		case <-c.wake: // a viewer came or went: the ticker keeps the pace
		}
	}
	c.mu.Lock()
	if len(c.viewers) == 0 {
		c.latest, c.body = nil, nil // the next viewer gets a fresh snapshot, not this one
	}
	c.mu.Unlock()
}

// sample makes the snapshot and offers it to every console stream when it changed.
func (c *Console) sample(now time.Time, countDead bool) {
	c.samples.Add(1)
	if countDead {
		c.deadSamples.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), deadLetterTimeout)
		if err := c.dead.refresh(ctx); err != nil {
			c.log.Warn("console: count the dead letters", "err", err)
		}
		cancel()
	}
	snap := c.snapshot(now)
	body, _ := json.Marshal(snap) // without the time: what tells a change
	snap.At = now.UTC()
	data, _ := json.Marshal(snap)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.latest != nil && bytes.Equal(body, c.body) {
		return
	}
	c.seq++
	c.latest = &sse.Message{Key: "console", Revision: c.seq, Frame: sse.AppendEvent(nil, "", api.EventConsole, data)}
	c.body = body
	c.sent.Add(1)
	for s := range c.viewers {
		s.Offer(c.latest)
	}
}
