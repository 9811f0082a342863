package jobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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
	// Priority is the job's level (normal: empty).
	Priority api.Priority
	// IdempotencyKey, when set, makes the submission idempotent for this owner for 24 h.
	IdempotencyKey string
	// UniqueKey, when set, makes the job unique among the owner's unfinished jobs of its type for up to
	// UniqueFor (at most the idempotency window) after it is submitted: see claimUniqueKey.
	UniqueKey string
	UniqueFor time.Duration
	// JobID, when set, is the job's id instead of a new one: a periodic job's tick derives it
	// (streams.Schedule.TickJobID), so handling a tick again makes the same job.
	JobID string
}

// claims reports whether preparing the submission reads or writes a key (and so does I/O).
func (sub Submission) claims() bool { return sub.IdempotencyKey != "" || sub.UniqueKey != "" }

// message is the job message of the submission for job id, created at createdAt.
func (sub Submission) message(id string, createdAt time.Time) streams.JobMessage {
	return streams.JobMessage{V: 1, JobID: id, Type: sub.Type, Owner: sub.Owner, Name: sub.Name, Input: sub.Input,
		CreatedAt: createdAt, RunAt: sub.RunAt, Timeout: sub.Timeout, MaxAttempts: sub.MaxAttempts, Priority: sub.Priority}
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
	if sub.Priority != "" {
		fmt.Fprintf(h, "\x00priority:%s", sub.Priority)
	}
	if sub.UniqueKey != "" {
		fmt.Fprintf(h, "\x00unique:%d:%s:%d", len(sub.UniqueKey), sub.UniqueKey, sub.UniqueFor)
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
	now := s.now().UTC()
	p := s.prepare(ctx, sub, now)
	if p.done {
		return p.state, false, p.err
	}
	ev, err := streams.Submit(ctx, s.js, p.msg, now)
	if err != nil {
		return api.JobState{}, false, err
	}
	return stateOf(ev), p.created, nil
}

// SubmitResult is what became of one submission of SubmitMany.
type SubmitResult struct {
	State   api.JobState
	Created bool
	Err     error
}

// maxKeyClaims bounds the idempotency and unique keys SubmitMany claims at once.
const maxKeyClaims = 32

// SubmitMany submits each of subs as Submit does, with the same guarantees per submission, and the
// writes of the whole batch pipelined (streams.SubmitMany). It returns one result per submission, in
// order; one submission's error does not stop the others.
func (s *Store) SubmitMany(ctx context.Context, subs []Submission) []SubmitResult {
	now := s.now().UTC()
	prepared := make([]prepared, len(subs))
	sem := make(chan struct{}, maxKeyClaims)
	var wg sync.WaitGroup
	for i, sub := range subs {
		if !sub.claims() {
			prepared[i] = s.prepare(ctx, sub, now) // no I/O
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			prepared[i] = s.prepare(ctx, sub, now)
		}()
	}
	wg.Wait()
	out := make([]SubmitResult, len(subs))
	var msgs []streams.JobMessage
	var at []int
	for i, p := range prepared {
		if p.done {
			out[i] = SubmitResult{State: p.state, Err: p.err}
			continue
		}
		msgs, at = append(msgs, p.msg), append(at, i)
	}
	events, errs := streams.SubmitMany(ctx, s.js, msgs, now)
	for k, i := range at {
		out[i] = SubmitResult{Created: prepared[i].created, Err: errs[k]}
		if errs[k] == nil {
			out[i].State = stateOf(events[k])
		}
	}
	return out
}

// prepared is a submission made ready to write: its job message, or (done) its answer already.
type prepared struct {
	msg     streams.JobMessage
	created bool
	done    bool
	state   api.JobState
	err     error
}

// prepare gives the submission its job id, or finds the job an earlier submission with the same
// unique or idempotency key made (done, unless that one stopped before its event: then its message is
// written again under its id).
func (s *Store) prepare(ctx context.Context, sub Submission, now time.Time) prepared {
	if !streams.ValidOwnerToken(sub.Owner) || !streams.ValidJobType(sub.Type) || sub.JobID != "" && !streams.ValidJobID(sub.JobID) {
		return prepared{done: true, err: fmt.Errorf("submit: invalid owner, type or job id")}
	}
	id := sub.JobID
	if id == "" {
		id = streams.NewJobID(now)
	}
	p := prepared{msg: sub.message(id, now), created: true}
	if sub.UniqueKey != "" {
		if u := s.claimUniqueKey(ctx, sub, p.msg.JobID, now); u.done || !u.created {
			return u // the unique key's job, or the one it names to finish
		}
	}
	if sub.IdempotencyKey == "" {
		return p
	}
	id, fresh, err := s.claimIdempotencyKey(ctx, sub, p.msg.JobID, now)
	if err != nil {
		return prepared{done: true, err: err}
	}
	if fresh {
		return p
	}
	st, err := s.Get(ctx, sub.Owner, id)
	if !errors.Is(err, ErrNotFound) {
		return prepared{done: true, state: st, err: err}
	}
	// The first submission claimed the key and stopped before its event: finish it.
	return prepared{msg: sub.message(id, streams.JobIDTime(id))}
}

// stateOf is a job's state right after its submitted event.
func stateOf(ev streams.Event) api.JobState {
	var st api.JobState
	streams.Apply(&st, ev)
	return st
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
