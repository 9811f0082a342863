package importer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jobwire/jobwire/api"
)

// ErrTrackRejected is wrapped by a Resolver that does not know a track or refuses it. Run counts such
// a track as invalid and goes on; any other Resolve error is taken as transient and ends the run so
// the job is retried.
var ErrTrackRejected = errors.New("track rejected")

// Resolver looks a track up. The default, LocalResolver, only normalises; a real catalogue would be
// remote. Resolve must honour ctx cancellation and is called for one track at a time. The Key, JobID
// and AddedAt of the track it returns are ignored (the Library sets them).
type Resolver interface {
	Resolve(ctx context.Context, e Entry) (api.Track, error)
}

// LocalResolver resolves a track by normalising it locally. It waits Delay per track first, to behave
// like a remote catalogue (the worker sets it from JOBWIRE_IMPORT_TRACK_DELAY); the wait ends early,
// with ctx.Err(), when ctx is cancelled.
type LocalResolver struct {
	Delay time.Duration
}

// Resolve waits Delay, then returns the normalised track. An entry without artist or title is
// rejected (ErrTrackRejected).
func (r LocalResolver) Resolve(ctx context.Context, e Entry) (api.Track, error) {
	if err := sleep(ctx, r.Delay); err != nil {
		return api.Track{}, err
	}
	n, err := Normalize(e)
	if err != nil {
		return api.Track{}, fmt.Errorf("%w: %w", ErrTrackRejected, err)
	}
	return api.Track{Artist: n.Artist, Title: n.Title, Album: n.Album, DurationSec: n.DurationSec}, nil
}

// sleep waits d or until ctx is done, whichever is first, and returns ctx.Err() in the second case.
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
