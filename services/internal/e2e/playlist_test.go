package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jobwire/jobwire/api"
)

// testPlaylist is an extended M3U of 200 lines: 85 distinct tracks, 10 repeats of them (with other
// case and spacing) and 4 entries that name no artist and title.
func testPlaylist() (content string, distinct, duplicates, invalid int) {
	var b strings.Builder
	lines := 0
	w := func(s string) { b.WriteString(s + "\n"); lines++ }
	w("#EXTM3U")
	w("#EXTALB:Test Album")
	for i := 0; i < 85; i++ {
		w(fmt.Sprintf("#EXTINF:%d,Artist %d - Song %d", 180+i, i%17, i))
		w(fmt.Sprintf("/music/artist%d/song%d.mp3", i%17, i))
	}
	for i := 0; i < 10; i++ {
		w(fmt.Sprintf("#EXTINF:200,  ARTIST %d   -  song %d ", (i*3)%17, i*3))
		w(fmt.Sprintf("/other/dup%d.flac", i))
	}
	for i := 0; i < 4; i++ {
		w(fmt.Sprintf("#EXTINF:99,NoSeparator%d", i))
		w(fmt.Sprintf("/broken/x%d.mp3", i))
	}
	for lines < 200 {
		w("# comment")
	}
	return b.String(), 85, 10, 4
}

func importRequest(name, format, content string) api.SubmitRequest {
	in, _ := json.Marshal(api.PlaylistImport{Name: name, Format: format, Content: content})
	return api.SubmitRequest{Type: api.JobTypePlaylistImport, Input: in}
}

// watchToEnd reads the job's SSE stream until it ends and checks the stream's promises: increasing
// ids, progress that only goes up, and a terminal state last.
func watchToEnd(t *testing.T, c *api.Client, id string) (final api.JobState, states int) {
	t.Helper()
	s, err := c.OpenStream(context.Background(), "/v1/jobs/"+id+"/events", "")
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	defer s.Close()
	var last api.JobState
	for {
		ev, err := s.Next()
		if errors.Is(err, api.ErrStreamEnded) {
			break
		}
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		st, err := ev.State()
		if err != nil {
			t.Fatalf("decode %s: %v", ev.Data, err)
		}
		if states > 0 {
			if st.Revision <= last.Revision {
				t.Fatalf("revision %d after %d", st.Revision, last.Revision)
			}
			if st.Progress.Done < last.Progress.Done && st.Attempt == last.Attempt {
				t.Fatalf("progress went down: %+v then %+v", last.Progress, st.Progress)
			}
		}
		last = st
		states++
	}
	if !last.State.Terminal() {
		t.Fatalf("stream ended on %s", last.State)
	}
	return last, states
}

// checkImport checks a completed import of testPlaylist: its result, the library and the history.
func checkImport(t *testing.T, c *api.Client, final api.JobState, wantAdded int) {
	t.Helper()
	_, distinct, dups, invalid := testPlaylist()
	if final.State != api.StateCompleted {
		t.Fatalf("job ended %s: %+v", final.State, final.Error)
	}
	var res api.ImportResult
	if err := json.Unmarshal(final.Result, &res); err != nil {
		t.Fatal(err)
	}
	if res.Added != wantAdded || res.Duplicates != dups || res.Invalid != invalid || res.Added+res.Existing != distinct {
		t.Fatalf("result %+v, want added %d of %d distinct, %d duplicates, %d invalid", res, wantAdded, distinct, dups, invalid)
	}
	for _, il := range res.InvalidLines {
		if il.Line == 0 || il.Reason == "" {
			t.Fatalf("invalid line without line number or reason: %+v", il)
		}
	}
	if final.Progress.Done != distinct || final.Progress.Percent != 100 {
		t.Fatalf("final progress %+v", final.Progress)
	}
	ctx := context.Background()
	seen := map[string]bool{}
	cursor := ""
	for {
		page, err := c.Library(ctx, cursor, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range page.Tracks {
			id := strings.ToLower(tr.Artist + "|" + tr.Title)
			if seen[id] {
				t.Fatalf("duplicate track in library: %+v", tr)
			}
			seen[id] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != distinct {
		t.Fatalf("library has %d tracks, want %d", len(seen), distinct)
	}
	h, err := c.History(ctx, final.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var prevSeq uint64
	var types []string
	for _, raw := range h.Events {
		var ev struct {
			Type string `json:"type"`
			Seq  uint64 `json:"seq"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq <= prevSeq {
			t.Fatalf("history out of order at %s", raw)
		}
		prevSeq = ev.Seq
		types = append(types, ev.Type)
	}
	if len(types) < 3 || types[0] != "job.submitted" || types[len(types)-1] != "job.completed" {
		t.Fatalf("history %v", types)
	}
}
