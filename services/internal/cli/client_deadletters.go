package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/api"
)

// deadLetterActionTimeout bounds one retry or purge request (up to api.MaxDeadLetterSelection items).
const deadLetterActionTimeout = 2 * time.Minute

// filterFlags select dead letters: --type, --code, --since, --until.
type filterFlags struct {
	jobType, code, since, until string
}

func (f *filterFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.jobType, "type", "", "only dead letters of this job type")
	cmd.Flags().StringVar(&f.code, "code", "", "only dead letters with this error code")
	cmd.Flags().StringVar(&f.since, "since", "", "only those that died at or after this time (RFC 3339, or a duration ago such as 2h)")
	cmd.Flags().StringVar(&f.until, "until", "", "only those that died before this time (RFC 3339, or a duration ago)")
}

func (f filterFlags) set() bool { return f != filterFlags{} }

// filter is the api.DeadLetterFilter the flags say; times are RFC 3339 or a duration before now.
func (f filterFlags) filter(now time.Time) (api.DeadLetterFilter, error) {
	out := api.DeadLetterFilter{Type: f.jobType, Code: f.code}
	var err error
	if out.Since, err = parseWhen("--since", f.since, now); err != nil {
		return out, err
	}
	out.Until, err = parseWhen("--until", f.until, now)
	return out, err
}

func parseWhen(flag, s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return &t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		t := now.Add(-d)
		return &t, nil
	}
	return nil, &ExitError{Code: exitOther, Err: fmt.Errorf("%s %q: want an RFC 3339 time or a duration ago such as 2h", flag, s)}
}

func newDeadLettersCmd() *cobra.Command {
	var f clientFlags
	var p pageFlags
	var ff filterFlags
	cmd := &cobra.Command{
		Use:     "dead-letters",
		Aliases: []string{"dlq"},
		Short:   "List the dead letters: jobs that failed for good, and malformed messages (operators)",
		Long: "Lists the dead-letter stream, oldest first: key, type, error code, attempts, when it died and\n" +
			"why. Needs a token with the operator role (`jobwire token --operator`). `retry` re-queues\n" +
			"jobs, `purge` removes dead letters for good; both take keys or the same filters, and every\n" +
			"such action is recorded in the JOBS_AUDIT stream.\n" + clientHelp,
		Example: "  jobwire dead-letters --type playlist.import --since 24h\n" +
			"  jobwire dead-letters retry alice.01JF3ZC8P6D3M0N1A7B2C4D5E\n" +
			"  jobwire dead-letters retry --code upstream_timeout --since 1h\n" +
			"  jobwire dead-letters purge --code invalid_job_message --yes",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.validate(); err != nil {
				return err
			}
			filter, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return s.listDeadLetters(cmd.Context(), filter, p)
		},
	}
	f.bind(cmd)
	p.bind(cmd, api.DefaultDeadLetterPage, "dead letters")
	ff.bind(cmd)
	cmd.AddCommand(newDeadLetterActionCmd("retry", "Re-queue the jobs of dead letters"),
		newDeadLetterActionCmd("purge", "Remove dead letters for good (their jobs stay failed)"))
	return cmd
}

// listDeadLetters prints one page of dead letters, or all of them.
func (s *session) listDeadLetters(ctx context.Context, f api.DeadLetterFilter, p pageFlags) error {
	return listing[api.DeadLetter]{
		what:   "dead letters",
		header: "KEY\tTYPE\tCODE\tATTEMPTS\tDIED\tMESSAGE",
		row: func(d api.DeadLetter) string {
			typ := d.Type
			if d.Malformed {
				typ = "(malformed on " + d.QueueSubject + ")"
			}
			return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s", d.Key, typ, d.Error.Code, d.Attempts, fmtTime(d.DeadAt), oneLine(d.Error.Message, 80))
		},
		fetch: func(ctx context.Context, cursor string) ([]api.DeadLetter, string, error) {
			page, err := s.api.DeadLetters(ctx, f, cursor, p.limit)
			return page.DeadLetters, page.NextCursor, err
		},
	}.print(ctx, s, p)
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max-1] + "…"
	}
	return s
}

// newDeadLetterActionCmd is `dead-letters retry` or `dead-letters purge`.
func newDeadLetterActionCmd(action, short string) *cobra.Command {
	var f clientFlags
	var ff filterFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   action + " [<key>...]",
		Short: short + " (operators)",
		Long: short + ", given by key (as `jobwire dead-letters` lists them) or by filter (the first\n" +
			strconv.Itoa(api.MaxDeadLetterSelection) + " that match). Prints what became of each; exits 1 if any was refused.\n" + clientHelp,
		RunE: func(cmd *cobra.Command, keys []string) error {
			sel, err := deadLetterSelection(keys, ff, action == "purge" && !yes)
			if err != nil {
				return err
			}
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return s.actOnDeadLetters(cmd.Context(), action, sel)
		},
	}
	f.bind(cmd)
	ff.bind(cmd)
	if action == "purge" {
		cmd.Flags().BoolVar(&yes, "yes", false, "purge what a filter selects (required with a filter: a purge cannot be undone)")
	}
	return cmd
}

func deadLetterSelection(keys []string, ff filterFlags, needYes bool) (api.DeadLetterSelection, error) {
	switch {
	case len(keys) > 0 && ff.set():
		return api.DeadLetterSelection{}, &ExitError{Code: exitOther, Err: errors.New("give keys or filters, not both")}
	case len(keys) > 0:
		return api.DeadLetterSelection{Keys: keys}, nil
	case !ff.set():
		return api.DeadLetterSelection{}, &ExitError{Code: exitOther, Err: errors.New("give the keys of dead letters, or filters (--type, --code, --since, --until)")}
	case needYes:
		return api.DeadLetterSelection{}, &ExitError{Code: exitOther, Err: errors.New("a purge by filter cannot be undone: add --yes")}
	}
	filter, err := ff.filter(time.Now())
	return api.DeadLetterSelection{Filter: &filter}, err
}

func (s *session) actOnDeadLetters(ctx context.Context, action string, sel api.DeadLetterSelection) error {
	ctx, cancel := context.WithTimeout(ctx, deadLetterActionTimeout)
	defer cancel()
	do := s.api.RetryDeadLetters
	if action == "purge" {
		do = s.api.PurgeDeadLetters
	}
	results, err := do(ctx, sel)
	if err != nil {
		return s.fail(err, action+" dead letters")
	}
	refused := 0
	for _, r := range results {
		if r.Status != http.StatusOK {
			refused++
		}
		if s.json {
			if err := writeJSON(s.out, r); err != nil {
				return err
			}
			continue
		}
		switch {
		case r.Error != nil:
			fmt.Fprintf(s.out, "%s: %s (%s)\n", r.Key, r.Error.Message, r.Error.Code)
		case r.Job != nil:
			fmt.Fprintf(s.out, "%s: re-queued, job %s is %s\n", r.Key, r.Job.ID, r.Job.State)
		default:
			fmt.Fprintf(s.out, "%s: purged\n", r.Key)
		}
	}
	if refused > 0 {
		return &ExitError{Code: exitOther, Err: fmt.Errorf("%s: %d of %d refused", action, refused, len(results))}
	}
	if len(results) == 0 && !s.json {
		fmt.Fprintln(s.errOut, "no dead letter matched")
	}
	return nil
}
