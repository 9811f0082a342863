package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/jobwire/jobwire/api"
)

// submitID submits content as file and returns the job id.
func submitID(t *testing.T, file, content string, args ...string) string {
	t.Helper()
	r := runCLI(t, "", append([]string{"submit", writeFile(t, file, content)}, args...)...).wantCode(t, 0)
	return strings.TrimSpace(r.out)
}

func TestWatchOfAFailingJobExits5(t *testing.T) {
	setup(t, 0, "alice")
	id := submitID(t, "broken.xspf", brokenXSPF)
	for _, args := range [][]string{{"watch", id}, {"watch", id, "--json"}} {
		r := runCLI(t, "", args...).wantCode(t, 5)
		if !strings.Contains(r.out, "malformed_playlist") || !strings.Contains(r.out, "line ") {
			t.Fatalf("%v: the reason is missing:\n%s", args, r.out)
		}
		if !strings.Contains(r.err.Error(), id) || !strings.Contains(r.err.Error(), "failed") {
			t.Fatalf("%v: error %q", args, r.err)
		}
	}
	r := runCLI(t, "", "submit", writeFile(t, "b.xspf", brokenXSPF), "--watch").wantCode(t, 5)
	if last := lines(r.out)[len(lines(r.out))-1]; !strings.HasPrefix(last, "failed: malformed_playlist: ") {
		t.Fatalf("the summary line should give the reason: %q", last)
	}
}

func TestJobsTableAndStateFilter(t *testing.T) {
	setup(t, 0, "alice")
	good1 := submitID(t, "a.m3u", m3u(3, 0, 0), "--watch")
	bad := submitID(t, "bad.xspf", brokenXSPF)
	runCLI(t, "", "watch", bad).wantCode(t, 5)
	good2 := submitID(t, "b.csv", csvPlaylist(2))
	runCLI(t, "", "watch", good2).wantCode(t, 0)
	good1 = strings.Fields(lines(good1)[0])[1] // "job <id> ..." with --watch

	r := runCLI(t, "", "jobs").wantCode(t, 0)
	ls := lines(r.out)
	if got := strings.Fields(ls[0]); strings.Join(got, " ") != "ID TYPE STATE PROGRESS CREATED UPDATED" {
		t.Fatalf("header %q", ls[0])
	}
	if len(ls) != 4 {
		t.Fatalf("want 3 jobs, got:\n%s", r.out)
	}
	for i, id := range []string{good2, bad, good1} { // newest first
		if !strings.HasPrefix(ls[i+1], id+" ") || !strings.Contains(ls[i+1], "playlist.import") {
			t.Fatalf("row %d should be job %s:\n%s", i+1, id, r.out)
		}
	}
	if !strings.Contains(ls[1], "completed") || !strings.Contains(ls[1], "100% 2/2") {
		t.Fatalf("row of %s: %q", good2, ls[1])
	}

	r = runCLI(t, "", "jobs", "--state", "failed").wantCode(t, 0)
	if ls := lines(r.out); len(ls) != 2 || !strings.HasPrefix(ls[1], bad+" ") || !strings.Contains(ls[1], "failed") {
		t.Fatalf("--state failed:\n%s", r.out)
	}
	r = runCLI(t, "", "jobs", "--limit", "1").wantCode(t, 0)
	if len(lines(r.out)) != 2 || !strings.Contains(r.errOut, "--all") {
		t.Fatalf("--limit 1: want one row and a hint, got:\n%s\n%s", r.out, r.errOut)
	}
	r = runCLI(t, "", "jobs", "--limit", "1", "--all").wantCode(t, 0)
	if len(lines(r.out)) != 4 || r.errOut != "" {
		t.Fatalf("--limit 1 --all: want every job, got:\n%s\n%s", r.out, r.errOut)
	}
}

func TestCancel(t *testing.T) {
	s := setup(t, 20*time.Millisecond, "alice")
	done := submitID(t, "a.m3u", m3u(1, 0, 0))
	runCLI(t, "", "watch", done).wantCode(t, 0)
	r := runCLI(t, "", "cancel", done).wantCode(t, 1)
	if !strings.Contains(r.err.Error(), "cancel job "+done+": the job has already finished") || !strings.Contains(r.err.Error(), "409") {
		t.Fatalf("cancel of a finished job: %q", r.err)
	}

	// A running job stops, and watching it exits 5.
	long := submitID(t, "long.m3u", m3u(200, 0, 0))
	waitForProgress(t, s.Client(t, "alice"), long)
	r = runCLI(t, "", "cancel", long)
	switch {
	case r.code == 0 && strings.Contains(r.out, "cancel requested: job "+long):
	case r.code == 1 && strings.Contains(r.err.Error(), "already finished"):
		// The gateway checks the log after broadcasting the cancel; a worker that stops fast enough
		// makes it answer 409 although this very cancel ended the job (see the watch below).
		t.Logf("cancel raced the worker: %v", r.err)
	default:
		t.Fatalf("cancel: exit %d, %q, %v", r.code, r.out, r.err)
	}
	r = runCLI(t, "", "watch", long).wantCode(t, 5)
	if last := lines(r.out)[len(lines(r.out))-1]; !strings.HasPrefix(last, "cancelled at ") {
		t.Fatalf("summary %q", last)
	}
}

