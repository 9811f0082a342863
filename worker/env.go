package worker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// EnvVar documents one environment variable that ConfigFromEnv or ConnectOptionsFromEnv reads.
type EnvVar struct {
	Name    string
	Default string // "" when unset means none
	Help    string
}

// EnvVars are the environment variables of a worker process, the same for `jobwire worker` and for
// any binary built on this package.
var EnvVars = []EnvVar{
	{"NATS_URL", nats.DefaultURL, "NATS server URLs, comma-separated"},
	{"NATS_USER", "", "NATS user (with NATS_PASSWORD)"},
	{"NATS_PASSWORD", "", "NATS password"},
	{"NATS_CREDS", "", "NATS credentials file"},
	{"JOBWIRE_WORKER_NAME", "", "name of this worker in job.started events and the registry (default <host>-<pid>)"},
	{"JOBWIRE_WORKER_CONCURRENCY", strconv.Itoa(DefaultConcurrency), "jobs of each type run at once per worker process"},
	{"JOBWIRE_WORKER_MAX_IN_FLIGHT", strconv.Itoa(DefaultMaxInFlight), "jobs of each type in flight over all workers (the consumer's MaxAckPending)"},
	{"JOBWIRE_WORKER_JOB_TIMEOUT", FormatDuration(DefaultTimeout), "an attempt running longer fails with code timeout (and is retried)"},
	{"JOBWIRE_WORKER_MAX_ATTEMPTS", strconv.Itoa(DefaultMaxAttempts), "attempts before a job fails and goes to JOBS_DLQ"},
	{"JOBWIRE_WORKER_ACK_WAIT", FormatDuration(DefaultAckWait), "job lease; a crashed worker's job is redelivered after it"},
	{"JOBWIRE_WORKER_BACKOFF_BASE", FormatDuration(DefaultBackoffBase), "pause before the first retry, doubled per attempt (with jitter)"},
	{"JOBWIRE_WORKER_BACKOFF_MAX", FormatDuration(DefaultBackoffMax), "longest pause between two attempts"},
	{"JOBWIRE_WORKER_STOP_GRACE", FormatDuration(DefaultStopGrace), "a handler that has not returned this long after a cancel or its timeout is abandoned and its slot freed"},
	{"JOBWIRE_WORKER_SHUTDOWN_GRACE", FormatDuration(DefaultShutdownGrace), "on SIGTERM, time running jobs get to finish before they are handed back"},
	{"JOBWIRE_PROGRESS_INTERVAL", FormatDuration(DefaultProgressInterval), "least time between two progress events of one job"},
}

// ConfigFromEnv returns the Config that the JOBWIRE_WORKER_* variables (and JOBWIRE_PROGRESS_INTERVAL)
// describe: they set Name, ShutdownGrace and the Defaults of every type. Unset variables keep the
// package defaults. Every malformed variable is reported in the error.
func ConfigFromEnv() (Config, error) {
	e := envReader{}
	c := Config{
		Name:          e.str("JOBWIRE_WORKER_NAME"),
		ShutdownGrace: e.duration("JOBWIRE_WORKER_SHUTDOWN_GRACE"),
		Defaults: TypeOptions{
			Concurrency:      e.int("JOBWIRE_WORKER_CONCURRENCY"),
			MaxInFlight:      e.int("JOBWIRE_WORKER_MAX_IN_FLIGHT"),
			Timeout:          e.duration("JOBWIRE_WORKER_JOB_TIMEOUT"),
			MaxAttempts:      e.int("JOBWIRE_WORKER_MAX_ATTEMPTS"),
			AckWait:          e.duration("JOBWIRE_WORKER_ACK_WAIT"),
			BackoffBase:      e.duration("JOBWIRE_WORKER_BACKOFF_BASE"),
			BackoffMax:       e.duration("JOBWIRE_WORKER_BACKOFF_MAX"),
			ProgressInterval: e.duration("JOBWIRE_PROGRESS_INTERVAL"),
			StopGrace:        e.duration("JOBWIRE_WORKER_STOP_GRACE"),
		},
	}
	if err := errors.Join(e.errs...); err != nil {
		return c, err
	}
	c.setDefaults()
	return c, c.validate()
}

// ConnectOptionsFromEnv returns the NATS connection settings of NATS_URL, NATS_USER, NATS_PASSWORD
// and NATS_CREDS, for a connection named name.
func ConnectOptionsFromEnv(name string) ConnectOptions {
	e := envReader{}
	return ConnectOptions{URL: e.str("NATS_URL"), Name: name,
		User: e.str("NATS_USER"), Password: e.str("NATS_PASSWORD"), CredsFile: e.str("NATS_CREDS")}
}

// envReader reads declared variables, an unset or blank one as its declared default.
type envReader struct{ errs []error }

func (e *envReader) str(name string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	for _, v := range EnvVars {
		if v.Name == name {
			return v.Default
		}
	}
	panic("worker: undeclared variable " + name)
}

func (e *envReader) int(name string) int {
	s := e.str(name)
	n, err := strconv.Atoi(s)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not an integer", name, s))
	}
	return n
}

func (e *envReader) duration(name string) time.Duration {
	s := e.str(name)
	d, err := time.ParseDuration(s)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not a duration (e.g. 15s, 30m)", name, s))
	}
	return d
}

// FormatDuration writes d as time.Duration.String does, without the zero units it appends to whole
// minutes and hours: "30m", "24h", "1h30m".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
