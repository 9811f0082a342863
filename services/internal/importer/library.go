package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// MaxListLimit is the largest page List returns.
const MaxListLimit = 500

// listFetchers bounds the concurrent reads of one List page.
const listFetchers = 16

// maxAddAttempts bounds the create/read rounds of Add when the key is deleted under it.
const maxAddAttempts = 3

// AddOutcome says what Library.Add did with a track.
type AddOutcome int

// The outcomes of Library.Add. The zero value is none of them (Add failed).
const (
	// AddedNow means this call created the track.
	AddedNow AddOutcome = iota + 1
	// AddedEarlier means the track exists and was created by the same job: an earlier attempt of a
	// redelivered job. It counts as added, so every attempt reports the same result.
	AddedEarlier
	// Existing means another job created the track.
	Existing
)

// String names the outcome.
func (o AddOutcome) String() string {
	switch o {
	case AddedNow:
		return "added-now"
	case AddedEarlier:
		return "added-earlier"
	case Existing:
		return "existing"
	}
	return fmt.Sprintf("AddOutcome(%d)", int(o))
}

// Library reads and writes an owner's tracks in the LIBRARY bucket (streams.BucketLibrary), one key
// per track: streams.TrackKey(owner, Identity(track)). Owners are owner tokens (streams.OwnerToken);
// every method checks them before building a key. A Library is safe for concurrent use.
type Library struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// opTimeout bounds one read or write of the bucket. The caller's ctx may carry a whole job's deadline,
// and a write whose acknowledgement is lost (a stream leader election) would otherwise wait for all of
// it; bounded, it fails in seconds and the job's attempt is retried.
const opTimeout = 10 * time.Second

// NewLibrary returns a Library on kv, the LIBRARY bucket.
func NewLibrary(kv jetstream.KeyValue) *Library {
	return &Library{kv: kv, now: time.Now}
}

// Add stores t for owner as created by jobID, unless its key exists. Once called it finishes its write
// even if ctx is cancelled (each call of the bucket is bounded by opTimeout), so a cancelled import's
// counts match its library. The track's text is normalised
// first (an incomplete track is an error wrapping ErrIncomplete); its Key, JobID and AddedAt are set
// here. Add never duplicates and never overwrites: it creates the key only if it is absent, and when
// it exists compares the stored JobID: AddedEarlier for the same job, Existing for another (or for a
// stored value it cannot read).
func (l *Library) Add(ctx context.Context, owner, jobID string, t api.Track) (AddOutcome, error) {
	if !streams.ValidOwnerToken(owner) {
		return 0, fmt.Errorf("add track: %w: %w", ErrInvalidInput, streams.ErrInvalidOwner)
	}
	if jobID == "" {
		return 0, fmt.Errorf("add track: %w: empty job id", ErrInvalidInput)
	}
	n, err := Normalize(Entry{Artist: t.Artist, Title: t.Title, Album: t.Album, DurationSec: t.DurationSec})
	if err != nil {
		return 0, fmt.Errorf("add track: %w", err)
	}
	key := streams.TrackKey(owner, Identity(n))
	value, err := json.Marshal(api.Track{
		Key: key, Artist: n.Artist, Title: n.Title, Album: n.Album, DurationSec: n.DurationSec,
		JobID: jobID, AddedAt: l.now().UTC(),
	})
	if err != nil {
		return 0, fmt.Errorf("add track %s: encode: %w", key, err)
	}
	// A write that started finishes, cancelled or not, so that the caller counts what the library holds.
	ctx = context.WithoutCancel(ctx)
	for range maxAddAttempts {
		opCtx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := l.kv.Create(opCtx, key, value)
		cancel()
		if err == nil {
			return AddedNow, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("add track %s: %w", key, err)
		}
		opCtx, cancel = context.WithTimeout(ctx, opTimeout)
		entry, err := l.kv.Get(opCtx, key)
		cancel()
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted since Create saw it: try again
		}
		if err != nil {
			return 0, fmt.Errorf("add track %s: read existing: %w", key, err)
		}
		var old api.Track
		if json.Unmarshal(entry.Value(), &old) == nil && old.JobID == jobID {
			return AddedEarlier, nil
		}
		return Existing, nil
	}
	return 0, fmt.Errorf("add track %s: key created and deleted %d times in a row", key, maxAddAttempts)
}

// List returns up to limit (1..MaxListLimit) of owner's tracks in key order, starting after cursor
// (empty for the first page, else a key of this owner, usually the NextCursor of the previous page).
// NextCursor is set when more tracks follow. A bad owner, limit or cursor is an error wrapping
// ErrInvalidInput. It lists the owner's keys (one short-lived, metadata-only watch) and reads the
// page's values, so its cost grows with the owner's library and the page, not with other owners.
func (l *Library) List(ctx context.Context, owner, cursor string, limit int) (api.TrackList, error) {
	if !streams.ValidOwnerToken(owner) {
		return api.TrackList{}, fmt.Errorf("list tracks: %w: %w", ErrInvalidInput, streams.ErrInvalidOwner)
	}
	if limit < 1 || limit > MaxListLimit {
		return api.TrackList{}, fmt.Errorf("list tracks: %w: limit %d not in 1..%d", ErrInvalidInput, limit, MaxListLimit)
	}
	if cursor != "" && !strings.HasPrefix(cursor, owner+".") {
		return api.TrackList{}, fmt.Errorf("list tracks: %w: cursor is not a key of this owner", ErrInvalidInput)
	}
	keys, err := l.keysAfter(ctx, owner, cursor)
	if err != nil {
		return api.TrackList{}, err
	}
	out := api.TrackList{Tracks: []api.Track{}}
	if len(keys) > limit {
		keys = keys[:limit]
		out.NextCursor = keys[limit-1]
	}
	tracks, err := l.getAll(ctx, keys)
	if err != nil {
		return api.TrackList{}, err
	}
	for _, t := range tracks {
		if t != nil {
			out.Tracks = append(out.Tracks, *t)
		}
	}
	return out, nil
}

// keysAfter returns owner's keys greater than cursor, sorted, without repeats.
func (l *Library) keysAfter(ctx context.Context, owner, cursor string) ([]string, error) {
	lister, err := l.kv.ListKeysFiltered(ctx, streams.OwnerKeys(owner))
	if err != nil {
		return nil, fmt.Errorf("list tracks: list keys: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		if k > cursor {
			keys = append(keys, k)
		}
	}
	// The lister closes its channel early, without an error, when ctx ends.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list tracks: list keys: %w", err)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// getAll reads the values of keys with a few concurrent reads. A key deleted meanwhile gives nil.
func (l *Library) getAll(ctx context.Context, keys []string) ([]*api.Track, error) {
	tracks := make([]*api.Track, len(keys))
	errs := make([]error, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(listFetchers, len(keys)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) || ctx.Err() != nil {
					return
				}
				tracks[i], errs[i] = l.get(ctx, keys[i])
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list tracks: %w", err)
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("list tracks: %w", err)
		}
	}
	return tracks, nil
}

// get reads one track; nil when the key is gone.
func (l *Library) get(ctx context.Context, key string) (*api.Track, error) {
	entry, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	var t api.Track
	if err := json.Unmarshal(entry.Value(), &t); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	t.Key = key
	return &t, nil
}
