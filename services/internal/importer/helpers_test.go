package importer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// parseCase is one row of a parser's table: content in, normalised entries and invalid lines out, or
// an error.
type parseCase struct {
	name    string
	content string
	lim     Limits
	entries []Entry   // as Normalize returns them
	invalid []badLine // in order
	err     error     // ErrMalformed or ErrTooLarge, nil for success
	errText string    // a part of the error's message
}

// badLine is an expected invalid line: its number, a part of its reason and of its text.
type badLine struct {
	line   int
	reason string
	text   string
}

// runParseCases runs a parser table in parallel subtests.
func runParseCases(t *testing.T, format string, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			entries, invalid, err := Parse(format, tc.content, tc.lim)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %q, want it to contain %q", err, tc.errText)
				}
				if entries != nil || invalid != nil {
					t.Fatalf("entries/invalid returned with an error: %v %v", entries, invalid)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := normalizeAll(t, entries); !slices.Equal(got, tc.entries) {
				t.Errorf("entries:\n got %s\nwant %s", fmtEntries(got), fmtEntries(tc.entries))
			}
			checkInvalid(t, invalid, tc.invalid)
		})
	}
}

func normalizeAll(t *testing.T, entries []Entry) []Entry {
	t.Helper()
	var out []Entry
	for _, e := range entries {
		n, err := Normalize(e)
		if err != nil {
			t.Fatalf("Parse returned an entry that does not normalise: %+v: %v", e, err)
		}
		out = append(out, n)
	}
	return out
}

func checkInvalid(t *testing.T, got []api.InvalidLine, want []badLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("invalid lines: got %d %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line || !strings.Contains(g.Reason, w.reason) || !strings.Contains(g.Text, w.text) {
			t.Errorf("invalid[%d] = %+v, want line %d, reason ~%q, text ~%q", i, g, w.line, w.reason, w.text)
		}
		if len(g.Text) > MaxInvalidText {
			t.Errorf("invalid[%d] text is %d bytes", i, len(g.Text))
		}
	}
}

func fmtEntries(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  {%d %q %q %q %d}", e.Line, e.Artist, e.Title, e.Album, e.DurationSec)
	}
	return b.String()
}

// e builds an expected entry.
func e(line int, artist, title, album string, dur int) Entry {
	return Entry{Line: line, Artist: artist, Title: title, Album: album, DurationSec: dur}
}

// testLibrary starts a NATS server with the jobwire topology and returns a Library on its LIBRARY
// bucket, and the bucket.
func testLibrary(t *testing.T) (*Library, jetstream.KeyValue) {
	t.Helper()
	srv := streamstest.RunServer(t)
	_, js := srv.Ensure(t)
	kv, err := js.KeyValue(testCtx(t), streams.BucketLibrary)
	if err != nil {
		t.Fatalf("open %s: %v", streams.BucketLibrary, err)
	}
	return NewLibrary(kv), kv
}

// testCtx is a context that ends with the test, or after 30 s.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// jobID returns a valid job id (a ULID) that is the same for the same n and differs for each n.
func jobID(n int) string {
	id := fmt.Sprintf("01JGFJJZZ8%016d", n)
	if !streams.ValidJobID(id) {
		panic("bad test job id " + id)
	}
	return id
}
