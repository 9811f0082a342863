package cli

import (
	"context"
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
	return cmd
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
	fmt.Fprintln(tw, "TYPE\tWORKERS\tMAX IN FLIGHT\tATTEMPTS\tTIMEOUT\tDESCRIPTION")
	for _, jt := range list.JobTypes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", jt.Name, workersText(jt), jt.Options.MaxInFlight, jt.Options.MaxAttempts,
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
