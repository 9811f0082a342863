package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Config sets the parts of the topology an operator may tune. The zero value is valid: SetDefaults
// fills in the documented defaults.
type Config struct {
	// Replicas of every stream and bucket (JOBWIRE_REPLICAS). Default 1; use 3 on a cluster. Raising it
	// on an existing topology upgrades it in place.
	Replicas int
	// EventsMaxAge is how long JOB_EVENTS keeps events (JOBWIRE_EVENTS_MAX_AGE). Default 7 days.
	EventsMaxAge time.Duration
	// StateRetention is how long a finished job's state stays in JOB_STATE before it expires with a
	// delete marker that watchers see (JOBWIRE_STATE_RETENTION). Default 24 h.
	StateRetention time.Duration
	// IdempotencyWindow is how long an Idempotency-Key maps to its job. Default 24 h.
	IdempotencyWindow time.Duration
	// DedupeWindow is the JetStream duplicate window of JOBS and JOB_EVENTS. Default 2 min.
	DedupeWindow time.Duration
	// DeadLetterMaxAge is how long JOBS_DLQ keeps dead letters. Default EventsMaxAge: a retry needs the
	// job's events, so it can be no longer.
	DeadLetterMaxAge time.Duration
	// Storage of every stream and bucket. Default file.
	Storage jetstream.StorageType
}

// Defaults of Config.
const (
	DefaultReplicas          = 1
	DefaultEventsMaxAge      = 7 * 24 * time.Hour
	DefaultStateRetention    = 24 * time.Hour
	DefaultIdempotencyWindow = 24 * time.Hour
	DefaultDedupeWindow      = 2 * time.Minute
	// deleteMarkerTTL is how long the marker of an expired JOB_STATE key stays, so a watcher that
	// resumes later still learns that the job is gone.
	deleteMarkerTTL = time.Hour
	// registryMarkerTTL is how long the marker of an expired or removed worker entry stays.
	registryMarkerTTL = time.Minute
)

// SetDefaults fills zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.EventsMaxAge == 0 {
		c.EventsMaxAge = DefaultEventsMaxAge
	}
	if c.StateRetention == 0 {
		c.StateRetention = DefaultStateRetention
	}
	if c.IdempotencyWindow == 0 {
		c.IdempotencyWindow = DefaultIdempotencyWindow
	}
	if c.DedupeWindow == 0 {
		c.DedupeWindow = DefaultDedupeWindow
	}
	if c.DeadLetterMaxAge == 0 {
		c.DeadLetterMaxAge = c.EventsMaxAge
	}
}

// minRunAhead is the least time the retention windows must leave for scheduled jobs (MaxRunAhead).
const minRunAhead = time.Hour

// Validate reports a configuration JetStream would refuse or that breaks an invariant. The retention
// windows must agree: a finished job's state (StateRetention) and its dead letter (DeadLetterMaxAge)
// may not outlive its events, so that history and retry serve whatever GET shows; and the events must
// outlive the state by at least an hour, which is how far ahead a job may be scheduled (MaxRunAhead).
func (c *Config) Validate() error {
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("replicas must be 1..5, got %d", c.Replicas)
	case c.StateRetention < time.Second:
		return fmt.Errorf("state retention must be at least 1s, got %s", c.StateRetention)
	case c.DedupeWindow > c.EventsMaxAge:
		return fmt.Errorf("dedupe window %s longer than events max age %s", c.DedupeWindow, c.EventsMaxAge)
	case c.EventsMaxAge-c.StateRetention < minRunAhead:
		return fmt.Errorf("events max age %s must exceed the state retention %s by at least %s (JOBWIRE_EVENTS_MAX_AGE, JOBWIRE_STATE_RETENTION)",
			c.EventsMaxAge, c.StateRetention, minRunAhead)
	case c.DeadLetterMaxAge > c.EventsMaxAge:
		return fmt.Errorf("dead letters kept %s, longer than the events they need (%s)", c.DeadLetterMaxAge, c.EventsMaxAge)
	}
	return nil
}

// MaxRunAhead is how far ahead a job may be scheduled (runAt): its submitted event must still be in
// JOB_EVENTS when the job finishes and for as long as its state is kept.
func (c Config) MaxRunAhead() time.Duration {
	c.SetDefaults()
	return c.EventsMaxAge - c.StateRetention
}

// maxTicksPerSchedule bounds the ticks JOBS_TICKS keeps of one schedule while no gateway takes them:
// older ones are dropped by the server (the ticker would skip them anyway as overtaken, see
// services/internal/ticker).
const maxTicksPerSchedule = 100

