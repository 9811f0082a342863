package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

func TestSubmitWatchToCompletion(t *testing.T) {
	setup(t, time.Millisecond, "alice")
	for _, tc := range []struct {
		file, content, counts string
	}{
		{"road-trip.m3u", m3u(20, 3, 2), "added 20, duplicates 3, existing 0, invalid 2"},
		{"tunes.csv", csvPlaylist(12), "added 12, duplicates 0, existing 0, invalid 0"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := runCLI(t, "", "submit", writeFile(t, tc.file, tc.content), "--watch").wantCode(t, 0)
			ls := lines(r.out)
			if !strings.HasPrefix(ls[0], "job ") || !strings.Contains(ls[0], api.JobTypePlaylistImport) {
				t.Fatalf("first line should name the job: %q", ls[0])
			}
			if !strings.Contains(r.out, "completed") || !strings.Contains(r.out, tc.counts) {
				t.Fatalf("want the counts %q in:\n%s", tc.counts, r.out)
			}
			if !strings.Contains(r.out, "100%") {
				t.Fatalf("the final progress line is missing:\n%s", r.out)
			}
		})
	}
}

func TestSubmitPrintsTheJobID(t *testing.T) {
	setup(t, 0, "alice")
	path := writeFile(t, "mix.m3u", m3u(3, 0, 0))
	r := runCLI(t, "", "submit", path).wantCode(t, 0)
	id := strings.TrimSpace(r.out)
	if !streams.ValidJobID(id) {
		t.Fatalf("submit printed %q, want a job id", r.out)
	}
	runCLI(t, "", "watch", id).wantCode(t, 0)

	// The same idempotency key never makes a second job.
	first := runCLI(t, "", "submit", path, "--idempotency-key", "k1").wantCode(t, 0)
	again := runCLI(t, "", "submit", path, "--idempotency-key", "k1").wantCode(t, 0)
	if first.out != again.out || !strings.Contains(again.errOut, "used before") {
		t.Fatalf("same key, two jobs: %q then %q (stderr %q)", first.out, again.out, again.errOut)
	}
}

func TestSubmitFromStdinDetectsTheFormat(t *testing.T) {
	setup(t, 0, "alice")
	r := runCLI(t, csvPlaylist(4), "submit", "-", "--name", "piped", "--json", "--watch").wantCode(t, 0)
	ls := lines(r.out)
	var last api.JobState
	if err := json.Unmarshal([]byte(ls[len(ls)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last.State != api.StateCompleted || last.Name != "piped" || !strings.Contains(string(last.Result), `"added":4`) {
		t.Fatalf("want a completed import of 4 named piped, got %+v", last)
	}

	// Content that fits no format needs --format; a bad --format is a usage error.
	runCLI(t, "just some words\n", "submit", "-").wantCode(t, 1)
	r = runCLI(t, "", "submit", writeFile(t, "x.m3u", m3u(1, 0, 0)), "--format", "mp3").wantCode(t, 1)
	if !strings.Contains(r.err.Error(), "want m3u, xspf, csv or json") {
		t.Fatalf("bad --format: %v", r.err)
	}
	runCLI(t, "", "submit", "/does/not/exist.m3u").wantCode(t, 1)
}

func TestJSONOutputIsOneObjectPerLine(t *testing.T) {
	setup(t, time.Millisecond, "alice")
	r := runCLI(t, "", "submit", writeFile(t, "a.m3u", m3u(15, 0, 0)), "--watch", "--json").wantCode(t, 0)
	var prev uint64
	var st api.JobState
	ls := lines(r.out)
	for _, l := range ls {
		if err := json.Unmarshal([]byte(l), &st); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		if st.Revision <= prev {
			t.Fatalf("revision %d after %d: a state was printed twice or out of order", st.Revision, prev)
		}
		prev = st.Revision
	}
	if st.State != api.StateCompleted || len(ls) < 2 {
		t.Fatalf("want at least two states ending completed, got %d ending %s", len(ls), st.State)
	}

	for _, args := range [][]string{{"jobs", "--json"}, {"history", st.ID, "--json"}, {"library", "--json"}, {"watch", st.ID, "--json"}} {
		r := runCLI(t, "", args...).wantCode(t, 0)
		if len(lines(r.out)) == 0 {
			t.Fatalf("%v printed nothing", args)
		}
		for _, l := range lines(r.out) {
			if !json.Valid([]byte(l)) || !strings.HasPrefix(l, "{") {
				t.Fatalf("%v: not a JSON object line: %q", args, l)
			}
		}
	}
}

// --unique-key returns the unfinished job made with the key instead of a second one.
func TestSubmitUniqueKey(t *testing.T) {
	setup(t, 50*time.Millisecond, "alice")
	path := writeFile(t, "slow.m3u", m3u(40, 0, 0))
	first := runCLI(t, "", "submit", path, "--unique-key", "nightly", "--unique-for", "10m").wantCode(t, 0)
	again := runCLI(t, "", "submit", path, "--unique-key", "nightly").wantCode(t, 0)
	if first.out != again.out || !streams.ValidJobID(strings.TrimSpace(first.out)) {
		t.Fatalf("same unique key, two jobs: %q then %q (stderr %q)", first.out, again.out, again.errOut)
	}
	runCLI(t, "", "submit", path, "--unique-for", "10m").wantCode(t, 1)
}
