// Package jobtypes registers the job types that jobwire's own worker serves, on the public worker SDK
// like any other: playlist.import (package importer) and, when enabled, noop (benchmarks and smoke
// tests).
package jobtypes

import (
	"context"
	"encoding/json"

	"github.com/jobwire/jobwire/services/internal/importer"
	"github.com/jobwire/jobwire/worker"
)

// NoopType is a job that completes at once with an empty result and takes any input.
const NoopType = "noop"

// Noop is the no-op job type.
var Noop = worker.Type[json.RawMessage, struct{}]{
	Name:        NoopType,
	Description: "Does nothing and completes at once; any input. For benchmarks and smoke tests.",
	Handle: func(_ context.Context, _ *worker.Job[json.RawMessage], progress worker.Progress) (struct{}, error) {
		progress.Report(1, 1, "")
		return struct{}{}, nil
	},
}

// Register adds playlist.import, run by im, to w, and noop when noop is true.
func Register(w *worker.Worker, im *importer.Importer, noop bool) error {
	if err := w.Register(importer.JobType(im)); err != nil {
		return err
	}
	if noop {
		return w.Register(Noop)
	}
	return nil
}
