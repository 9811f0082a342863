package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/worker"
)

func newJobTypesCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "job-types",
		Short: "List the job types the workers registered",
		Long: "Lists the registered job types: name, workers serving it now (jobs of a type with none\n" +
			"are accepted and wait), the type's limits and its description; with --json one type per\n" +
			"line, with its input's JSON Schema.\n" + clientHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return s.jobTypes(cmd.Context())
		},
	}
	f.bind(cmd)
	cmd.AddCommand(newControlCmd("pause", "Pause a job type on every worker (operators only)",
		"Pauses a job type cluster-wide: its workers stop fetching jobs within a second, running jobs\n"+
			"finish, submits still queue. `jobwire job-types resume <type>` lets them run again.\n"+clientHelp),
		newControlCmd("resume", "Resume a paused job type (operators only)",
			"Lets a paused job type's workers fetch jobs again.\n"+clientHelp),
		newRateLimitCmd())
	return cmd
}

// newControlCmd is `jobwire job-types pause|resume <type>`.
func newControlCmd(action, short, long string) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   action + " <type>",
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			do := s.api.PauseJobType
			if action == "resume" {
				do = s.api.ResumeJobType
			}
			jt, err := call(cmd.Context(), func(ctx context.Context) (api.JobType, error) { return do(ctx, args[0]) })
			if err != nil {
				return s.fail(err, action+" "+args[0])
			}
			if s.json {
				return writeJSON(s.out, jt)
			}
			fmt.Fprintf(s.out, "%s %s\n", jt.Name, pausedText(jt))
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

// newRateLimitCmd is `jobwire job-types rate-limit <type> --limit N --per D | --remove`.
func newRateLimitCmd() *cobra.Command {
	var f clientFlags
	var limit int
	var per time.Duration
	var remove bool
	cmd := &cobra.Command{
		Use:   "rate-limit <type> (--limit N --per D | --remove)",
		Short: "Cap a job type's starts over every worker (operators only)",
		Long: "Sets a cluster-wide rate limit: at most --limit jobs of the type start in any window of\n" +
			"--per (1s to 24h), over every worker; --remove lifts it.\n" + clientHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if remove == (limit != 0) {
				return &ExitError{Code: exitOther, Err: errors.New("give --limit and --per, or --remove")}
			}
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			jt, err := call(cmd.Context(), func(ctx context.Context) (api.JobType, error) {
				if remove {
					return s.api.RemoveRateLimit(ctx, args[0])
				}
				return s.api.SetRateLimit(ctx, args[0], api.RateLimit{Limit: limit, Interval: api.Duration(per)})
			})
			if err != nil {
				return s.fail(err, "rate-limit "+args[0])
			}
			if s.json {
				return writeJSON(s.out, jt)
			}
			fmt.Fprintf(s.out, "%s %s\n", jt.Name, rateText(jt))
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "jobs that may start per window")
	cmd.Flags().DurationVar(&per, "per", time.Second, "the window")
	cmd.Flags().BoolVar(&remove, "remove", false, "lift the type's rate limit")
	return cmd
}

// rateText is "10 per 1s", or "unlimited".
func rateText(jt api.JobType) string {
	if jt.RateLimit == nil {
		return "unlimited"
	}
	return fmt.Sprintf("%d per %s", jt.RateLimit.Limit, worker.FormatDuration(time.Duration(jt.RateLimit.Interval)))
}

// pausedText is "paused" or "running".
func pausedText(jt api.JobType) string {
	if jt.Paused {
		return "paused"
	}
	return "running"
}

// jobTypes prints the registered job types.
func (s *session) jobTypes(ctx context.Context) error {
	list, err := call(ctx, s.api.JobTypes)
	if err != nil {
		return s.fail(err, "list job types")
	}
	if s.json {
		for _, jt := range list.JobTypes {
			if err := writeJSON(s.out, jt); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tSTATE\tWORKERS\tMAX IN FLIGHT\tRATE\tATTEMPTS\tTIMEOUT\tDESCRIPTION")
	for _, jt := range list.JobTypes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", jt.Name, pausedText(jt), workersText(jt), jt.Options.MaxInFlight, rateText(jt), jt.Options.MaxAttempts,
			worker.FormatDuration(time.Duration(jt.Options.Timeout)), orDash(jt.Description))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// workersText is "2 (8 slots)" for a type with workers, "offline" without.
func workersText(jt api.JobType) string {
	if len(jt.Workers) == 0 {
		return "offline"
	}
	slots := 0
	for _, w := range jt.Workers {
		slots += w.Concurrency
	}
	return fmt.Sprintf("%d (%d slots)", len(jt.Workers), slots)
}
