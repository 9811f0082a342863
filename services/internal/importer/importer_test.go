package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
)

// progressLog records progress calls.
type progressLog struct{ calls [][2]int }

func (p *progressLog) fn(done, total int) { p.calls = append(p.calls, [2]int{done, total}) }

// check asserts progress went 0..total by one, each call with the same total.
func (p *progressLog) check(t *testing.T, total, last int) {
	t.Helper()
	if len(p.calls) != last+1 {
		t.Fatalf("progress called %d times, want %d: %v", len(p.calls), last+1, p.calls)
	}
	for i, c := range p.calls {
		if c != [2]int{i, total} {
			t.Fatalf("progress call %d = %v, want [%d %d]", i, c, i, total)
		}
	}
}

func listCount(t *testing.T, lib *Library, owner string) int {
	t.Helper()
	page, err := lib.List(testCtx(t), owner, "", MaxListLimit)
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Tracks)
}

const sampleM3U = "#EXTM3U\n" +
	"#EXTINF:354,Queen - Bohemian Rhapsody\n/m/1.mp3\n" + // line 2
	"#EXTINF:215,Daft Punk - Get Lucky\n/m/2.mp3\n" + // line 4
	"#EXTINF:1,queen  -  BOHEMIAN rhapsody\n/m/3.mp3\n" + // line 6: duplicate
	"/m/Radiohead - Creep.mp3\n" + // line 8
	"/m/untitled.mp3\n" + // line 9: invalid
	"#EXTINF:5,Title only\nhttp://radio/stream\n" // line 10: invalid

func TestRunEndToEnd(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	im := &Importer{Library: lib}
	var p progressLog
	res, err := im.Run(ctx, "alice", jobID(1), api.PlaylistImport{Name: "mix", Format: "m3u", Content: sampleM3U}, p.fn)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 3 || res.Duplicates != 1 || res.Existing != 0 || res.Invalid != 2 || len(res.InvalidLines) != 2 {
		t.Fatalf("result %+v", res)
	}
	if res.InvalidLines[0].Line != 9 || res.InvalidLines[1].Line != 10 || res.InvalidLines[0].Text != "/m/untitled.mp3" {
		t.Errorf("invalid lines %+v", res.InvalidLines)
	}
	p.check(t, 3, 3)
	page, err := lib.List(ctx, "alice", "", 10)
	if err != nil || len(page.Tracks) != 3 {
		t.Fatalf("library %+v, %v", page, err)
	}
	found := map[string]api.Track{}
	for _, tr := range page.Tracks {
		found[tr.Artist+" - "+tr.Title] = tr
	}
	// The first spelling of a track is the one kept.
	if tr, ok := found["Queen - Bohemian Rhapsody"]; !ok || tr.DurationSec != 354 || tr.JobID != jobID(1) {
		t.Errorf("library %+v", page.Tracks)
	}
	if _, ok := found["Radiohead - Creep"]; !ok {
		t.Errorf("library %+v", page.Tracks)
	}
}