// waitForProgress returns once job id has made progress, so it is surely running.
func waitForProgress(t *testing.T, c *api.Client, id string) {
	t.Helper()
	errRunning := errors.New("running")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.WatchJob(ctx, id, func(st api.JobState) error {
		if st.State == api.StateActive && st.Progress.Done > 0 {
			return errRunning
		}
		return nil
	}, nil)
	if !errors.Is(err, errRunning) {
		t.Fatalf("job %s never made progress: %v", id, err)
	}
}

func TestHistory(t *testing.T) {
	setup(t, time.Millisecond, "alice")
	id := submitID(t, "a.m3u", m3u(10, 1, 0))
	runCLI(t, "", "watch", id).wantCode(t, 0)
	r := runCLI(t, "", "history", id).wantCode(t, 0)
	ls := lines(r.out)
	if len(ls) < 3 {
		t.Fatalf("too few events:\n%s", r.out)
	}
	first, last := strings.Fields(ls[0]), strings.Fields(ls[len(ls)-1])
	if first[2] != "job.submitted" || last[2] != "job.completed" {
		t.Fatalf("want job.submitted first and job.completed last:\n%s", r.out)
	}
	if !strings.Contains(ls[len(ls)-1], "attempt 1") || !strings.Contains(ls[len(ls)-1], "added 10, duplicates 1") {
		t.Fatalf("the completed line should carry the attempt and result: %q", ls[len(ls)-1])
	}
	if !strings.Contains(r.out, "job.started") {
		t.Fatalf("no job.started:\n%s", r.out)
	}
}

func TestLibraryPages(t *testing.T) {
	setup(t, 0, "alice")
	runCLI(t, "", "submit", writeFile(t, "a.m3u", m3u(7, 0, 0)), "--watch").wantCode(t, 0)
	r := runCLI(t, "", "library").wantCode(t, 0)
	ls := lines(r.out)
	if strings.Join(strings.Fields(ls[0]), " ") != "ARTIST TITLE ALBUM DURATION ADDED" || len(ls) != 8 {
		t.Fatalf("want a header and 7 tracks:\n%s", r.out)
	}
	if !strings.Contains(r.out, "Band 3") || !strings.Contains(r.out, "Song 3") || !strings.Contains(r.out, "Road Trip") || !strings.Contains(r.out, "2:33") {
		t.Fatalf("track details missing:\n%s", r.out)
	}
	r = runCLI(t, "", "library", "--limit", "3").wantCode(t, 0)
	if len(lines(r.out)) != 4 || !strings.Contains(r.errOut, "--all") {
		t.Fatalf("--limit 3: want 3 tracks and a hint:\n%s\n%s", r.out, r.errOut)
	}
	r = runCLI(t, "", "library", "--limit", "3", "--all").wantCode(t, 0)
	if all := lines(r.out); len(all) != 8 || strings.Join(all, "\n") != strings.Join(ls, "\n") {
		t.Fatalf("--all in pages of 3 should list the same 7 tracks:\n%s", r.out)
	}
}

func TestRetryRequeuesAFailedJob(t *testing.T) {
	setup(t, 0, "alice")
	id := submitID(t, "bad.xspf", brokenXSPF)
	runCLI(t, "", "watch", id).wantCode(t, 5)
	r := runCLI(t, "", "jobs", "retry", id).wantCode(t, 0)
	if !strings.Contains(r.out, "retry requested: job "+id) {
		t.Fatalf("retry said %q", r.out)
	}
	// The playlist is still broken: the retried job fails again, and the log shows the re-queue.
	runCLI(t, "", "watch", id).wantCode(t, 5)
	if h := runCLI(t, "", "history", id).wantCode(t, 0).out; !strings.Contains(h, "job.requeued") {
		t.Fatalf("no job.requeued in the history:\n%s", h)
	}
	r = runCLI(t, "", "jobs", "retry", id, "--watch").wantCode(t, 5)
	if !strings.Contains(r.out, "malformed_playlist") {
		t.Fatalf("retry --watch should follow the job to its end:\n%s", r.out)
	}

	done := submitID(t, "a.m3u", m3u(1, 0, 0), "--watch")
	done = strings.Fields(lines(done)[0])[1]
	r = runCLI(t, "", "jobs", "retry", done).wantCode(t, 1)
	if !strings.Contains(r.err.Error(), "409") {
		t.Fatalf("retry of a completed job: %q", r.err)
	}
	runCLI(t, "", "jobs", "retry", ulid.Make().String()).wantCode(t, 4)
}

func TestRetryOnAGatewayWithoutTheRoute(t *testing.T) {
	// A gateway from before the retry route answers the catalogue's route 404 (not job_not_found).
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Errorf(api.CodeNotFound, "no such route")})
	}))
	defer old.Close()
	r := runCLI(t, "", "jobs", "retry", ulid.Make().String(), "--url", old.URL, "--token", "t").wantCode(t, 1)
	if !strings.Contains(r.err.Error(), "this gateway does not support retry yet") {
		t.Fatalf("retry: %q", r.err)
	}
}
