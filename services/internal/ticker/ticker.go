// Package ticker turns the ticks of periodic jobs into jobs. Every gateway runs one: they share the
// durable work-queue consumer "ticker" on JOBS_TICKS, so the server hands each tick to one of them, and
// no election is needed. A tick's job id is derived from its schedule and its due time
// (streams.Schedule.TickJobID) and the job is submitted with an idempotency key of the tick, so a tick
// handled twice (its gateway died before the ack, a redelivery, a second copy from the server) still
// makes one job. The tick is acked only once its job is stored.
//
// Missed ticks. A tick that no gateway took before the next tick of its schedule was stored (every
// gateway was down, or the consumer had no leader) is skipped, not caught up: of the ticks waiting
// after an outage only the newest makes a job. A tick a gateway had taken when it died is owed,
// however late its redelivery. The server itself fires once for all the ticks it missed while the
// stream was down (streams.Schedule). So after any outage a schedule runs once, then on its cadence.
package ticker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/jobwire/jobwire/streams"
)

// Defaults of Config.
const (
	DefaultAckWait     = 10 * time.Second
	DefaultConcurrency = 4
)

// Config tunes the ticker. Zero fields take the defaults.
type Config struct {
	// AckWait is the ticker consumer's lease: a tick whose gateway died is redelivered after it.
	// Default 10 s. Every gateway must use the same (it is the shared consumer's).
	AckWait time.Duration
	// Concurrency is how many ticks one gateway handles at once. Default 4.
	Concurrency int
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
}

// ConsumerConfig is the shared durable consumer of the ticks.
func (c Config) ConsumerConfig() jetstream.ConsumerConfig {
	c.SetDefaults()
	return jetstream.ConsumerConfig{
		Durable:       streams.ConsumerTicker,
		Description:   "jobwire gateways: the ticks of periodic jobs, each to one gateway",
		FilterSubject: streams.Ticks,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
	}
}

// ErrInvalid is returned (wrapped) by a Submit that can never make the tick's job, such as an input the
// type's schema no longer accepts: the tick is dropped (and counted), not retried.
var ErrInvalid = errors.New("the tick's job cannot be made")

// Submit makes the job of a tick: the schedule def's job, with id jobID, for the tick due at tick. It
// returns whether it made the job (false: it existed already).
type Submit func(ctx context.Context, def streams.Schedule, tick time.Time, jobID string) (created bool, err error)

// What became of a tick (the result label of jobwire_schedule_ticks_total).
const (
	resultSubmitted = "submitted" // its job was made
	resultDuplicate = "duplicate" // its job existed: the tick was handled before
	resultMissed    = "missed"    // a newer tick of its schedule was stored before it was taken
	resultDeleted   = "deleted"   // its schedule is gone (or was made again)
	resultInvalid   = "invalid"   // its job cannot be made (ErrInvalid), or it is not a tick jobwire reads
	resultRetry     = "retry"     // its job could not be stored now: it comes back
)

// Ticker consumes ticks and submits their jobs.
type Ticker struct {
	cfg    Config
	js     jetstream.JetStream
	submit Submit
	log    *slog.Logger
	ticks  *prometheus.CounterVec

	mu       sync.Mutex
	cancel   context.CancelFunc
	loopDone chan struct{}
	handlers sync.WaitGroup
	stopped  bool
}

// New returns a ticker that submits through submit; its metrics go to reg (when not nil).
func New(cfg Config, js jetstream.JetStream, submit Submit, reg prometheus.Registerer, log *slog.Logger) *Ticker {
	cfg.SetDefaults()
	t := &Ticker{cfg: cfg, js: js, submit: submit, log: log,
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_schedule_ticks_total",
			Help: "Ticks of periodic jobs this gateway handled, by what became of them (submitted, duplicate, missed, deleted, invalid, retry)."},
			[]string{"result"})}
	if reg != nil {
		reg.MustRegister(t.ticks, &scheduleCount{js: js, log: log,
			desc: prometheus.NewDesc("jobwire_schedules", "Periodic jobs' schedules (read from JOBS_TICKS at scrape time).", nil, nil)})
	}
	return t
}

