package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/projector"
	"github.com/jobwire/jobwire/services/internal/stacktest"
)

func TestImportEndToEndInProcess(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{TrackDelay: time.Millisecond})
	c := s.Client(t, "alice@example.com")
	content, distinct, _, _ := testPlaylist()
	st, _, err := c.Submit(context.Background(), importRequest("mix", api.FormatM3U, content), "")
	if err != nil {
		t.Fatal(err)
	}
	final, n := watchToEnd(t, c, st.ID)
	if n < 3 {
		t.Fatalf("only %d states streamed", n)
	}
	checkImport(t, c, final, distinct)

	// Importing the same playlist again adds nothing: every track already exists.
	again, _, err := c.Submit(context.Background(), importRequest("mix again", api.FormatM3U, content), "")
	if err != nil {
		t.Fatal(err)
	}
	final, _ = watchToEnd(t, c, again.ID)
	checkImport(t, c, final, 0)
}

func TestMalformedPlaylistFailsNamingTheLine(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	c := s.Client(t, "alice")
	st, _, err := c.Submit(context.Background(), importRequest("bad", api.FormatXSPF,
		"<?xml version=\"1.0\"?>\n<playlist>\n<trackList>\n<track><title>A</title>\n</trackList>"), "")
	if err != nil {
		t.Fatal(err)
	}
	final, _ := watchToEnd(t, c, st.ID)
	if final.State != api.StateFailed || final.Error == nil || !strings.Contains(final.Error.Message, "line ") {
		t.Fatalf("want failed naming the line, got %s %+v", final.State, final.Error)
	}
	if final.Attempt != 1 {
		t.Fatalf("a malformed playlist was retried: attempt %d", final.Attempt)
	}
}

func TestRebuildMatchesLiveProjection(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	ctx := context.Background()
	for _, user := range []string{"alice", "bob", "carol@example.com"} {
		c := s.Client(t, user)
		for i := 0; i < 3; i++ {
			content, _, _, _ := testPlaylist()
			st, _, err := c.Submit(ctx, importRequest("p", api.FormatM3U, content), "")
			if err != nil {
				t.Fatal(err)
			}
			watchToEnd(t, c, st.ID)
		}
		st, _, err := c.Submit(ctx, importRequest("bad", api.FormatJSON, "{not json"), "")
		if err != nil {
			t.Fatal(err)
		}
		watchToEnd(t, c, st.ID)
	}
	rep, err := projector.Rebuild(ctx, s.JS, projector.RebuildOptions{Bucket: "JOB_STATE_REBUILD"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Jobs != 12 || len(rep.Diffs) != 0 {
		t.Fatalf("rebuild: %d jobs, differences %+v", rep.Jobs, rep.Diffs)
	}
}
