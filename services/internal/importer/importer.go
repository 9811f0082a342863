package importer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// MaxInvalidLines bounds ImportResult.InvalidLines; ImportResult.Invalid counts them all.
const MaxInvalidLines = 100

// Importer runs playlist.import jobs. Library is required; a nil Resolver is LocalResolver{} (no
// delay) and zero Limits take their defaults. An Importer is safe for concurrent use if its Resolver
// is.
type Importer struct {
	Library  *Library
	Resolver Resolver
	Limits   Limits
}

// ProgressFunc is told after each track how many of the unique valid tracks are done (done, total).
// It is called from Run's goroutine, often: the caller coalesces.
type ProgressFunc func(done, total int)

// Run imports the playlist in for owner (an owner token) as job jobID: it parses and normalises the
// tracks, counts repeats within the playlist as duplicates, then resolves and adds each unique track
// to the library in playlist order. progress (may be nil) gets (0, total) once parsing is done and
// (i, total) after the i-th track, total being the number of unique valid tracks.
//
// Input that can never import (no content, no or unknown format, a malformed or too large
// playlist) returns an error wrapping ErrInvalidInput, ErrMalformed or ErrTooLarge (see IsPermanent),
// and the job should fail without retry. A playlist without a single valid track is not an error: it
// completes with Added 0 and its invalid lines.
//
// Running the same job again gives the same result: tracks an earlier attempt of jobID added still
// count as added. When ctx is cancelled Run stops within one track's resolution and returns what it did
// so far with ctx.Err() (the writes already started finish and are counted). Any other error (the library unreachable, a resolver failing) ends the run with the
// partial result and the error wrapped; a retry picks up where it stopped.
func (im *Importer) Run(ctx context.Context, owner, jobID string, in api.PlaylistImport, progress ProgressFunc) (api.ImportResult, error) {
	res := api.ImportResult{InvalidLines: []api.InvalidLine{}}
	if im.Library == nil {
		return res, errors.New("import: no library")
	}
	if !streams.ValidOwnerToken(owner) {
		return res, fmt.Errorf("import: %w: %w", ErrInvalidInput, streams.ErrInvalidOwner)
	}
	if jobID == "" {
		return res, fmt.Errorf("import: %w: empty job id", ErrInvalidInput)
	}
	format, err := inputFormat(in)
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	entries, invalid, err := parseTraced(ctx, format, in.Content, im.Limits)
	if err != nil {
		if in.Name != "" {
			return res, fmt.Errorf("import %q: %w", clip(in.Name), err)
		}
		return res, fmt.Errorf("import: %w", err)
	}
	if progress == nil {
		progress = func(int, int) {}
	}
	r := &run{lib: im.Library, owner: owner, jobID: jobID, invalid: invalid, resolver: im.Resolver}
	if r.resolver == nil {
		r.resolver = LocalResolver{}
	}
	tracks := r.dedupe(entries)
	ctx, span := tracer.Start(ctx, "playlist.import_tracks", trace.WithAttributes(attribute.Int("playlist.tracks", len(tracks))))
	err = r.importAll(ctx, tracks, progress)
	r.finish()
	endSpan(span, err, attribute.Int("playlist.added", r.res.Added), attribute.Int("playlist.existing", r.res.Existing))
	return r.res, err
}

// tracer is the importer's: its spans are children of the attempt span in the handler's context.
var tracer = otel.Tracer("github.com/jobwire/jobwire/services/internal/importer")

// parseTraced is Parse in a span of its own (format and counts as attributes, never the content).
func parseTraced(ctx context.Context, format, content string, limits Limits) ([]Entry, []api.InvalidLine, error) {
	_, span := tracer.Start(ctx, "playlist.parse", trace.WithAttributes(attribute.String("playlist.format", format),
		attribute.Int("playlist.bytes", len(content))))
	entries, invalid, err := Parse(format, content, limits)
	endSpan(span, err, attribute.Int("playlist.entries", len(entries)), attribute.Int("playlist.invalid_lines", len(invalid)))
	return entries, invalid, err
}

// endSpan ends span with attrs, or with an error status when err is set. The status says no more than
// that: an import's errors may quote its content.
func endSpan(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if err != nil {
		span.SetStatus(codes.Error, "failed")
	} else {
		span.SetAttributes(attrs...)
	}
	span.End()
}

// run is the state of one Run.
type run struct {
	lib      *Library
	resolver Resolver
	owner    string
	jobID    string
	res      api.ImportResult
	invalid  []api.InvalidLine
	// resolved holds the identities of the tracks resolved so far: two entries a catalogue resolves to
	// the same track count as a duplicate, not as added twice.
	resolved map[string]bool

	mu   sync.Mutex // guards res, done and err: tracks are added concurrently
	done int        // tracks settled
	err  error      // the first error, which ends the run
}

// dedupe normalises entries and keeps the first of each identity, in order, counting the repeats.
// An entry that does not normalise is invalid (Parse returns none; kept for safety).
func (r *run) dedupe(entries []Entry) []Entry {
	seen := make(map[string]bool, len(entries))
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		n, err := Normalize(e)
		if err != nil {
			r.reject(e, err.Error())
			continue
		}
		id := Identity(n)
		if seen[id] {
			r.res.Duplicates++
			continue
		}
		seen[id] = true
		out = append(out, n)
	}
	return out
}