// Start ensures the shared consumer and starts taking ticks.
func (t *Ticker) Start(ctx context.Context) error {
	cons, err := t.js.CreateOrUpdateConsumer(ctx, streams.StreamTicks, t.cfg.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("ticker: ensure consumer %s: %w", streams.ConsumerTicker, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return nil
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	t.cancel, t.loopDone = cancel, make(chan struct{})
	go t.loop(loopCtx, cons)
	t.log.Info("ticker started", "consumer", streams.ConsumerTicker)
	return nil
}

// Stop stops taking ticks and waits for those in hand. Safe to call twice or before Start.
func (t *Ticker) Stop() {
	t.mu.Lock()
	t.stopped = true
	cancel, done := t.cancel, t.loopDone
	t.cancel = nil
	t.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	t.handlers.Wait()
}

// loop fetches as many ticks as it has free slots and hands each to a goroutine of its own.
func (t *Ticker) loop(ctx context.Context, cons jetstream.Consumer) {
	defer close(t.loopDone)
	slots := make(chan struct{}, t.cfg.Concurrency)
	for ctx.Err() == nil {
		free := 0
		select {
		case slots <- struct{}{}:
			free = 1
		case <-ctx.Done():
			return
		}
	more:
		for free < cap(slots) {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break more
			}
		}
		fetchCtx, cancelFetch := context.WithTimeout(ctx, 5*time.Second)
		batch, err := cons.Fetch(free, jetstream.FetchContext(fetchCtx))
		if err == nil {
			for msg := range batch.Messages() {
				free--
				t.handlers.Add(1)
				go func() {
					defer t.handlers.Done()
					defer func() { <-slots }()
					t.handle(msg)
				}()
			}
			err = batch.Error()
		}
		cancelFetch()
		for range free {
			<-slots
		}
		if err == nil || ctx.Err() != nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		t.log.Warn("ticker: fetch ticks", "err", err)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if c, err := t.js.CreateOrUpdateConsumer(ectx, streams.StreamTicks, t.cfg.ConsumerConfig()); err == nil {
				cons = c
			}
			cancel()
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// handle decides what a tick makes, makes it, and settles the tick.
func (t *Ticker) handle(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.AckWait*4/5)
	defer cancel()
	result, err := t.decide(ctx, msg)
	t.ticks.WithLabelValues(result).Inc()
	switch result {
	case resultRetry:
		t.log.Warn("ticker: tick not handled, it comes back", "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	case resultInvalid:
		t.log.Error("ticker: tick dropped", "subject", msg.Subject(), "err", err)
	default:
		t.log.Debug("ticker: tick", "subject", msg.Subject(), "result", result)
	}
	if err := msg.Ack(); err != nil {
		t.log.Warn("ticker: ack tick", "subject", msg.Subject(), "err", err)
	}
}

func (t *Ticker) decide(ctx context.Context, msg jetstream.Msg) (string, error) {
	md, err := msg.Metadata()
	if err != nil {
		return resultInvalid, fmt.Errorf("tick metadata: %w", err)
	}
	id, ok := streams.ParseTickSubject(msg.Subject())
	if !ok {
		return resultInvalid, fmt.Errorf("not a tick subject")
	}
	def, err := streams.DecodeSchedule(msg.Data())
	if err != nil || def.ID != id {
		return resultInvalid, fmt.Errorf("tick body: %w", err)
	}
	next, err := streams.TickNext(msg.Headers())
	if err != nil {
		return resultInvalid, err
	}
	tick, err := def.TickTime(next)
	if err != nil {
		return resultInvalid, err
	}
	// One batched direct get: the schedule as it is now, and the newest tick stored of it.
	current, newest, err := t.look(ctx, id)
	if err != nil {
		return resultRetry, err
	}
	switch {
	case current == nil || !current.CreatedAt.Equal(def.CreatedAt):
		return resultDeleted, nil
	case md.NumDelivered == 1 && newest > md.Sequence.Stream:
		// Nobody took it before the next tick came: missed, not caught up. (A redelivered tick was
		// taken by a gateway that died: it is owed.)
		return resultMissed, nil
	}
	created, err := t.submit(ctx, def, tick, def.TickJobID(tick))
	switch {
	case errors.Is(err, ErrInvalid):
		return resultInvalid, err
	case err != nil:
		return resultRetry, err
	case !created:
		return resultDuplicate, nil
	}
	return resultSubmitted, nil
}

// look returns the schedule id's definition (nil when it is gone) and the stream sequence of its
// newest tick (0 when none is stored).
func (t *Ticker) look(ctx context.Context, id string) (*streams.Schedule, uint64, error) {
	msgs, err := jetstreamext.GetLastMsgsFor(ctx, t.js, streams.StreamTicks, []string{streams.ScheduleDefSubject(id), streams.TickSubject(id)})
	if err != nil {
		return nil, 0, fmt.Errorf("read schedule %s: %w", id, err)
	}
	var def *streams.Schedule
	var newest uint64
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read schedule %s: %w", id, err)
		}
		switch m.Subject {
		case streams.TickSubject(id):
			newest = m.Sequence
		case streams.ScheduleDefSubject(id):
			if s, err := streams.DecodeSchedule(m.Data); err == nil {
				def = &s
			}
		}
	}
	return def, newest, nil
}

// scheduleCount is the jobwire_schedules gauge: the schedule subjects of JOBS_TICKS, read at scrape.
type scheduleCount struct {
	js   jetstream.JetStream
	log  *slog.Logger
	desc *prometheus.Desc
}

func (c *scheduleCount) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *scheduleCount) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, streams.StreamTicks)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = s.Info(ctx, jetstream.WithSubjectFilter(streams.ScheduleDefs))
	}
	if err != nil {
		c.log.Debug("schedule metrics", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(len(info.State.Subjects)))
}
