// Package jobstore is the gateway's view of jobs on JetStream: it submits jobs (an event in JOB_EVENTS,
// a message in JOBS), reads their state from JOB_STATE, their history from JOB_EVENTS, and asks for
// cancellation. It takes owner tokens and job ids that the caller has already validated; it re-checks
// them before building any subject or key.
package jobstore

import (
	"context"
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
	ErrNotFound       = streams.ErrJobNotFound
	ErrFinished       = streams.ErrJobFinished
	ErrIdempotencyKey = errors.New("idempotency key reused with a different request")
	// ErrNotDeadLettered is returned by Retry for a job that has no dead letter to re-queue.
	ErrNotDeadLettered = errors.New("job is not in the dead-letter stream")
)

// foldLimit bounds the events Get folds when a job's state is not in JOB_STATE.
const foldLimit = 100000

// Store reads and writes jobs on JetStream.
type Store struct {
	js    jetstream.JetStream
	nc    *nats.Conn
	log   jetstream.Stream
	state jetstream.KeyValue
	idem  jetstream.KeyValue
	dlq   jetstream.Stream // JOBS_DLQ
	ticks jetstream.Stream // JOBS_TICKS
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
	dlq, err := js.Stream(ctx, streams.StreamDeadLetters)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", streams.StreamDeadLetters, err)
	}
	ticks, err := js.Stream(ctx, streams.StreamTicks)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", streams.StreamTicks, err)
	}
	return &Store{js: js, nc: nc, log: events, state: state, idem: idem, dlq: dlq, ticks: ticks, now: time.Now, Retention: streams.DefaultStateRetention}, nil
}

// State returns the JOB_STATE bucket (the relay watches it).
func (s *Store) State() jetstream.KeyValue { return s.state }

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
