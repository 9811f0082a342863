package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/streams"
)

// uniqueRecord is what a unique key maps to: the job it made, and until when the key holds.
type uniqueRecord struct {
	JobID string    `json:"jobId"`
	Until time.Time `json:"until"`
}

// uniqueTries bounds how often claimUniqueKey reads the key again after a concurrent submit moved it.
const uniqueTries = 5

// claimUniqueKey makes the owner's unique key of the job type name jobID, unless it names a job that is
// not finished and its window is open: then it answers with that job (done, created=false), or, when
// that job's submit has not written it yet, with its message to finish under its id (as an idempotent
// retry does). Every change of the key is a compare-and-swap, so of concurrent submits one job wins.
// A fresh claim returns a prepared with created=true and no message (the caller's stands).
func (s *Store) claimUniqueKey(ctx context.Context, sub Submission, jobID string, now time.Time) prepared {
	key := streams.UniqueKey(sub.Owner, sub.Type, sub.UniqueKey)
	rec, _ := json.Marshal(uniqueRecord{JobID: jobID, Until: now.Add(sub.UniqueFor)})
	for range uniqueTries {
		entry, err := s.idem.Get(ctx, key)
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = s.idem.Create(ctx, key, rec)
		case err != nil:
			return prepared{done: true, err: fmt.Errorf("read unique key: %w", err)}
		default:
			if p, held := s.heldBy(ctx, sub, entry.Value(), now); held {
				return p
			}
			rev = entry.Revision()
			_, err = s.idem.Update(ctx, key, rec, rev)
		}
		if err == nil {
			return prepared{created: true}
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !streams.IsWrongLastSequence(err) {
			return prepared{done: true, err: fmt.Errorf("claim unique key: %w", err)}
		}
	}
	return prepared{done: true, err: fmt.Errorf("claim unique key: too many concurrent submits")}
}

// heldBy decides on the job a unique key names: held while it is unfinished and the window open. The
// job's last event decides (the log is ahead of JOB_STATE: a job cancelled a moment ago frees its key
// at once); the answer is the job's state as Get reads it.
func (s *Store) heldBy(ctx context.Context, sub Submission, value []byte, now time.Time) (prepared, bool) {
	var prev uniqueRecord
	if json.Unmarshal(value, &prev) != nil || !streams.ValidJobID(prev.JobID) || !now.Before(prev.Until) {
		return prepared{}, false // corrupt or expired: the key is free
	}
	last, found, err := streams.LastEvent(ctx, s.log, sub.Owner, prev.JobID)
	switch {
	case !found && err != nil:
		return prepared{done: true, err: err}, true
	case !found:
		// Its submit claimed the key and has not written the job (yet, or ever): finish it.
		return prepared{msg: sub.message(prev.JobID, streams.JobIDTime(prev.JobID))}, true
	case err == nil && last.Terminal():
		return prepared{}, false
	}
	st, err := s.Get(ctx, sub.Owner, prev.JobID)
	return prepared{done: true, state: st, err: err}, true
}
