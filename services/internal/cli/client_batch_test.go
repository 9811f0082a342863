package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

func TestSubmitBatchAnswersEveryLine(t *testing.T) {
	s := setup(t, 0, "alice")
	var file strings.Builder
	for i := range 12 {
		switch i {
		case 3:
			file.WriteString(`{"type":"no.such.type","input":{}}` + "\n")
		case 6:
			file.WriteString("\n")
		default:
			fmt.Fprintf(&file, `{"type":"noop","input":{"n":%d},"idempotencyKey":"line-%d"}`+"\n", i, i)
		}
	}
	path := writeFile(t, "jobs.jsonl", file.String())
	r := runCLI(t, "", "submit", "--batch", path, "--batch-size", "4").wantCode(t, exitOther)
	ids := lines(r.out)
	if len(ids) != 10 {
		t.Fatalf("%d ids printed for 10 jobs:\n%s", len(ids), r.out)
	}
	for _, id := range ids {
		if !streams.ValidJobID(id) {
			t.Fatalf("printed %q, want a job id", id)
		}
		runCLI(t, "", "watch", id).wantCode(t, 0)
	}
	if !strings.Contains(r.errOut, "line 4:") || !strings.Contains(r.errOut, "unknown_job_type") || !strings.Contains(r.err.Error(), "1 of 11 jobs refused") {
		t.Fatalf("the refused line is not reported: %v\n%s", r.err, r.errOut)
	}

	// Sent again (from standard input, as JSON): the same jobs, not new ones.
	again := runCLI(t, file.String(), "submit", "--batch", "-", "--json").wantCode(t, exitOther)
	answers := lines(again.out)
	for i, line := range answers {
		var res api.BatchResult
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatalf("line %d of --json output: %v: %q", i, err, line)
		}
		if i == 3 {
			if res.Status != 422 || res.Error == nil {
				t.Errorf("refused line answered %+v", res)
			}
			continue
		}
		k := i
		if i > 3 {
			k = i - 1
		}
		if res.Status != 200 || res.Job == nil || res.Job.ID != ids[k] {
			t.Errorf("answer %d: %+v, want 200 with job %s", i, res, ids[k])
		}
	}
	list, err := api.NewClient(s.URL, s.Token(t, "alice")).List(context.Background(), "", "", 100)
	if err != nil || len(list.Jobs) != 10 {
		t.Fatalf("alice has %d jobs (%v), want 10", len(list.Jobs), err)
	}
}

func TestSubmitBatchRefusesABadFileWhole(t *testing.T) {
	s := setup(t, 0, "alice")
	for name, content := range map[string]string{
		"malformed":     `{"type":"noop","input":{}}` + "\n" + `{"type":`,
		"unknown field": `{"type":"noop","input":{},"priority":1}`,
		"two values":    `{"type":"noop","input":{}} {"type":"noop","input":{}}`,
		"empty":         "\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, content, "submit", "--batch", "-").wantCode(t, exitOther)
			if r.out != "" || r.err == nil {
				t.Fatalf("stdout %q, error %v", r.out, r.err)
			}
		})
	}
	runCLI(t, "", "submit", "--batch", "-", "--watch").wantCode(t, exitOther)
	runCLI(t, "", "submit", "--batch", "-", "--batch-size", "1001").wantCode(t, exitOther)
	list, err := api.NewClient(s.URL, s.Token(t, "alice")).List(context.Background(), "", "", 100)
	if err != nil || len(list.Jobs) != 0 {
		t.Fatalf("alice has %d jobs (%v) after files that were all refused", len(list.Jobs), err)
	}
}