func TestRunAgain(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	im := &Importer{Library: lib}
	in := api.PlaylistImport{Format: "m3u", Content: sampleM3U}
	first, err := im.Run(ctx, "alice", jobID(1), in, nil)
	if err != nil {
		t.Fatal(err)
	}

	// A redelivered job (same id) reports the same result and writes nothing new.
	again, err := im.Run(ctx, "alice", jobID(1), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatalf("same job again: %+v, first run %+v", again, first)
	}

	// Another job importing the same tracks, spelled and formatted differently, adds nothing.
	jsonIn := api.PlaylistImport{Format: "json", Content: `[{"artist":"QUEEN","title":"bohemian rhapsody"},
		{"artist":"daft punk","title":"get lucky","album":"RAM"},{"artist":"Radiohead","title":"Creep"}]`}
	other, err := im.Run(ctx, "alice", jobID(2), jsonIn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.Added != 0 || other.Existing != 3 || other.Duplicates != 0 || other.Invalid != 0 {
		t.Fatalf("other job: %+v, want Existing 3", other)
	}
	if n := listCount(t, lib, "alice"); n != 3 {
		t.Fatalf("library holds %d tracks, want 3", n)
	}

	// Another owner imports the same playlist into a library of its own.
	bob, err := im.Run(ctx, "bob", jobID(3), in, nil)
	if err != nil || bob.Added != 3 || bob.Existing != 0 {
		t.Fatalf("bob: %+v, %v", bob, err)
	}
}

// extendedM3U200 builds a 200-line extended m3u (CRLF) with unique tracks, re-spelled duplicates and
// broken entries, and returns it with the counts a run must report.
func extendedM3U200(t *testing.T) (content string, unique, dups, broken int) {
	t.Helper()
	var b strings.Builder
	lines := 0
	w := func(s string) { b.WriteString(s + "\r\n"); lines++ }
	w("#EXTM3U")
	for i := 0; lines < 199; i++ {
		switch {
		case i%10 == 7 && unique > 0:
			j := i % unique
			w(fmt.Sprintf("#EXTINF:%d,  ARTIST %d  -  track %d ", 1+j, j, j))
			w("/music/dup.mp3")
			dups++
		case i%10 == 9:
			w("#EXTINF:10,no separator here")
			w("http://radio.test/stream")
			broken++
		case i%10 == 5:
			w(fmt.Sprintf("/music/Artist %d - Track %d.mp3", unique, unique))
			unique++
		default:
			w(fmt.Sprintf("#EXTINF:%d,Artist %d - Track %d", 100+unique, unique, unique))
			w(fmt.Sprintf("/music/%d.mp3", unique))
			unique++
		}
	}
	if lines == 199 {
		w("# end")
	}
	if lines != 200 {
		t.Fatalf("built %d lines", lines)
	}
	return b.String(), unique, dups, broken
}

func TestRun200LineExtendedM3U(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	content, unique, dups, broken := extendedM3U200(t)
	im := &Importer{Library: lib}
	var p progressLog
	res, err := im.Run(ctx, "alice", jobID(1), api.PlaylistImport{Name: "big.m3u", Format: "m3u", Content: content}, p.fn)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != unique || res.Duplicates != dups || res.Invalid != broken || res.Existing != 0 {
		t.Fatalf("result %+v, want added %d, duplicates %d, invalid %d", res, unique, dups, broken)
	}
	if unique < 80 || dups < 10 || broken < 10 {
		t.Fatalf("weak fixture: %d unique, %d dups, %d broken", unique, dups, broken)
	}
	for i, il := range res.InvalidLines {
		if !strings.HasPrefix(il.Text, "#EXTINF:10,") || il.Line < 2 || il.Line > 200 || (i > 0 && il.Line <= res.InvalidLines[i-1].Line) {
			t.Errorf("invalid line %+v", il)
		}
	}
	p.check(t, unique, unique)
	if n := listCount(t, lib, "alice"); n != unique {
		t.Fatalf("library holds %d tracks, want %d", n, unique)
	}
}

func TestRunCancelBetweenTracks(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	content, unique, _, _ := extendedM3U200(t)
	var p progressLog
	im := &Importer{Library: lib}
	res, err := im.Run(ctx, "alice", jobID(1), api.PlaylistImport{Format: "m3u", Content: content}, func(done, total int) {
		p.fn(done, total)
		if done == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The writes in flight at the cancel finish and are counted: the result matches the library.
	if res.Added < 3 || res.Added > 3+maxAdds || res.InvalidLines == nil {
		t.Fatalf("partial result %+v, want 3 to %d added", res, 3+maxAdds)
	}
	p.check(t, unique, res.Added)
	if n := listCount(t, lib, "alice"); n != res.Added {
		t.Fatalf("library holds %d tracks, the result says %d", n, res.Added)
	}
}

// gateResolver resolves locally; its n-th call signals started and then waits an hour (or until
// ctx ends), like a slow remote catalogue.
type gateResolver struct {
	n       int
	calls   int
	started chan struct{}
}

func (g *gateResolver) Resolve(ctx context.Context, e Entry) (api.Track, error) {
	g.calls++
	if g.calls == g.n {
		close(g.started)
		return LocalResolver{Delay: time.Hour}.Resolve(ctx, e)
	}
	return LocalResolver{}.Resolve(ctx, e)
}

func TestRunCancelDuringSlowTrack(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	gate := &gateResolver{n: 5, started: make(chan struct{})}
	go func() {
		<-gate.started
		cancel()
	}()
	content, _, _, _ := extendedM3U200(t)
	im := &Importer{Library: lib, Resolver: gate}
	begin := time.Now()
	res, err := im.Run(ctx, "alice", jobID(1), api.PlaylistImport{Format: "m3u", Content: content}, nil)
	if !errors.Is(err, context.Canceled) || IsPermanent(err) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res.Added != 4 {
		t.Fatalf("partial result %+v, want 4 added", res)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Fatalf("cancel took %s", took)
	}
}

func TestLocalResolver(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (LocalResolver{Delay: time.Hour}).Resolve(ctx, e(1, "A", "B", "", 0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
	tr, err := LocalResolver{Delay: time.Microsecond}.Resolve(context.Background(), e(1, " a ", "b\n", "c", 7))
	if err != nil || tr != (api.Track{Artist: "a", Title: "b", Album: "c", DurationSec: 7}) {
		t.Fatalf("Resolve = %+v, %v", tr, err)
	}
	if _, err := (LocalResolver{}).Resolve(context.Background(), e(1, "", "b", "", 0)); !errors.Is(err, ErrTrackRejected) {
		t.Fatalf("incomplete: err = %v, want ErrTrackRejected", err)
	}
}

// funcResolver adapts a function to Resolver.
type funcResolver func(ctx context.Context, e Entry) (api.Track, error)

func (f funcResolver) Resolve(ctx context.Context, e Entry) (api.Track, error) { return f(ctx, e) }

func TestRunResolverOutcomes(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	content := "A - B.mp3\nA - B (Remastered).mp3\nX - unknown.mp3\nC - D.mp3\nE - F.mp3\n"
	down := errors.New("catalogue down")
	failAt, calls := 0, 0
	resolver := funcResolver(func(ctx context.Context, e Entry) (api.Track, error) {
		calls++
		if calls == failAt {
			return api.Track{}, down
		}
		if e.Title == "unknown" {
			return api.Track{}, fmt.Errorf("%w: not in the catalogue", ErrTrackRejected)
		}
		return api.Track{Artist: e.Artist, Title: strings.TrimSuffix(e.Title, " (Remastered)")}, nil
	})
	im := &Importer{Library: lib, Resolver: resolver}
	in := api.PlaylistImport{Format: "m3u", Content: content}

	// The catalogue fails at the fourth track: the run stops with a retryable error.
	failAt = 4
	res, err := im.Run(ctx, "alice", jobID(1), in, nil)
	if !errors.Is(err, down) || IsPermanent(err) || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("err = %v, want the resolver's error", err)
	}
	if res.Added != 1 || res.Duplicates != 1 || res.Invalid != 1 {
		t.Fatalf("partial %+v", res)
	}

	// The retry (same job) completes and counts what the first attempt added.
	failAt = 0
	calls = 0
	res, err = im.Run(ctx, "alice", jobID(1), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := api.ImportResult{Added: 3, Duplicates: 1, Invalid: 1,
		InvalidLines: []api.InvalidLine{{Line: 3, Text: "X - unknown", Reason: "track rejected: not in the catalogue"}}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("result %+v, want %+v", res, want)
	}
}

func TestRunInvalidInput(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	cases := []struct {
		name, owner, job string
		in               api.PlaylistImport
		lim              Limits
		err              error
		msg              string
	}{
		{"empty content", "alice", jobID(1), api.PlaylistImport{Format: "m3u"}, Limits{}, ErrInvalidInput, "empty"},
		{"blank content", "alice", jobID(1), api.PlaylistImport{Format: "m3u", Content: "\uFEFF \r\n\t"}, Limits{}, ErrInvalidInput, "empty"},
		{"unknown format", "alice", jobID(1), api.PlaylistImport{Format: "mp3", Content: "x"}, Limits{}, ErrInvalidInput, `unknown format "mp3"`},
		{"no format, unknown content", "alice", jobID(1), api.PlaylistImport{Name: "x.txt", Content: "hello"}, Limits{}, ErrInvalidInput, "no format"},
		{"bad owner", "alice.*", jobID(1), api.PlaylistImport{Format: "m3u", Content: "A - B.mp3"}, Limits{}, ErrInvalidInput, "owner"},
		{"no job id", "alice", "", api.PlaylistImport{Format: "m3u", Content: "A - B.mp3"}, Limits{}, ErrInvalidInput, "job id"},
		{"malformed xspf", "alice", jobID(1), api.PlaylistImport{Name: "p.xspf", Format: "xspf", Content: "<playlist>\n<trackList>\n</playlist>"}, Limits{}, ErrMalformed, `import "p.xspf": malformed xspf: line 3:`},
		{"malformed json", "alice", jobID(1), api.PlaylistImport{Format: "json", Content: `{"artist":"A"}`}, Limits{}, ErrMalformed, "malformed json: line 1"},
		{"csv without header", "alice", jobID(1), api.PlaylistImport{Format: "csv", Content: "A,B\n"}, Limits{}, ErrMalformed, "malformed csv: line 1"},
		{"too many bytes", "alice", jobID(1), api.PlaylistImport{Format: "m3u", Content: strings.Repeat("A - B.mp3\n", 10)}, Limits{MaxBytes: 50}, ErrTooLarge, "the limit is 50"},
		{"too many tracks", "alice", jobID(1), api.PlaylistImport{Format: "m3u", Content: strings.Repeat("A - B.mp3\n", 10)}, Limits{MaxTracks: 5}, ErrTooLarge, "more than 5 tracks"},
		{"huge line", "alice", jobID(1), api.PlaylistImport{Format: "m3u", Content: strings.Repeat("x", 5000)}, Limits{}, ErrTooLarge, "line 1 is 5000 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			im := &Importer{Library: lib, Limits: tc.lim}
			res, err := im.Run(ctx, tc.owner, tc.job, tc.in, func(int, int) { called = true })
			if !errors.Is(err, tc.err) || !IsPermanent(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.err, tc.msg)
			}
			if res.Added != 0 || res.Invalid != 0 || res.InvalidLines == nil || called {
				t.Fatalf("result %+v, progress called %v", res, called)
			}
		})
	}
	if n := listCount(t, lib, "alice"); n != 0 {
		t.Fatalf("library holds %d tracks after invalid input", n)
	}
	if _, err := (&Importer{}).Run(ctx, "alice", jobID(1), api.PlaylistImport{Format: "m3u", Content: "A - B.mp3"}, nil); err == nil || IsPermanent(err) {
		t.Fatalf("no library: err = %v", err)
	}
}

func TestRunNoValidTracksCompletes(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	im := &Importer{Library: lib}
	var p progressLog
	res, err := im.Run(ctx, "alice", jobID(1), api.PlaylistImport{Format: "json", Content: `[1, {"artist":"only"}]`}, p.fn)
	if err != nil || res.Added != 0 || res.Invalid != 2 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	p.check(t, 0, 0)
	b, err := json.Marshal(api.ImportResult{InvalidLines: res.InvalidLines[:0]})
	if err != nil || !strings.Contains(string(b), `"invalidLines":[]`) {
		t.Fatalf("encoded %s", b)
	}
}

func TestRunDetectsFormat(t *testing.T) {
	lib, _ := testLibrary(t)
	im := &Importer{Library: lib}
	res, err := im.Run(testCtx(t), "alice", jobID(1), api.PlaylistImport{Name: "list.csv", Content: "artist,title\nA,B\n"}, nil)
	if err != nil || res.Added != 1 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
}

func TestRunCapsInvalidLines(t *testing.T) {
	lib, _ := testLibrary(t)
	var b strings.Builder
	b.WriteString("artist,title\n")
	for i := range 150 {
		fmt.Fprintf(&b, "only one field %d\n", i)
	}
	b.WriteString("A,B\n")
	im := &Importer{Library: lib}
	res, err := im.Run(testCtx(t), "alice", jobID(1), api.PlaylistImport{Format: "csv", Content: b.String()}, nil)
	if err != nil || res.Added != 1 || res.Invalid != 150 || len(res.InvalidLines) != MaxInvalidLines {
		t.Fatalf("Run = added %d invalid %d lines %d, %v", res.Added, res.Invalid, len(res.InvalidLines), err)
	}
	for i, il := range res.InvalidLines {
		if il.Line != i+2 {
			t.Fatalf("invalid line %d is line %d, want %d", i, il.Line, i+2)
		}
	}
}
