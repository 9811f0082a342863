package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// JobType is one entry of GET /v1/job-types: a job type, as the workers that serve it registered it.
type JobType struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Schema is the JSON Schema of the input, as registered last. A submit must match every version
	// served by an online worker (see Workers[].SchemaHash), or this one when none is online.
	Schema     json.RawMessage `json:"schema"`
	SchemaHash string          `json:"schemaHash"`
	Options    JobTypeOptions  `json:"options"`
	// Online is true while at least one worker serves the type. Jobs of an offline type are accepted
	// and wait in the queue until a worker comes.
	Online       bool            `json:"online"`
	Workers      []JobTypeWorker `json:"workers"`
	RegisteredAt time.Time       `json:"registeredAt"`
	// Paused is true while an operator has paused the type: its workers fetch no job, running ones
	// finish, and submits still queue.
	Paused bool `json:"paused"`
	// PausedAt and PausedBy (the operator's owner token) say who paused it, when.
	PausedAt *time.Time `json:"pausedAt,omitempty"`
	PausedBy string     `json:"pausedBy,omitempty"`
	// RateLimit caps the type's job starts over every worker; nil: no cap.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// RateLimit is a cluster-wide cap on a job type's starts: at most Limit jobs start in any window of
// Interval, over every worker of the type (PUT /v1/job-types/{type}/rate-limit).
type RateLimit struct {
	Limit    int      `json:"limit"`
	Interval Duration `json:"interval"`
}

// Bounds of a RateLimit.
const (
	MaxRateLimit         = 100_000
	MinRateLimitInterval = time.Second
	MaxRateLimitInterval = 24 * time.Hour
)

// Validate reports a limit outside its bounds.
func (l RateLimit) Validate() error {
	if l.Limit < 1 || l.Limit > MaxRateLimit {
		return fmt.Errorf("rate limit: limit must be 1..%d, got %d", MaxRateLimit, l.Limit)
	}
	if d := time.Duration(l.Interval); d < MinRateLimitInterval || d > MaxRateLimitInterval {
		return fmt.Errorf("rate limit: interval must be %s..%s, got %s", MinRateLimitInterval, MaxRateLimitInterval, d)
	}
	return nil
}

// JobTypeOptions are the settings a job type was registered with.
type JobTypeOptions struct {
	// MaxInFlight caps the type's jobs running at once over every worker.
	MaxInFlight int `json:"maxInFlight"`
	// MaxAttempts is how often a job runs before it fails for good.
	MaxAttempts int `json:"maxAttempts"`
	// Timeout bounds one attempt.
	Timeout Duration `json:"timeout"`
	// AckWait is the lease of a running job: a worker that is gone loses its job after it.
	AckWait Duration `json:"ackWait"`
	// BackoffBase and BackoffMax bound the exponential backoff between attempts.
	BackoffBase Duration `json:"backoffBase"`
	BackoffMax  Duration `json:"backoffMax"`
}

// JobTypeWorker is one worker process serving a job type now.
type JobTypeWorker struct {
	ID          string    `json:"id"`
	Concurrency int       `json:"concurrency"`
	SchemaHash  string    `json:"schemaHash"`
	SDK         string    `json:"sdk,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
}

// JobTypeList is the answer of GET /v1/job-types, sorted by name.
type JobTypeList struct {
	JobTypes []JobType `json:"jobTypes"`
}

// Duration is a time.Duration written in JSON as Go's duration syntax ("90s", "1m30s").
type Duration time.Duration

// MarshalJSON writes d as a string such as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a string such as "90s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"90s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}