// StreamConfigs returns the configurations of JOBS, JOBS_DLQ, JOB_EVENTS, JOB_CANCELS, JOBS_AUDIT and
// JOBS_TICKS.
func (c Config) StreamConfigs() []jetstream.StreamConfig {
	c.SetDefaults()
	return []jetstream.StreamConfig{
		{
			Name:        StreamJobs,
			Description: "jobwire work queue: one message per job to run",
			Subjects:    []string{subjectQueue + ">", subjectSchedule + ">"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			Duplicates:  c.DedupeWindow,
			Discard:     jetstream.DiscardOld,
			// Scheduled jobs (runAt) are stored as schedules that publish into jobs.queue.<type>.
			AllowMsgSchedules: true,
			AllowMsgTTL:       true,
		},
		{
			Name:        StreamDeadLetters,
			Description: "jobwire dead letters: jobs whose attempts ran out, re-queued by `jobwire jobs retry`",
			Subjects:    []string{subjectDLQ + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			MaxAge:      c.DeadLetterMaxAge,
			Duplicates:  c.DedupeWindow,
		},
		{
			Name:        StreamEvents,
			Description: "jobwire job events: the source of truth, one subject per job",
			Subjects:    []string{subjectEvents + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			MaxAge:      c.EventsMaxAge,
			Duplicates:  c.DedupeWindow,
			AllowDirect: true,
		},
		{
			Name:              StreamCancels,
			Description:       "jobwire cancel requests: the last one of each job, for the worker running it",
			Subjects:          []string{subjectCancel + ">"},
			Retention:         jetstream.LimitsPolicy,
			Storage:           c.Storage,
			Replicas:          c.Replicas,
			MaxAge:            c.EventsMaxAge,
			MaxMsgsPerSubject: 1,
			Duplicates:        c.DedupeWindow,
			AllowDirect:       true,
		},
		{
			Name:        StreamAudit,
			Description: "jobwire audit: what operators did (dead letters retried or purged), who and when",
			Subjects:    []string{subjectAudit + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			MaxAge:      c.EventsMaxAge,
			Duplicates:  c.DedupeWindow,
		},
		{
			Name:        StreamTicks,
			Description: "jobwire periodic jobs: one message schedule per schedule (its definition), and the ticks it produces",
			Subjects:    []string{subjectTickSchedule + "*", subjectTickFire + "*"},
			// A tick is gone once a gateway acked it; a schedule is never consumed and stays until
			// deleted (no MaxAge: it would expire the definitions).
			Retention:         jetstream.WorkQueuePolicy,
			Storage:           c.Storage,
			Replicas:          c.Replicas,
			Duplicates:        c.DedupeWindow,
			Discard:           jetstream.DiscardOld,
			MaxMsgsPerSubject: maxTicksPerSchedule,
			AllowMsgSchedules: true,
			// Listing the schedules and the ticker's look at a tick's schedule are direct gets.
			AllowDirect: true,
		},
	}
}

// BucketConfigs returns the configurations of JOB_STATE, LIBRARY, JOB_IDEMPOTENCY and JOB_TYPES.
func (c Config) BucketConfigs() []jetstream.KeyValueConfig {
	c.SetDefaults()
	return []jetstream.KeyValueConfig{
		{
			Bucket:         BucketState,
			Description:    "jobwire latest state per job (<owner>.<jobId>), a projection of JOB_EVENTS",
			History:        1,
			Storage:        c.Storage,
			Replicas:       c.Replicas,
			LimitMarkerTTL: deleteMarkerTTL,
		},
		{
			Bucket:      BucketLibrary,
			Description: "jobwire imported tracks (<owner>.<trackKey>)",
			History:     1,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
		},
		{
			Bucket:      BucketIdempotency,
			Description: "jobwire Idempotency-Key to job id (<owner>.<keyHash>)",
			History:     1,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			TTL:         c.IdempotencyWindow,
		},
		{
			Bucket:      BucketJobTypes,
			Description: "jobwire job-type registry: type.<type>, schema.<type>.<hash>, worker.<type>.<workerId> (expires)",
			History:     1,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			// Worker entries carry a per-message TTL; when one expires the server leaves a marker that
			// watchers see, so a gateway learns that a worker went without polling for it.
			LimitMarkerTTL: registryMarkerTTL,
		},
	}
}

// Names returns the names of every stream and bucket of the topology.
func Names() (streams, buckets []string) {
	for _, sc := range (Config{}).StreamConfigs() {
		streams = append(streams, sc.Name)
	}
	for _, kc := range (Config{}).BucketConfigs() {
		buckets = append(buckets, kc.Bucket)
	}
	return streams, buckets
}

// Ensure creates or updates every stream and bucket of the topology. It is idempotent: on a topology
// that already matches it changes nothing, so every service calls it at start. Consumers are not
// created here: each is ensured by the service that reads from it, with that service's settings.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("ensure topology: %w", err)
	}
	for _, sc := range c.StreamConfigs() {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range c.BucketConfigs() {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("ensure bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// Check reports whether the whole topology exists, without changing it. Readiness probes use it.
func Check(ctx context.Context, js jetstream.JetStream) error {
	var errs []error
	streamNames, bucketNames := Names()
	for _, name := range streamNames {
		if _, err := js.Stream(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", name, err))
		}
	}
	for _, name := range bucketNames {
		if _, err := js.KeyValue(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("bucket %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
