package cli

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/api"
)

// maxPageLimit is the largest page the gateway serves.
const maxPageLimit = 500

var jobStates = []api.State{api.StateQueued, api.StateActive, api.StateCompleted, api.StateFailed, api.StateCancelled}

// pageFlags are --limit and --all of the listing commands.
type pageFlags struct {
	limit int
	all   bool
}

func (p *pageFlags) bind(cmd *cobra.Command, def int, what string) {
	cmd.Flags().IntVar(&p.limit, "limit", def, fmt.Sprintf("%s per page (1..%d)", what, maxPageLimit))
	cmd.Flags().BoolVar(&p.all, "all", false, "list every page, not only the first")
}

func (p *pageFlags) validate() error {
	if p.limit < 1 || p.limit > maxPageLimit {
		return &ExitError{Code: exitOther, Err: fmt.Errorf("--limit %d: want 1..%d", p.limit, maxPageLimit)}
	}
	return nil
}

func newJobsCmd() *cobra.Command {
	var f clientFlags
	var p pageFlags
	var state string
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List your jobs, newest first",
		Long: "Lists your jobs, newest first, as a table (id, type, state, progress, created, updated) or,\n" +
			"with --json, one JSON object per line. Only the first page is shown unless --all.\n" + clientHelp,
		Example: "  jobwire jobs --state failed\n  jobwire jobs --all --json | jq -r .id",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.validate(); err != nil {
				return err
			}
			if state != "" && !slices.Contains(jobStates, api.State(state)) {
				return &ExitError{Code: exitOther, Err: fmt.Errorf("--state %q: want queued, active, completed, failed or cancelled", state)}
			}
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return s.listJobs(cmd.Context(), api.State(state), p)
		},
	}
	f.bind(cmd)
	p.bind(cmd, 50, "jobs")
	cmd.Flags().StringVar(&state, "state", "", "only jobs in this state: queued, active, completed, failed or cancelled")
	cmd.AddCommand(newRetryCmd())
	return cmd
}

// listJobs prints one page of jobs, or all of them.
func (s *session) listJobs(ctx context.Context, state api.State, p pageFlags) error {
	return listing[api.JobState]{
		what:   "jobs",
		header: "ID\tTYPE\tSTATE\tPROGRESS\tCREATED\tUPDATED",
		row: func(j api.JobState) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", j.ID, j.Type, j.State, progressText(j.Progress), fmtTime(j.CreatedAt), fmtTime(j.UpdatedAt))
		},
		fetch: func(ctx context.Context, cursor string) ([]api.JobState, string, error) {
			page, err := s.api.List(ctx, state, cursor, p.limit)
			return page.Jobs, page.NextCursor, err
		},
	}.print(ctx, s, p)
}

func newCancelCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "cancel <job-id>",
		Short: "Stop a queued or running job",
		Long: "Asks the gateway to cancel a job. A running job stops within a second and ends cancelled\n" +
			"(`jobwire watch` shows it). A job that has already finished cannot be cancelled (exit 1).\n" + clientHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			id := args[0]
			st, err := call(cmd.Context(), func(ctx context.Context) (api.JobState, error) { return s.api.Cancel(ctx, id) })
			if err != nil {
				return s.fail(err, "cancel job "+id)
			}
			if s.json {
				return writeJSON(s.out, st)
			}
			return writeLine(s.out, fmt.Appendf(nil, "cancel requested: job %s is %s", st.ID, st.State))
		},
	}
	f.bind(cmd)
	return cmd
}

func newRetryCmd() *cobra.Command {
	var f clientFlags
	var watch bool
	var giveUp time.Duration
	cmd := &cobra.Command{
		Use:   "retry <job-id>",
		Short: "Run a failed job again from the dead letters",
		Long: "Asks the gateway to queue a failed job again (POST /v1/jobs/{id}/retry); the gateway says\n" +
			"which jobs it can retry (409 otherwise, exit 1). With --watch it follows the job like\n" +
			"`jobwire watch`. A gateway without the retry route answers a route 404: the command then\n" +
			"says the gateway does not support retry yet and exits 1.\n" + clientHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			id := args[0]
			st, err := call(cmd.Context(), func(ctx context.Context) (api.JobState, error) { return s.api.Retry(ctx, id) })
			if api.IsCode(err, api.CodeNotFound) {
				return &ExitError{Code: exitOther, Err: fmt.Errorf("retry job %s: this gateway does not support retry yet (%w)", id, err)}
			}
			if err != nil {
				return s.fail(err, "retry job "+id)
			}
			switch {
			case watch && !s.json:
				fmt.Fprintf(s.out, "retry requested: job %s is %s\n", st.ID, st.State)
				return s.follow(cmd.Context(), id, giveUp)
			case watch:
				return s.follow(cmd.Context(), id, giveUp)
			case s.json:
				return writeJSON(s.out, st)
			}
			return writeLine(s.out, fmt.Appendf(nil, "retry requested: job %s is %s", st.ID, st.State))
		},
	}
	f.bind(cmd)
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the job until it ends")
	cmd.Flags().DurationVar(&giveUp, "reconnect-timeout", defaultReconnectTimeout, "with --watch: give up (exit 2) after reconnecting this long")
	return cmd
}
