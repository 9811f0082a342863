// Package jobtypes registers the job types this build of jobwire runs, as runner handlers: the playlist
// import and a no-op job (used by benchmarks and smoke tests).
package jobtypes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/importer"
	"github.com/jobwire/jobwire/services/internal/runner"
)

// NoopType is a job that completes at once with an empty result.
const NoopType = "noop"

// Noop returns the no-op handler.
func Noop() runner.Handler {
	return runner.HandlerFunc(func(ctx context.Context, job runner.Job, progress runner.ProgressFunc) (json.RawMessage, error) {
		progress(1, 1, "")
		return json.RawMessage(`{}`), nil
	})
}

// PlaylistImport returns the handler of playlist.import jobs.
func PlaylistImport(im *importer.Importer) runner.Handler {
	return runner.HandlerFunc(func(ctx context.Context, job runner.Job, progress runner.ProgressFunc) (json.RawMessage, error) {
		var in api.PlaylistImport
		dec := json.NewDecoder(bytes.NewReader(job.Input))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return nil, runner.Permanent("invalid_input", fmt.Errorf("input: %w", err))
		}
		res, err := im.Run(ctx, job.Owner, job.ID, in, func(done, total int) {
			progress(done, total, fmt.Sprintf("Importing %d of %d", done, total))
		})
		out, _ := json.Marshal(res)
		switch {
		case err == nil:
			return out, nil
		case ctx.Err() != nil:
			return out, err // cancelled: the partial result is reported
		case errors.Is(err, importer.ErrMalformed):
			return nil, runner.Permanent("malformed_playlist", err)
		case errors.Is(err, importer.ErrTooLarge):
			return nil, runner.Permanent("playlist_too_large", err)
		case errors.Is(err, importer.ErrInvalidInput):
			return nil, runner.Permanent("invalid_input", err)
		}
		return nil, err
	})
}
