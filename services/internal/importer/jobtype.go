package importer

import (
	"context"
	"errors"
	"fmt"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/worker"
)

// MaxName bounds the name of an import.
const MaxName = 200

// JobType is playlist.import as a job type of the public worker SDK, run by im. Its schema checks what
// is cheap to check before the job is queued (a known format, content of at most the importer's
// MaxBytes, a short name); the importer checks the rest while it reads the playlist, and failures no
// retry can fix fail the job at once with a stable code (malformed_playlist, playlist_too_large,
// invalid_input).
func JobType(im *Importer) worker.Type[api.PlaylistImport, api.ImportResult] {
	lim := im.Limits
	lim.SetDefaults()
	schema := fmt.Sprintf(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
		"properties":{
			"name":{"type":"string","maxLength":%d,"description":"shown in listings"},
			"format":{"enum":[%q,%q,%q,%q]},
			"content":{"type":"string","minLength":1,"maxLength":%d,"pattern":"\\S","description":"the playlist text"}},
		"required":["format","content"],"additionalProperties":false}`,
		MaxName, api.FormatM3U, api.FormatXSPF, api.FormatCSV, api.FormatJSON, lim.MaxBytes)
	return worker.Type[api.PlaylistImport, api.ImportResult]{
		Name:        api.JobTypePlaylistImport,
		Description: "Imports a playlist (m3u, xspf, csv or json) into the caller's library, one track at a time.",
		Schema:      []byte(schema),
		NameField:   "name",
		Handle: func(ctx context.Context, job *worker.Job[api.PlaylistImport], progress worker.Progress) (api.ImportResult, error) {
			res, err := im.Run(ctx, job.Owner, job.ID, job.Input, func(done, total int) {
				progress.Report(done, total, fmt.Sprintf("Importing %d of %d", done, total))
			})
			switch {
			case err == nil, ctx.Err() != nil:
				return res, err // cancelled: the partial result is reported
			case errors.Is(err, ErrMalformed):
				return res, worker.Permanent("malformed_playlist", err)
			case errors.Is(err, ErrTooLarge):
				return res, worker.Permanent("playlist_too_large", err)
			case errors.Is(err, ErrInvalidInput):
				return res, worker.Permanent(worker.CodeInvalidInput, err)
			}
			return res, err
		},
	}
}
