package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Defaults of TypeOptions and Config. The JOBWIRE_WORKER_* environment variables (ConfigFromEnv)
// override them for a whole process.
const (
	DefaultConcurrency      = 4
	DefaultMaxInFlight      = 10000
	DefaultTimeout          = 30 * time.Minute
	DefaultMaxAttempts      = 5
	DefaultAckWait          = 30 * time.Second
	DefaultBackoffBase      = time.Second
	DefaultBackoffMax       = 5 * time.Minute
	DefaultProgressInterval = 100 * time.Millisecond
	DefaultStopGrace        = 5 * time.Second
	DefaultShutdownGrace    = 25 * time.Second
	DefaultPresenceTTL      = 15 * time.Second
)

// TypeOptions say how a job type runs. A zero field takes the worker's Config.Defaults, and a zero
// field there takes the package default named after it.
type TypeOptions struct {
	// Concurrency is how many jobs of the type run at once in this process. Default 4
	// (JOBWIRE_WORKER_CONCURRENCY).
	Concurrency int
	// MaxInFlight caps the type's jobs in flight over every worker process: the MaxAckPending of the
	// type's durable consumer, so it holds cluster-wide. Every worker of a type should agree on it; the
	// one that starts last sets it. Default 10000 (JOBWIRE_WORKER_MAX_IN_FLIGHT).
	MaxInFlight int
	// Timeout bounds one attempt: at the deadline the handler's ctx is cancelled with ErrTimeout and
	// the attempt fails with code "timeout". Default 30 min (JOBWIRE_WORKER_JOB_TIMEOUT).
	Timeout time.Duration
	// MaxAttempts is how often a job runs before it fails for good and waits in the dead-letter stream.
	// Default 5 (JOBWIRE_WORKER_MAX_ATTEMPTS).
	MaxAttempts int
	// AckWait is a running job's lease: the worker renews it at a third of AckWait while the handler
	// runs, and a job whose worker is gone is redelivered after it. Default 30 s, at least 1 s
	// (JOBWIRE_WORKER_ACK_WAIT).
	AckWait time.Duration
	// BackoffBase and BackoffMax bound the pause before a retry: BackoffBase doubled per failed
	// attempt, at most BackoffMax, with full jitter. Defaults 1 s and 5 min
	// (JOBWIRE_WORKER_BACKOFF_BASE, JOBWIRE_WORKER_BACKOFF_MAX).
	BackoffBase, BackoffMax time.Duration
	// ProgressInterval is the least time between two progress events of one job, and between its start
	// and its first one; reports in between are coalesced and the latest always reaches the log (a job
	// that ends within the interval writes none: its terminal event carries the final progress).
	// Default 100 ms (JOBWIRE_PROGRESS_INTERVAL).
	ProgressInterval time.Duration
	// StopGrace is how long a handler may take to return once its context ended (a cancel, the
	// timeout, the worker stopping). A handler still running then is abandoned: its attempt is settled
	// as if it had returned the context's error, its slot is freed and jobwire_handlers_abandoned_total
	// counts it; what it returns later is dropped. So a job stays active at most Timeout + StopGrace
	// (+ AckWait if its worker dies). Default 5 s (JOBWIRE_WORKER_STOP_GRACE).
	StopGrace time.Duration
}

// withDefaults fills o's zero fields from d, then from the package defaults.
func (o TypeOptions) withDefaults(d TypeOptions) TypeOptions {
	pick := func(v, fallback, def int) int {
		if v != 0 {
			return v
		}
		if fallback != 0 {
			return fallback
		}
		return def
	}
	pickD := func(v, fallback, def time.Duration) time.Duration {
		return time.Duration(pick(int(v), int(fallback), int(def)))
	}
	return TypeOptions{
		Concurrency:      pick(o.Concurrency, d.Concurrency, DefaultConcurrency),
		MaxInFlight:      pick(o.MaxInFlight, d.MaxInFlight, DefaultMaxInFlight),
		Timeout:          pickD(o.Timeout, d.Timeout, DefaultTimeout),
		MaxAttempts:      pick(o.MaxAttempts, d.MaxAttempts, DefaultMaxAttempts),
		AckWait:          pickD(o.AckWait, d.AckWait, DefaultAckWait),
		BackoffBase:      pickD(o.BackoffBase, d.BackoffBase, DefaultBackoffBase),
		BackoffMax:       pickD(o.BackoffMax, d.BackoffMax, DefaultBackoffMax),
		ProgressInterval: pickD(o.ProgressInterval, d.ProgressInterval, DefaultProgressInterval),
		StopGrace:        pickD(o.StopGrace, d.StopGrace, DefaultStopGrace),
	}
}

// Validate reports options that cannot work (after defaults are applied).
func (o TypeOptions) Validate() error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.Concurrency < 1, "concurrency must be at least 1, got %d", o.Concurrency)
	check(o.MaxInFlight < 1, "max in flight must be at least 1, got %d", o.MaxInFlight)
	check(o.Timeout < time.Second, "timeout must be at least 1s, got %s", o.Timeout)
	check(o.MaxAttempts < 1 || o.MaxAttempts > 1000, "max attempts must be 1..1000, got %d", o.MaxAttempts)
	check(o.AckWait < time.Second, "ack wait must be at least 1s, got %s", o.AckWait)
	check(o.BackoffBase < time.Millisecond || o.BackoffMax < o.BackoffBase,
		"backoff must satisfy 1ms <= base <= max, got %s and %s", o.BackoffBase, o.BackoffMax)
	check(o.ProgressInterval < 0, "progress interval must not be negative")
	check(o.StopGrace < 0, "stop grace must not be negative")
	return errors.Join(errs...)
}

// Config configures a Worker: one process serving one or more job types.
type Config struct {
	// Name identifies this process in job.started events and the registry. Default "<host>-<pid>".
	Name string
	// Logger receives the worker's logs. Default slog.Default().
	Logger *slog.Logger
	// ShutdownGrace is how long Stop lets running jobs finish before it cancels them with ErrStopping
	// and hands them back to the queue. Default 25 s (JOBWIRE_WORKER_SHUTDOWN_GRACE).
	ShutdownGrace time.Duration
	// PresenceTTL is how long this worker's registry entries outlive it if it dies without Stop; they
	// are renewed at a third of it. Default 15 s, at least 3 s.
	PresenceTTL time.Duration
	// Defaults fill the zero fields of every registered type's TypeOptions.
	Defaults TypeOptions
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.PresenceTTL == 0 {
		c.PresenceTTL = DefaultPresenceTTL
	}
}

func (c *Config) validate() error {
	switch {
	case c.ShutdownGrace < 0:
		return fmt.Errorf("shutdown grace must not be negative")
	case c.PresenceTTL < 3*time.Second:
		return fmt.Errorf("presence TTL must be at least 3s, got %s", c.PresenceTTL)
	}
	return c.Defaults.withDefaults(TypeOptions{}).Validate()
}
