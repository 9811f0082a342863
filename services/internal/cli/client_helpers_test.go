package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/services/internal/stacktest"
)

// cliResult is what one run of the command line printed and returned.
type cliResult struct {
	out, errOut string
	code        int
	err         error
}

// runCLI runs the jobwire command line with args (and stdin) the way Main does, returning its output
// and exit code.
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(ctx)
	r := cliResult{out: out.String(), errOut: errOut.String(), err: err}
	var ee *ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.Code
	default:
		r.code = 1
	}
	return r
}

// wantCode fails the test unless r exited with code.
func (r cliResult) wantCode(t *testing.T, code int) cliResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d (err: %v)\nstdout:\n%s\nstderr:\n%s", r.code, code, r.err, r.out, r.errOut)
	}
	return r
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimRight(l, "\n"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// setup starts a stack and points JOBWIRE_URL and JOBWIRE_TOKEN at it for user.
func setup(t *testing.T, delay time.Duration, user string) *stacktest.Stack {
	t.Helper()
	s := stacktest.Start(t, stacktest.Options{TrackDelay: delay})
	t.Setenv("JOBWIRE_URL", s.URL)
	t.Setenv("JOBWIRE_TOKEN", s.Token(t, user))
	return s
}

// m3u returns an extended m3u playlist of n distinct tracks, dups repeated tracks and bad entries
// without "Artist - Title".
func m3u(n, dups, bad int) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXTALB:Road Trip\n")
	for i := range n {
		fmt.Fprintf(&b, "#EXTINF:%d,Band %d - Song %d\n/music/band%d/song%d.mp3\n", 150+i, i%7, i, i%7, i)
	}
	for i := range dups {
		fmt.Fprintf(&b, "#EXTINF:200,band %d -  song %d\n/other/dup%d.flac\n", i%7, i, i)
	}
	for i := range bad {
		fmt.Fprintf(&b, "#EXTINF:99,NoSeparator%d\n/broken/x%d.mp3\n", i, i)
	}
	return b.String()
}

// csvPlaylist returns a CSV playlist of n distinct tracks.
func csvPlaylist(n int) string {
	var b strings.Builder
	b.WriteString("artist,title,album,duration\n")
	for i := range n {
		fmt.Fprintf(&b, "CSV Artist %d,Tune %d,Album %d,%d\n", i%3, i, i%2, 120+i)
	}
	return b.String()
}

// brokenXSPF is a playlist whose <track> is never closed.
const brokenXSPF = "<?xml version=\"1.0\"?>\n<playlist>\n<trackList>\n<track><title>A</title>\n"

// writeFile writes content to name in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
