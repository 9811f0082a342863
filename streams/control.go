package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
)

// ControlEntry is what operators set for a job type, under ControlKey(Type): whether its workers
// fetch jobs and how fast they may start them. Gateways write it with compare-and-swap (operators'
// routes); every worker of the type watches it, so a change reaches them all at once. A type without
// an entry runs unpaused and unlimited.
type ControlEntry struct {
	V      int    `json:"v"`
	Type   string `json:"type"`
	Paused bool   `json:"paused"`
	// PausedAt and PausedBy (an owner token) say who paused the type, when; empty while it runs.
	PausedAt  *time.Time     `json:"pausedAt,omitempty"`
	PausedBy  string         `json:"pausedBy,omitempty"`
	RateLimit *api.RateLimit `json:"rateLimit,omitempty"`
	UpdatedAt time.Time      `json:"updatedAt"`
	UpdatedBy string         `json:"updatedBy"`
}

// Validate checks what a reader relies on.
func (e *ControlEntry) Validate() error {
	switch {
	case e.V < 1 || e.V > RegistryVersion:
		return fmt.Errorf("control entry version %d not supported (max %d)", e.V, RegistryVersion)
	case !ValidJobType(e.Type):
		return fmt.Errorf("control entry: %w %q", ErrInvalidJobType, e.Type)
	case e.RateLimit != nil:
		return e.RateLimit.Validate()
	}
	return nil
}

// maxControlRetries bounds UpdateControl's compare-and-swap loop (another operator writing at the
// same moment).
const maxControlRetries = 5

// UpdateControl applies change to the job type's control entry in the JOB_TYPES bucket kv, with
// compare-and-swap on the revision it read, so two operators acting at once both take effect. It
// returns the entry as stored.
func UpdateControl(ctx context.Context, kv jetstream.KeyValue, jobType, operator string, change func(*ControlEntry)) (ControlEntry, error) {
	key := ControlKey(jobType)
	for range maxControlRetries {
		e, rev, err := readControl(ctx, kv, jobType)
		if err != nil {
			return ControlEntry{}, err
		}
		change(&e)
		e.V, e.Type = RegistryVersion, jobType
		e.UpdatedAt, e.UpdatedBy = time.Now().UTC(), operator
		data, err := json.Marshal(e)
		if err != nil {
			return ControlEntry{}, fmt.Errorf("encode control entry: %w", err)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, data)
		} else {
			_, err = kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return e, nil
		}
		if !IsWrongLastSequence(err) && !errors.Is(err, jetstream.ErrKeyExists) {
			return ControlEntry{}, fmt.Errorf("write %s: %w", key, err)
		}
	}
	return ControlEntry{}, fmt.Errorf("write %s: changed by others %d times in a row", key, maxControlRetries)
}

// readControl returns the type's control entry and its revision; the zero entry and revision 0 when
// there is none (or only a delete marker).
func readControl(ctx context.Context, kv jetstream.KeyValue, jobType string) (ControlEntry, uint64, error) {
	kve, err := kv.Get(ctx, ControlKey(jobType))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return ControlEntry{}, 0, nil
	case err != nil:
		return ControlEntry{}, 0, fmt.Errorf("read %s: %w", ControlKey(jobType), err)
	}
	var e ControlEntry
	if err := DecodeRegistryEntry(kve.Value(), &e); err != nil {
		// A malformed entry is replaced by the next write, never left to block the operators.
		return ControlEntry{}, kve.Revision(), nil
	}
	return e, kve.Revision(), nil
}
