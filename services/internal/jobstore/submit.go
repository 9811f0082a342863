package jobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Submission is a validated request to run a job.
type Submission struct {
	Owner string
	Type  string
	Name  string
	Input json.RawMessage
	RunAt *time.Time
	// Timeout and MaxAttempts, when set, are the job's own limits.
	Timeout     time.Duration
	MaxAttempts int
	// IdempotencyKey, when set, makes the submission idempotent for this owner for 24 h.
	IdempotencyKey string
}

// message is the job message of the submission for job id, created at createdAt.
func (sub Submission) message(id string, createdAt time.Time) streams.JobMessage {
	return streams.JobMessage{V: 1, JobID: id, Type: sub.Type, Owner: sub.Owner, Name: sub.Name, Input: sub.Input,
		CreatedAt: createdAt, RunAt: sub.RunAt, Timeout: sub.Timeout, MaxAttempts: sub.MaxAttempts}
}

// fingerprint identifies what the submission runs: two submissions with one Idempotency-Key must
// agree on it. A submission without options hashes as before options existed.
func (sub Submission) fingerprint() string {
	h := sha256.New()
	h.Write([]byte(sub.Type))
	h.Write([]byte{0})
	h.Write(sub.Input)
	if sub.RunAt != nil || sub.Timeout != 0 || sub.MaxAttempts != 0 {
		opts, _ := json.Marshal(struct {
			RunAt       *time.Time    `json:"runAt"`
			Timeout     time.Duration `json:"timeout"`
			MaxAttempts int           `json:"maxAttempts"`
		}{sub.RunAt, sub.Timeout, sub.MaxAttempts})
		h.Write([]byte{0})
		h.Write(opts)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type idemRecord struct {
	JobID       string    `json:"jobId"`
	RequestHash string    `json:"requestHash"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Submit creates a job and queues it (streams.Submit: its message first, then its job.submitted
// event). It returns the job's first state, and created=false when an earlier submission with the same
// owner and IdempotencyKey already made the job (then nothing new runs). Concurrent identical
// submissions create exactly one job; the same key with another request is ErrIdempotencyKey. A
// submission that failed half-way is completed by its retry with the same key: both writes are
// deduplicated, and a copy of a job message that already ran is skipped by the workers.
func (s *Store) Submit(ctx context.Context, sub Submission) (api.JobState, bool, error) {
	if !streams.ValidOwnerToken(sub.Owner) || !streams.ValidJobType(sub.Type) {
		return api.JobState{}, false, fmt.Errorf("submit: invalid owner or type")
	}
	now := s.now().UTC()
	msg, created := sub.message(streams.NewJobID(now), now), true
	if sub.IdempotencyKey != "" {
		id, fresh, err := s.claimIdempotencyKey(ctx, sub, msg.JobID, now)
		if err != nil {
			return api.JobState{}, false, err
		}
		if !fresh {
			st, err := s.Get(ctx, sub.Owner, id)
			if !errors.Is(err, ErrNotFound) {
				return st, false, err
			}
			// The first submission claimed the key and stopped before its event: finish it.
			msg, created = sub.message(id, streams.JobIDTime(id)), false
		}
	}
	ev, err := streams.Submit(ctx, s.js, msg, now)
	if err != nil {
		return api.JobState{}, false, err
	}
	var st api.JobState
	streams.Apply(&st, ev)
	return st, created, nil
}

// claimIdempotencyKey maps the key to jobID unless it already maps to a job; it returns the job id the
// key maps to and whether this call made the mapping.
func (s *Store) claimIdempotencyKey(ctx context.Context, sub Submission, jobID string, now time.Time) (string, bool, error) {
	reqHash := sub.fingerprint()
	key := streams.IdempotencyKey(sub.Owner, sub.IdempotencyKey)
	rec, _ := json.Marshal(idemRecord{JobID: jobID, RequestHash: reqHash, CreatedAt: now})
	_, err := s.idem.Create(ctx, key, rec)
	if err == nil {
		return jobID, true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", false, fmt.Errorf("claim idempotency key: %w", err)
	}
	entry, err := s.idem.Get(ctx, key)
	if err != nil {
		return "", false, fmt.Errorf("read idempotency key: %w", err)
	}
	var prev idemRecord
	if err := json.Unmarshal(entry.Value(), &prev); err != nil || !streams.ValidJobID(prev.JobID) {
		return "", false, fmt.Errorf("read idempotency key: corrupt record")
	}
	if prev.RequestHash != reqHash {
		return "", false, ErrIdempotencyKey
	}
	return prev.JobID, false, nil
}
