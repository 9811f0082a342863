package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jobwire/jobwire/api"
)

// timeLayout is how the user commands print times (local time zone).
const timeLayout = "2006-01-02 15:04:05"

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return writeLine(w, b)
}

// writeRawJSON writes an already encoded JSON value as one line.
func writeRawJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return fmt.Errorf("compact json: %w", err)
	}
	return writeLine(w, buf.Bytes())
}

func writeLine(w io.Writer, b []byte) error {
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// progressText is a job's progress for a table cell: "40% 40/100", or "-" before it is known.
func progressText(p api.Progress) string {
	if p.Total <= 0 && p.Done <= 0 {
		return "-"
	}
	return fmt.Sprintf("%d%% %d/%d", p.Percent, p.Done, p.Total)
}

// fmtTime prints t in local time, or "-" when it is zero.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(timeLayout)
}

// resultText summarises a job result: the counts of an import, else the compact JSON.
func resultText(jobType string, raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return ""
	}
	var r api.ImportResult
	if jobType == api.JobTypePlaylistImport && json.Unmarshal(raw, &r) == nil {
		return fmt.Sprintf("added %d, duplicates %d, existing %d, invalid %d", r.Added, r.Duplicates, r.Existing, r.Invalid)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

// errorText prints a job error as "code: message".
func errorText(e *api.JobError) string {
	if e == nil {
		return ""
	}
	if e.Code == "" {
		return e.Message
	}
	return e.Code + ": " + e.Message
}

// summary is the line that ends a watch: the result counts, or why the job failed or stopped.
// Lines the import skipped follow it, indented.
func summary(st api.JobState) string {
	var b strings.Builder
	b.WriteString(string(st.State))
	switch st.State {
	case api.StateCompleted:
		if st.StartedAt != nil && st.FinishedAt != nil {
			fmt.Fprintf(&b, " in %s", st.FinishedAt.Sub(*st.StartedAt).Round(10*time.Millisecond))
		}
	case api.StateCancelled:
		if st.Progress.Total > 0 {
			fmt.Fprintf(&b, " at %d/%d", st.Progress.Done, st.Progress.Total)
		}
	case api.StateFailed:
		if st.Attempt > 1 {
			fmt.Fprintf(&b, " after %d attempts", st.Attempt)
		}
	}
	var parts []string
	if st.Error != nil && st.State == api.StateFailed {
		parts = append(parts, errorText(st.Error))
	}
	if r := resultText(st.Type, st.Result); r != "" {
		parts = append(parts, r)
	}
	if len(parts) > 0 {
		b.WriteString(": " + strings.Join(parts, "; "))
	}
	if st.State != api.StateFailed {
		b.WriteString(invalidLinesText(st))
	}
	return b.String()
}

// invalidLinesText lists the first few lines an import skipped, one per line, indented.
func invalidLinesText(st api.JobState) string {
	var r api.ImportResult
	if st.Type != api.JobTypePlaylistImport || json.Unmarshal(st.Result, &r) != nil {
		return ""
	}
	const show = 5
	var b strings.Builder
	for i, l := range r.InvalidLines {
		if i == show {
			fmt.Fprintf(&b, "\n  … and %d more", r.Invalid-show)
			break
		}
		fmt.Fprintf(&b, "\n  line %d: %s: %s", l.Line, l.Reason, l.Text)
	}
	return b.String()
}
