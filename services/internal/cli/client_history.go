package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/api"
)

// historyEvent is the part of a JOB_EVENTS entry that history prints. It is decoded leniently: a
// field a newer gateway adds is ignored, never an error.
type historyEvent struct {
	Type     string          `json:"type"`
	JobType  string          `json:"jobType"`
	At       time.Time       `json:"at"`
	Attempt  int             `json:"attempt"`
	Name     string          `json:"name"`
	Worker   string          `json:"worker"`
	Progress *api.Progress   `json:"progress"`
	Result   json.RawMessage `json:"result"`
	Error    *api.JobError   `json:"error"`
	Final    bool            `json:"final"`
	RetryAt  *time.Time      `json:"retryAt"`
}

func newHistoryCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "history <job-id>",
		Short: "List a job's events, oldest first",
		Long: "Lists the events of a job from the JOB_EVENTS log, oldest first: one line per event with its\n" +
			"time, type, attempt and progress, result or error. --json prints each event as stored.\n" + clientHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return s.history(cmd.Context(), args[0])
		},
	}
	f.bind(cmd)
	return cmd
}

// history prints the events of job id.
func (s *session) history(ctx context.Context, id string) error {
	events, err := call(ctx, func(ctx context.Context) ([]json.RawMessage, error) { return s.api.HistoryAll(ctx, id) })
	if err != nil {
		return s.fail(err, "history of job "+id)
	}
	if s.json {
		for _, raw := range events {
			if err := writeRawJSON(s.out, raw); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	for i, raw := range events {
		var e historyEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("decode event %d of job %s: %w", i+1, id, err)
		}
		attempt := "-"
		if e.Attempt > 0 {
			attempt = strconv.Itoa(e.Attempt)
		}
		fmt.Fprintf(tw, "%s\t%s\tattempt %s\t%s\n", e.At.Local().Format(timeLayout+".000"), e.Type, attempt, e.detail())
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// detail is what an event adds: progress, result or error.
func (e *historyEvent) detail() string {
	var d string
	switch {
	case e.Error != nil:
		d = errorText(e.Error)
		if !e.Final && e.RetryAt != nil {
			d += ", retry at " + fmtTime(*e.RetryAt)
		}
	case len(e.Result) > 0:
		d = resultText(e.JobType, e.Result)
	case e.Progress != nil:
		d = progressText(*e.Progress)
	case e.Name != "":
		d = fmt.Sprintf("name %q", e.Name)
	case e.Worker != "":
		d = "worker " + e.Worker
	}
	return d
}
