package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jobwire/jobwire/services/internal/progressbar"
)

func TestWatchDrawsABarOnATerminal(t *testing.T) {
	s := setup(t, 5*time.Millisecond, "alice")
	id := submitID(t, "a.m3u", m3u(40, 2, 1))
	var out, errOut bytes.Buffer
	sess := &session{url: s.URL, api: s.Client(t, "alice"), out: &out, errOut: &errOut, responses: new(atomic.Int64),
		bar: &progressbar.Options{TTY: true, Width: 60, Color: true}}
	if err := sess.follow(context.Background(), id, time.Minute); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "\r\x1b[2K[") || strings.Count(got, "\n") < 2 {
		t.Fatalf("want a bar redrawn in place, got %q", got)
	}
	frames := strings.Split(got, "\r\x1b[2K")[1:]
	for _, f := range frames {
		f, _, _ = strings.Cut(f, "\n") // what follows a newline is the summary, not a redrawn frame
		if n := utf8.RuneCountInString(f); n >= 60 {
			t.Fatalf("%d columns redrawn on a 60-column terminal: %q", n, f)
		}
	}
	if len(frames) < 3 {
		t.Fatalf("only %d frames drawn: %q", len(frames), got)
	}
	end := got[strings.LastIndex(got, "\r\x1b[2K")+len("\r\x1b[2K"):]
	if !strings.Contains(end, "100%  40/40  completed\ncompleted in ") || !strings.Contains(end, "added 40, duplicates 2, existing 0, invalid 1\n  line ") {
		t.Fatalf("the last frame and the summary stay on screen, got %q", end)
	}
}

// plainLine is one state line of watch in plain mode.
var plainLine = regexp.MustCompile(`^ *\d{1,3}%  +\d+/(\d+|\?)  (queued|active|completed|failed|cancelled)$`)

func TestWatchPlainOutputAndTranscript(t *testing.T) {
	setup(t, 15*time.Millisecond, "alice")
	content := m3u(36, 3, 2)
	path := filepath.Join(t.TempDir(), "road-trip.m3u")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := runCLI(t, "", "submit", path).wantCode(t, 0)
	id := strings.TrimSpace(sub.out)
	r := runCLI(t, "", "watch", id).wantCode(t, 0)
	ls := lines(r.out)
	summaryAt := len(ls) - 3 // the summary and the two invalid lines
	for _, l := range ls[:summaryAt] {
		if !plainLine.MatchString(l) {
			t.Fatalf("not a plain state line: %q\n%s", l, r.out)
		}
	}
	if ls[summaryAt-1] != "100%  36/36  completed" || !strings.HasPrefix(ls[summaryAt], "completed in ") ||
		!strings.HasSuffix(ls[summaryAt], ": added 36, duplicates 3, existing 0, invalid 2") ||
		!strings.HasPrefix(ls[summaryAt+1], "  line ") {
		t.Fatalf("unexpected ending:\n%s", r.out)
	}
	if strings.ContainsAny(r.out, "\r\x1b") {
		t.Fatalf("control characters off a terminal: %q", r.out)
	}
	if os.Getenv("JOBWIRE_UPDATE_DOCS") != "1" {
		return
	}
	var doc strings.Builder
	doc.WriteString("$ jobwire submit road-trip.m3u\n" + sub.out + "$ jobwire watch " + id + "\n" + r.out + "$ echo $?\n0\n")
	dir := filepath.Join("..", "..", "..", "docs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "watch-transcript.txt"), []byte(doc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
