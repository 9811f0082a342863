package jobstore

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/jobwire/jobwire/streams"
)

// MaxHistoryPage bounds the events of one page of History; DefaultHistoryPage is a page's size when the
// caller does not say.
const (
	MaxHistoryPage     = 10000
	DefaultHistoryPage = 1000
)

// events reads a job's events in order, for the fold (batched direct gets, no consumer).
func (s *Store) events(ctx context.Context, owner, jobID string) ([]streams.Event, error) {
	raws, _, err := streams.ReadEvents(ctx, s.js, owner, jobID, 0, foldLimit)
	if err != nil {
		return nil, err
	}
	return streams.DecodeEvents(raws), nil
}

// History returns up to limit of a job's events, oldest first, from stream sequence cursor (0: the
// first), each with its stream sequence as "seq", and the cursor of the next page (0 on the last).
func (s *Store) History(ctx context.Context, owner, jobID string, cursor uint64, limit int) ([]json.RawMessage, uint64, error) {
	if !streams.ValidOwnerToken(owner) || !streams.ValidJobID(jobID) {
		return nil, 0, ErrNotFound
	}
	raws, more, err := streams.ReadEvents(ctx, s.js, owner, jobID, cursor, limit)
	if err != nil {
		return nil, 0, err
	}
	if len(raws) == 0 && cursor <= 1 {
		return nil, 0, ErrNotFound
	}
	out := make([]json.RawMessage, 0, len(raws))
	for _, r := range raws {
		var obj map[string]json.RawMessage
		if json.Unmarshal(r.Data, &obj) != nil {
			continue
		}
		obj["seq"] = json.RawMessage(strconv.FormatUint(r.Sequence, 10))
		b, _ := json.Marshal(obj)
		out = append(out, b)
	}
	var next uint64
	if more {
		next = raws[len(raws)-1].Sequence + 1
	}
	return out, next, nil
}
