package mirror

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config configures the mirror. The zero value plus a RedisURL is valid: SetDefaults fills in the
// documented defaults. The environment variable each field is read from (by the CLI) is in brackets.
type Config struct {
	// RedisURL is the Redis to mirror into (REDIS_URL), in go-redis URL form: redis://[user:pass@]host:port/db,
	// rediss:// for TLS or unix:///path. Required: when it is unset the CLI does not build a Mirror at all,
	// so no Redis connection exists anywhere.
	RedisURL string
	// Queue is the BullMQ queue name the legacy readers use (JOBWIRE_LEGACY_QUEUE). Default "sync".
	// Letters, digits, '.', '_' and '-' only: it becomes part of every Redis key.
	Queue string
	// MaxAge is how long a finished job stays in Redis (JOBWIRE_LEGACY_MAX_AGE). Default 300 s.
	MaxAge time.Duration
	// MaxCount is how many finished jobs each of the completed and failed sets keeps at most
	// (JOBWIRE_LEGACY_MAX_COUNT). Default 10.
	MaxCount int
	// ProgressInterval is the coalescing period: a job's non-terminal state is written at most once per
	// interval, however many events arrive. Terminal states are written at once. Default 1 s.
	ProgressInterval time.Duration
	// EventsMaxLen caps the BullMQ events stream (XADD ... MAXLEN ~ n). Default 10000.
	EventsMaxLen int64
	// WarnCommandsPerSec is the Redis command rate (averaged over 10 s) above which the mirror logs a
	// warning. Default 1000.
	WarnCommandsPerSec float64
	// AckWait is the AckWait of the durable consumer: how long JetStream waits for an ack before it
	// redelivers. It must be at least three ProgressIntervals, because a coalesced event is acked only
	// after its write. Default 30 s.
	AckWait time.Duration
}

// Defaults of Config.
const (
	DefaultQueue              = "sync"
	DefaultMaxAge             = 300 * time.Second
	DefaultMaxCount           = 10
	DefaultProgressInterval   = time.Second
	DefaultEventsMaxLen       = 10000
	DefaultWarnCommandsPerSec = 1000
	DefaultAckWait            = 30 * time.Second
)

// ErrConfig is wrapped by every error of Config.Validate and New about the configuration.
var ErrConfig = errors.New("mirror: invalid config")

// queueRE is what a queue name may look like. BullMQ splits keys on ':', so a colon (or a space, a
// glob character or a brace) in the name would make other keys readable or writable.
var queueRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// SetDefaults fills zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.Queue == "" {
		c.Queue = DefaultQueue
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxCount == 0 {
		c.MaxCount = DefaultMaxCount
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.EventsMaxLen == 0 {
		c.EventsMaxLen = DefaultEventsMaxLen
	}
	if c.WarnCommandsPerSec == 0 {
		c.WarnCommandsPerSec = DefaultWarnCommandsPerSec
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
}

// Validate reports a configuration the mirror cannot run with. It does not parse RedisURL (New does).
func (c *Config) Validate() error {
	var err error
	switch {
	case c.RedisURL == "":
		err = errors.New("REDIS_URL is empty (leave the mirror off instead)")
	case !queueRE.MatchString(c.Queue):
		err = fmt.Errorf("queue %q: want 1-64 of [A-Za-z0-9._-], starting with a letter or digit", c.Queue)
	case c.MaxAge < time.Second:
		err = fmt.Errorf("max age must be at least 1s, got %s", c.MaxAge)
	case c.MaxCount < 1:
		err = fmt.Errorf("max count must be at least 1, got %d", c.MaxCount)
	case c.ProgressInterval < 10*time.Millisecond:
		err = fmt.Errorf("progress interval must be at least 10ms, got %s", c.ProgressInterval)
	case c.EventsMaxLen < 1:
		err = fmt.Errorf("events max length must be at least 1, got %d", c.EventsMaxLen)
	case c.WarnCommandsPerSec <= 0:
		err = fmt.Errorf("command warning rate must be positive, got %g", c.WarnCommandsPerSec)
	case c.AckWait < 3*c.ProgressInterval:
		err = fmt.Errorf("ack wait %s must be at least 3 progress intervals (%s)", c.AckWait, 3*c.ProgressInterval)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
