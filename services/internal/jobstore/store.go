// Package jobstore is the gateway's view of jobs on JetStream: it submits jobs (an event in JOB_EVENTS,
// a message in JOBS), reads their state from JOB_STATE, their history from JOB_EVENTS, and asks for
// cancellation. It takes owner tokens and job ids that the caller has already validated; it re-checks
// them before building any subject or key.
package jobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Errors of the store. The gateway maps them to API error codes.
var (
	ErrNotFound        = streams.ErrJobNotFound
	ErrFinished        = streams.ErrJobFinished
	ErrIdempotencyKey  = errors.New("idempotency key reused with a different request")
	ErrHistoryTooLarge = streams.ErrHistoryTooLarge
)

// MaxHistory bounds the events History returns.
const MaxHistory = 10000

// Store reads and writes jobs on JetStream.
type Store struct {
	js    jetstream.JetStream
	nc    *nats.Conn
	log   jetstream.Stream
	state jetstream.KeyValue
	idem  jetstream.KeyValue
	now   func() time.Time
	// Retention is how long finished jobs stay in JOB_STATE (streams.Config.StateRetention).
	Retention time.Duration
}

// New opens the streams and buckets the store needs. They must exist (streams.Ensure).
func New(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (*Store, error) {
	events, err := js.Stream(ctx, streams.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", streams.StreamEvents, err)
	}
	state, err := js.KeyValue(ctx, streams.BucketState)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", streams.BucketState, err)
	}
	idem, err := js.KeyValue(ctx, streams.BucketIdempotency)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", streams.BucketIdempotency, err)
	}
	return &Store{js: js, nc: nc, log: events, state: state, idem: idem, now: time.Now, Retention: streams.DefaultStateRetention}, nil
}

// State returns the JOB_STATE bucket (the relay watches it).
func (s *Store) State() jetstream.KeyValue { return s.state }

// Submission is a validated request to run a job.
type Submission struct {
	Owner string
	Type  string
	Name  string
	Input json.RawMessage
	RunAt *time.Time
	// IdempotencyKey, when set, makes the submission idempotent for this owner for 24 h.
	IdempotencyKey string
}