// maxAdds bounds the library writes of one import in flight at once: tracks are resolved in order, one
// at a time, and each is written while the next ones resolve, so an import costs about one round trip
// per maxAdds tracks rather than one per track.
const maxAdds = 16

// importAll resolves tracks in order and adds them, reporting progress as each one is settled, until
// done or the first error; the writes already started finish and are counted.
func (r *run) importAll(ctx context.Context, tracks []Entry, progress ProgressFunc) error {
	progress(0, len(tracks))
	r.resolved = make(map[string]bool, len(tracks))
	type resolved struct {
		e Entry
		t api.Track
	}
	toAdd := make(chan resolved)
	var wg sync.WaitGroup
	for range min(maxAdds, len(tracks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := range toAdd {
				r.settled(r.add(ctx, x.e, x.t), progress, len(tracks))
			}
		}()
	}
	for _, e := range tracks {
		if err := ctx.Err(); err != nil {
			r.fail(err)
			break
		}
		if r.failed() {
			break
		}
		t, ok, err := r.resolve(ctx, e)
		if err != nil {
			r.fail(err)
			break
		}
		if !ok {
			r.settled(nil, progress, len(tracks))
			continue
		}
		toAdd <- resolved{e, t}
	}
	close(toAdd)
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// settled counts one more track done (or the error that stopped it) and reports progress.
func (r *run) settled(err error, progress ProgressFunc, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		return
	}
	r.done++
	progress(r.done, total)
}

func (r *run) fail(err error) { r.settled(err, func(int, int) {}, 0) }

func (r *run) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err != nil
}

// resolve resolves and normalises one unique entry: ok is false for a track rejected or resolved to one
// seen before (counted here).
func (r *run) resolve(ctx context.Context, e Entry) (api.Track, bool, error) {
	t, err := r.resolver.Resolve(ctx, e)
	switch {
	case errors.Is(err, ErrTrackRejected):
		r.reject(e, err.Error())
		return t, false, nil
	case err != nil && ctx.Err() != nil:
		return t, false, ctx.Err()
	case err != nil:
		return t, false, fmt.Errorf("import: resolve line %d: %w", e.Line, err)
	}
	n, err := Normalize(Entry{Artist: t.Artist, Title: t.Title, Album: t.Album, DurationSec: t.DurationSec})
	if err != nil {
		r.reject(e, "resolved to an "+err.Error())
		return t, false, nil
	}
	id := Identity(n)
	if r.resolved[id] {
		r.count(func(res *api.ImportResult) { res.Duplicates++ })
		return t, false, nil
	}
	r.resolved[id] = true
	return t, true, nil
}

// add writes one resolved track to the library and counts the outcome.
func (r *run) add(ctx context.Context, e Entry, t api.Track) error {
	outcome, err := r.lib.Add(ctx, r.owner, r.jobID, t)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("import: line %d: %w", e.Line, err)
	case outcome == Existing:
		r.count(func(res *api.ImportResult) { res.Existing++ })
	default:
		r.count(func(res *api.ImportResult) { res.Added++ })
	}
	return nil
}

func (r *run) count(f func(*api.ImportResult)) {
	r.mu.Lock()
	f(&r.res)
	r.mu.Unlock()
}

// reject records e as invalid; its text is "Artist - Title" as read.
func (r *run) reject(e Entry, reason string) {
	r.invalid = append(r.invalid, invalidLine(e.Line, e.Artist+" - "+e.Title, reason))
}

// finish fills the invalid counts of the result: all of them in Invalid, the first MaxInvalidLines
// by line in InvalidLines (never nil, so it encodes as []).
func (r *run) finish() {
	slices.SortStableFunc(r.invalid, func(a, b api.InvalidLine) int { return cmp.Compare(a.Line, b.Line) })
	r.res.Invalid = len(r.invalid)
	r.res.InvalidLines = slices.Clone(r.invalid[:min(len(r.invalid), MaxInvalidLines)])
	if r.res.InvalidLines == nil {
		r.res.InvalidLines = []api.InvalidLine{}
	}
}

// inputFormat checks the input and returns its format; an empty format is detected from the name and
// content.
func inputFormat(in api.PlaylistImport) (string, error) {
	if strings.TrimSpace(strings.TrimPrefix(in.Content, bom)) == "" {
		return "", fmt.Errorf("%w: the playlist is empty", ErrInvalidInput)
	}
	format := canonicalFormat(in.Format)
	if format == "" {
		f, ok := DetectFormat(in.Name, in.Content)
		if !ok {
			return "", fmt.Errorf("%w: no format given and none recognised", ErrInvalidInput)
		}
		return f, nil
	}
	switch format {
	case api.FormatM3U, api.FormatXSPF, api.FormatCSV, api.FormatJSON:
		return format, nil
	}
	return "", fmt.Errorf("%w: unknown format %q (want m3u, xspf, csv or json)", ErrInvalidInput, clip(in.Format))
}
