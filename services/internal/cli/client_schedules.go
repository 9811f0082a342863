package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/api"
)

func newSchedulesCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "List the periodic jobs' schedules (operators)",
		Long: "Lists the schedules of periodic jobs: id, job type, cron expression or interval, the operator\n" +
			"whose jobs they make, when they were made. `create` makes one, `delete` removes one. Needs a\n" +
			"token with the operator role (`jobwire token --operator`); every create and delete is recorded\n" +
			"in the JOBS_AUDIT stream. A tick after an outage is not caught up: the schedule runs once,\n" +
			"then on its cadence.\n" + clientHelp,
		Example: "  jobwire schedules\n" +
			"  jobwire schedules create --id nightly --type demo.count --input '{\"n\":10}' --cron '0 30 2 * * *' --timezone Europe/Berlin\n" +
			"  jobwire schedules create --type demo.count --input @job.json --every 5m\n" +
			"  jobwire schedules delete nightly",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return s.listSchedules(cmd.Context())
		},
	}
	f.bind(cmd)
	list := &cobra.Command{Use: "list", Short: "List the schedules (operators)", Args: cobra.NoArgs, RunE: cmd.RunE}
	list.Flags().AddFlagSet(cmd.Flags())
	cmd.AddCommand(list, newScheduleCreateCmd(), newScheduleDeleteCmd())
	return cmd
}

func (s *session) listSchedules(ctx context.Context) error {
	list, err := call(ctx, s.api.Schedules)
	if err != nil {
		return s.fail(err, "list schedules")
	}
	if s.json {
		for _, sc := range list.Schedules {
			if err := writeJSON(s.out, sc); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tWHEN\tOWNER\tCREATED\tINPUT")
	for _, sc := range list.Schedules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", sc.ID, sc.Type, scheduleWhen(sc), sc.Owner, fmtTime(sc.CreatedAt), oneLine(string(sc.Input), 60))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// scheduleWhen is "every 5m0s", or the cron expression with its zone.
func scheduleWhen(sc api.Schedule) string {
	switch {
	case sc.Every != "":
		return "every " + sc.Every
	case sc.Timezone != "":
		return sc.Cron + " (" + sc.Timezone + ")"
	}
	return sc.Cron
}

func newScheduleCreateCmd() *cobra.Command {
	var f clientFlags
	var req api.ScheduleRequest
	var input string
	cmd := &cobra.Command{
		Use:   "create --type <type> --input <json | @file | @-> (--cron <expr> | --every <duration>)",
		Short: "Make a periodic job (operators)",
		Long: "Makes a schedule that submits a job of --type with --input on a cron expression (six fields,\n" +
			"seconds first, or @hourly, @daily, @weekly, @monthly, @yearly; --timezone for its zone) or at an\n" +
			"interval (--every, whole seconds, at least 1s). The jobs are yours, each tick's exactly once.\n" +
			"Prints the schedule.\n" + clientHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Type == "" || input == "" {
				return &ExitError{Code: exitOther, Err: errors.New("--type and --input are required")}
			}
			if (req.Cron == "") == (req.Every == "") {
				return &ExitError{Code: exitOther, Err: errors.New("give --cron or --every, one of them")}
			}
			raw, err := readInput(cmd.InOrStdin(), input)
			if err != nil {
				return err
			}
			req.Input = raw
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			sc, err := call(cmd.Context(), func(ctx context.Context) (api.Schedule, error) { return s.api.CreateSchedule(ctx, req) })
			if err != nil {
				return s.fail(err, "create schedule")
			}
			if s.json {
				return writeJSON(s.out, sc)
			}
			fmt.Fprintf(s.out, "%s: %s %s\n", sc.ID, sc.Type, scheduleWhen(sc))
			return nil
		},
	}
	f.bind(cmd)
	fs := cmd.Flags()
	fs.StringVar(&req.ID, "id", "", "the schedule's id: letters, digits, - and _ (default a new ULID)")
	fs.StringVar(&req.Type, "type", "", "the job type")
	fs.StringVar(&input, "input", "", "the jobs' input: JSON, @file or @- (standard input)")
	fs.StringVar(&req.Cron, "cron", "", "a 6-field cron expression, seconds first, or @hourly, @daily, ...")
	fs.StringVar(&req.Every, "every", "", "an interval such as 30s or 1h (whole seconds, at least 1s)")
	fs.StringVar(&req.Timezone, "timezone", "", "the IANA time zone of --cron (default UTC)")
	fs.StringVar(&req.Timeout, "timeout", "", "each job's timeout per attempt, such as 90s (default the type's)")
	fs.IntVar(&req.MaxAttempts, "max-attempts", 0, "each job's attempts, up to the type's (default the type's)")
	fs.StringVar((*string)(&req.Priority), "priority", "", "the jobs' level: high, normal (default) or low")
	return cmd
}

func newScheduleDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete <id>...",
		Short: "Delete schedules: they make no more jobs (operators)",
		Long:  "Deletes each schedule and its ticks not yet taken; jobs already made are not touched.\n" + clientHelp,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := call(cmd.Context(), func(ctx context.Context) (struct{}, error) { return struct{}{}, s.api.DeleteSchedule(ctx, id) }); err != nil {
					return s.fail(err, "delete schedule "+id)
				}
				if !s.json {
					fmt.Fprintf(s.out, "%s: deleted\n", id)
				}
			}
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}
