package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

func TestSubmitAnyTypeWithInput(t *testing.T) {
	setup(t, 0, "alice")
	r := runCLI(t, "", "submit", "--type", "noop", "--input", `{"any":["thing"]}`, "--watch").wantCode(t, 0)
	if ls := lines(r.out); !strings.HasPrefix(ls[0], "job ") || !strings.Contains(ls[0], "noop") || !strings.Contains(r.out, "completed") {
		t.Fatalf("watch of a noop job:\n%s", r.out)
	}
	in := writeFile(t, "job.json", `{"name":"from a file","format":"csv","content":"artist,title\nA,B"}`)
	r = runCLI(t, "", "submit", "--type", api.JobTypePlaylistImport, "--input", "@"+in, "--json", "--watch").wantCode(t, 0)
	var last api.JobState
	ls := lines(r.out)
	if err := json.Unmarshal([]byte(ls[len(ls)-1]), &last); err != nil || last.State != api.StateCompleted || last.Name != "from a file" {
		t.Fatalf("an import from --input @file: %v %+v", err, last)
	}
	r = runCLI(t, `{"n":1}`, "submit", "--type", "noop", "--input", "@-").wantCode(t, 0)
	if !streams.ValidJobID(strings.TrimSpace(r.out)) {
		t.Fatalf("--input @- printed %q", r.out)
	}
}

func TestSubmitInputErrors(t *testing.T) {
	setup(t, 0, "alice")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "no.such.type", "--input", `{}`}, "unknown_job_type"},
		{[]string{"--type", api.JobTypePlaylistImport, "--input", `{"format":"wav","content":"x"}`}, "input at /format"},
		{[]string{"--type", "noop", "--input", `{not json`}, "--input is not JSON"},
		{[]string{"--type", "noop", "--input", "@/does/not/exist.json"}, "no such file"},
		{[]string{"--type", "noop"}, "needs --input"},
		{[]string{"--type", "noop", "--input", "{}", "x.m3u"}, "not both"},
		{[]string{"--input", "{}", "--format", "csv"}, "with --input"},
		{nil, "give a playlist file"},
	} {
		r := runCLI(t, "", append([]string{"submit"}, tc.args...)...).wantCode(t, 1)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("submit %q: %v, want an error with %q", tc.args, r.err, tc.want)
		}
	}
}

func TestJobTypesListsTheRegistry(t *testing.T) {
	setup(t, 0, "alice")
	r := runCLI(t, "", "job-types").wantCode(t, 0)
	ls := lines(r.out)
	if len(ls) != 3 || !strings.HasPrefix(ls[0], "TYPE") || !strings.HasPrefix(ls[1], "noop") || !strings.HasPrefix(ls[2], api.JobTypePlaylistImport) {
		t.Fatalf("job-types:\n%s", r.out)
	}
	if !strings.Contains(ls[2], "1 (4 slots)") || !strings.Contains(ls[2], "30m") {
		t.Fatalf("playlist.import's workers and timeout: %q", ls[2])
	}
	r = runCLI(t, "", "job-types", "--json").wantCode(t, 0)
	var jt api.JobType
	if err := json.Unmarshal([]byte(lines(r.out)[1]), &jt); err != nil || jt.Name != api.JobTypePlaylistImport || !jt.Online || len(jt.Schema) == 0 {
		t.Fatalf("job-types --json: %v %+v", err, jt)
	}
}
