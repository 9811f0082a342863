package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/jobwire/jobwire/api"
)

// submitBatch submits every line of o.batch (JSON Lines; - is standard input) with POST
// /v1/jobs/batch, o.batchSize jobs per request, and prints one answer per job in order. Every line is
// read and decoded before the first request, so a malformed file queues nothing.
func (s *session) submitBatch(ctx context.Context, stdin io.Reader, o submitOptions) error {
	items, lineOf, err := readBatch(stdin, o.batch)
	if err != nil {
		return &ExitError{Code: exitOther, Err: err}
	}
	refused := 0
	for start := 0; start < len(items); start += o.batchSize {
		end := min(start+o.batchSize, len(items))
		results, err := call(ctx, func(ctx context.Context) ([]api.BatchResult, error) { return s.api.SubmitBatch(ctx, items[start:end]) })
		if err == nil && len(results) != end-start {
			err = fmt.Errorf("%d answers for %d jobs", len(results), end-start)
		}
		if err != nil {
			return s.fail(err, fmt.Sprintf("submit lines %d-%d of %s (the lines before were sent)", lineOf[start], lineOf[end-1], o.batch))
		}
		for i, r := range results {
			refused += s.printBatchResult(lineOf[start+i], r)
		}
	}
	if refused > 0 {
		return &ExitError{Code: exitOther, Err: fmt.Errorf("%d of %d jobs refused", refused, len(items))}
	}
	return nil
}

// printBatchResult prints one job's answer and returns 1 if the job was refused.
func (s *session) printBatchResult(line int, r api.BatchResult) int {
	if s.json {
		_ = writeJSON(s.out, r)
	} else if r.Job != nil {
		_ = writeLine(s.out, []byte(r.Job.ID))
	}
	if r.Error != nil {
		fmt.Fprintf(s.errOut, "line %d: %s (HTTP %d %s)\n", line, r.Error.Message, r.Status, r.Error.Code)
		return 1
	}
	return 0
}

// readBatch reads and strictly decodes a JSON Lines file of batch items, with the line number of each;
// blank lines are skipped.
func readBatch(stdin io.Reader, path string) (items []api.BatchItem, lineOf []int, err error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read batch: %w", err)
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxPlaylistBytes+1))
	sc.Buffer(make([]byte, 64<<10), maxPlaylistBytes)
	for n := 1; sc.Scan(); n++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var it api.BatchItem
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		err := dec.Decode(&it)
		if err == nil && dec.More() {
			err = fmt.Errorf("more than one value on the line")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s line %d: not a job (want {\"type\":...,\"input\":...}): %v", path, n, err)
		}
		items, lineOf = append(items, it), append(lineOf, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read batch %s: %w", path, err)
	}
	if len(items) == 0 {
		return nil, nil, fmt.Errorf("%s holds no jobs", path)
	}
	return items, lineOf, nil
}