type idemRecord struct {
	JobID       string    `json:"jobId"`
	RequestHash string    `json:"requestHash"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Submit creates a job and queues it. It returns the job's first state and created=false when an
// earlier submission with the same owner and IdempotencyKey already made the job (then nothing new
// runs). Concurrent identical submissions create exactly one job. A submission that failed half-way
// is completed by its retry with the same key.
func (s *Store) Submit(ctx context.Context, sub Submission) (api.JobState, bool, error) {
	if !streams.ValidOwnerToken(sub.Owner) || !streams.ValidJobType(sub.Type) {
		return api.JobState{}, false, fmt.Errorf("submit: invalid owner or type")
	}
	now := s.now().UTC()
	jobID := streams.NewJobID(now)
	created := true
	if sub.IdempotencyKey != "" {
		id, fresh, err := s.claimIdempotencyKey(ctx, sub, jobID, now)
		if err != nil {
			return api.JobState{}, false, err
		}
		if !fresh {
			requeued, err := s.finishSubmission(ctx, sub, id)
			if err != nil {
				return api.JobState{}, false, err
			}
			if requeued {
				st, err := s.Get(ctx, sub.Owner, id)
				return st, false, err
			}
			// The first submission claimed the key but never stored its event: finish it now.
			jobID, created, now = id, false, streams.JobIDTime(id)
		}
	}
	ev := streams.Event{V: streams.EventVersion, Type: streams.EventSubmitted, JobID: jobID, JobType: sub.Type,
		Owner: sub.Owner, At: now, Name: sub.Name, RunAt: sub.RunAt}
	seq, err := s.publishEvent(ctx, ev, 0)
	if err != nil {
		return api.JobState{}, false, err
	}
	ev.Seq = seq
	msg := streams.JobMessage{V: 1, JobID: jobID, Type: sub.Type, Owner: sub.Owner, Input: sub.Input, CreatedAt: now, RunAt: sub.RunAt, EventSeq: seq}
	if err := s.enqueue(ctx, msg); err != nil {
		return api.JobState{}, false, err
	}
	var st api.JobState
	streams.Apply(&st, ev)
	return st, created, nil
}

// finishSubmission makes sure a job that an earlier submission with the same Idempotency-Key created
// is queued: that submission may have stored its job.submitted event and then failed to queue the job
// (a NATS node lost in between). While the job's last event is still job.submitted and the JOBS
// duplicate window has not passed, the job message is published again: JetStream drops it if the first
// one was stored. It reports false when the job has no event at all (nothing was stored).
func (s *Store) finishSubmission(ctx context.Context, sub Submission, jobID string) (bool, error) {
	last, found, err := streams.LastEvent(ctx, s.log, sub.Owner, jobID)
	switch {
	case !found:
		return false, err
	case err != nil || last.Type != streams.EventSubmitted ||
		s.now().Sub(streams.JobIDTime(jobID)) > streams.DefaultDedupeWindow-10*time.Second:
		return true, nil
	}
	msg := streams.JobMessage{V: 1, JobID: jobID, Type: sub.Type, Owner: sub.Owner, Input: sub.Input,
		CreatedAt: last.At, RunAt: last.RunAt, EventSeq: last.Seq}
	return true, s.enqueue(ctx, msg)
}

// claimIdempotencyKey maps the key to jobID unless it already maps to a job; it returns the job id the
// key maps to and whether this call made the mapping.
func (s *Store) claimIdempotencyKey(ctx context.Context, sub Submission, jobID string, now time.Time) (string, bool, error) {
	h := sha256.New()
	h.Write([]byte(sub.Type))
	h.Write([]byte{0})
	h.Write(sub.Input)
	reqHash := hex.EncodeToString(h.Sum(nil))
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

// publishEvent stores ev, retrying until ctx ends while JetStream is unavailable (a leader election).
func (s *Store) publishEvent(ctx context.Context, ev streams.Event, gen int) (seq uint64, err error) {
	err = streams.Retry{}.Do(ctx, func(ctx context.Context) (err error) {
		seq, err = streams.PublishEvent(ctx, s.js, ev, gen)
		return err
	})
	return seq, err
}

// enqueue queues msg, retrying like publishEvent.
func (s *Store) enqueue(ctx context.Context, msg streams.JobMessage) error {
	return streams.Retry{}.Do(ctx, func(ctx context.Context) error { return streams.Enqueue(ctx, s.js, msg, s.now()) })
}

// Get returns a job's state: from JOB_STATE, or, when the projection has not written it yet or it has
// expired there, folded from the job's events.
func (s *Store) Get(ctx context.Context, owner, jobID string) (api.JobState, error) {
	if !streams.ValidOwnerToken(owner) || !streams.ValidJobID(jobID) {
		return api.JobState{}, ErrNotFound
	}
	entry, err := s.state.Get(ctx, streams.StateKey(owner, jobID))
	switch {
	case err == nil:
		return streams.DecodeState(entry.Value(), entry.Revision())
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return api.JobState{}, fmt.Errorf("get job state: %w", err)
	}
	events, err := s.events(ctx, owner, jobID)
	if err != nil {
		return api.JobState{}, err
	}
	if len(events) == 0 {
		return api.JobState{}, ErrNotFound
	}
	st := streams.Fold(events)
	if st.State.Terminal() && st.FinishedAt != nil && s.now().Sub(*st.FinishedAt) > s.Retention-time.Minute {
		return st, nil // expired from JOB_STATE after retention: the log still knows it
	}
	// The projection has not caught up yet. Report the job as just accepted rather than ahead of
	// JOB_STATE, so that a reader never sees a job's state go backwards.
	return streams.Fold(events[:1]), nil
}

// Exists reports whether the job has any event in JOB_EVENTS (one direct get, no consumer).
func (s *Store) Exists(ctx context.Context, owner, jobID string) (bool, error) {
	if !streams.ValidOwnerToken(owner) || !streams.ValidJobID(jobID) {
		return false, nil
	}
	_, found, err := streams.LastEvent(ctx, s.log, owner, jobID)
	if err != nil && !found {
		return false, err
	}
	return found, nil
}

// events reads a job's events in order with direct gets (no consumer is created).
func (s *Store) events(ctx context.Context, owner, jobID string) ([]streams.Event, error) {
	raws, err := streams.ReadEvents(ctx, s.log, owner, jobID, 0, MaxHistory)
	if err != nil {
		return nil, err
	}
	return streams.DecodeEvents(raws), nil
}

// History returns a job's events, oldest first, each with its stream sequence as "seq".
func (s *Store) History(ctx context.Context, owner, jobID string) ([]json.RawMessage, error) {
	if !streams.ValidOwnerToken(owner) || !streams.ValidJobID(jobID) {
		return nil, ErrNotFound
	}
	raws, err := streams.ReadEvents(ctx, s.log, owner, jobID, 0, MaxHistory)
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, ErrNotFound
	}
	out := make([]json.RawMessage, 0, len(raws))
	for _, r := range raws {
		var obj map[string]json.RawMessage
		if json.Unmarshal(r.Data, &obj) != nil {
			continue
		}
		obj["seq"] = json.RawMessage(fmt.Sprint(r.Sequence))
		b, _ := json.Marshal(obj)
		out = append(out, b)
	}
	return out, nil
}

// List returns a page of the owner's jobs in JOB_STATE, newest first, after cursor (a job id).
func (s *Store) List(ctx context.Context, owner, cursor string, limit int, state api.State) (api.JobList, error) {
	if !streams.ValidOwnerToken(owner) {
		return api.JobList{}, ErrNotFound
	}
	lister, err := s.state.ListKeysFiltered(ctx, streams.OwnerKeys(owner))
	if err != nil {
		return api.JobList{}, fmt.Errorf("list jobs: %w", err)
	}
	var ids []string
	for key := range lister.Keys() {
		if _, id, ok := streams.ParseStateKey(key); ok && (cursor == "" || id < cursor) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(b, a) })
	out := api.JobList{Jobs: []api.JobState{}}
	for _, id := range ids {
		if len(out.Jobs) == limit {
			out.NextCursor = out.Jobs[len(out.Jobs)-1].ID
			break
		}
		st, err := s.Get(ctx, owner, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return api.JobList{}, err
		}
		if state == "" || st.State == state {
			out.Jobs = append(out.Jobs, st)
		}
	}
	return out, nil
}

// Cancel asks for a job to stop (streams.Cancel): a queued job is cancelled at once, a running one by
// the worker running it. Cancelling a finished job is ErrFinished.
func (s *Store) Cancel(ctx context.Context, owner, jobID string) (api.JobState, error) {
	st, err := s.Get(ctx, owner, jobID)
	if err != nil {
		return st, err
	}
	if st.State.Terminal() {
		return st, ErrFinished
	}
	ev, err := streams.Cancel(ctx, s.js, s.log, owner, jobID, s.now())
	switch {
	case err != nil:
		return st, err
	case ev != nil:
		streams.Apply(&st, *ev)
	default:
		st.State = api.StateActive
	}
	return st, nil
}

// ErrNotDeadLettered is returned by Retry for a job that has no dead letter to re-queue.
var ErrNotDeadLettered = errors.New("job is not in the dead-letter stream")

// Retry puts a failed job back into its queue from JOBS_DLQ: a job.requeued event first (the job is
// queued again, attempts start over), then the original job message, marked with one more requeue so
// its events are not taken for duplicates of the earlier run's. The dead letter is then removed.
func (s *Store) Retry(ctx context.Context, owner, jobID string) (api.JobState, error) {
	st, err := s.Get(ctx, owner, jobID)
	if err != nil {
		return st, err
	}
	if st.State != api.StateFailed {
		return st, ErrNotDeadLettered
	}
	dlq, err := s.js.Stream(ctx, streams.StreamDeadLetters)
	if err != nil {
		return st, fmt.Errorf("open dead letters: %w", err)
	}
	dead, err := dlq.GetLastMsgForSubject(ctx, streams.DeadLetterSubject(owner, jobID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return st, ErrNotDeadLettered
	}
	if err != nil {
		return st, fmt.Errorf("read dead letter: %w", err)
	}
	var msg streams.JobMessage
	if err := json.Unmarshal(dead.Data, &msg); err != nil || msg.Validate() != nil || msg.JobID != jobID || msg.Owner != owner {
		return st, fmt.Errorf("dead letter of %s is corrupt", jobID)
	}
	msg.Requeued++
	ev := streams.Event{V: streams.EventVersion, Type: streams.EventRequeued, JobID: jobID, JobType: st.Type, Owner: owner, At: s.now().UTC()}
	seq, err := s.publishEvent(ctx, ev, msg.Requeued)
	if err != nil {
		return st, err
	}
	requeue := func(ctx context.Context) error { return streams.Requeue(ctx, s.js, msg) }
	if err := (streams.Retry{}).Do(ctx, requeue); err != nil {
		return st, err
	}
	if err := dlq.DeleteMsg(ctx, dead.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return st, fmt.Errorf("remove dead letter: %w", err)
	}
	ev.Seq = seq
	streams.Apply(&st, ev)
	return st, nil
}
