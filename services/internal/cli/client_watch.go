package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/progressbar"
)

// defaultReconnectTimeout is how long watch keeps reconnecting to a gateway that stopped answering.
const defaultReconnectTimeout = time.Minute

func newWatchCmd() *cobra.Command {
	var f clientFlags
	var giveUp time.Duration
	cmd := &cobra.Command{
		Use:   "watch <job-id>",
		Short: "Follow a job's progress until it ends",
		Long: "Follows a job over the gateway's event stream until it ends. On a terminal a progress bar\n" +
			"redraws in place; otherwise every change is one line (percent, done/total, state). With --json\n" +
			"every state is printed as one JSON object per line. A dropped connection is resumed where it\n" +
			"left off (Last-Event-ID), so no state is printed twice or missed. The last line sums up the\n" +
			"result, or says why the job failed; a failed or cancelled job exits 5.\n" + clientHelp,
		Example: "  jobwire watch 01JF3Q4K9V8X2M5N7P0R6S1T2W\n  jobwire watch --json 01JF3Q4K9V8X2M5N7P0R6S1T2W | jq .progress.percent",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return s.follow(cmd.Context(), args[0], giveUp)
		},
	}
	f.bind(cmd)
	cmd.Flags().DurationVar(&giveUp, "reconnect-timeout", defaultReconnectTimeout, "give up (exit 2) after reconnecting this long without an answer")
	return cmd
}

// view shows the states of a watched job.
type view interface {
	state(api.JobState) error
	note(msg string) error
	finish(api.JobState) error
}

// newView returns the JSON view or, for people, a progress bar drawn as fits s.out.
func (s *session) newView() view {
	if s.json {
		return &jsonView{s: s}
	}
	var o progressbar.Options
	if s.bar != nil {
		o = *s.bar
	} else {
		o = progressbar.Detect(s.out)
	}
	return &barView{bar: progressbar.New(s.out, o), s: s, tty: o.TTY}
}

// follow prints job id's states until it ends and returns the exit error of a job that failed or was
// cancelled. A dropped stream is resumed by api.Client.WatchJob with Last-Event-ID, with one
// "reconnecting…" note per outage; a gateway that never answered is an immediate exit 2, one that
// stops answering is given up (exit 2) after giveUp without an answer.
func (s *session) follow(ctx context.Context, id string, giveUp time.Duration) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	v := s.newView()
	var (
		last     api.JobState
		seen     bool
		streak   time.Time // first reconnect since the gateway last answered
		answered = s.responses.Load()
	)
	show := func(st api.JobState) error {
		last, seen = st, true
		return v.state(st)
	}
	onReconnect := func(err error) {
		n := s.responses.Load()
		switch {
		case n == 0 && unreachable(err):
			cancel(s.unreachableErr(err))
		case n != answered || streak.IsZero():
			// The first failure since the gateway last answered: say so once per outage.
			streak, answered = time.Now(), n
			if nerr := v.note("reconnecting…"); nerr != nil {
				cancel(nerr)
			}
		case time.Since(streak) > giveUp:
			e := s.unreachableErr(err)
			e.Err = fmt.Errorf("gave up reconnecting after %s: %w", giveUp, e.Err)
			cancel(e)
		}
	}
	err := s.api.WatchJob(ctx, id, show, onReconnect)
	if cause := context.Cause(ctx); ctx.Err() != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if err != nil {
		return s.fail(err, "watch job "+id)
	}
	if !seen || !last.State.Terminal() {
		// The stream ended without a terminal state (204 after a resume): ask for the final one.
		st, err := call(ctx, func(ctx context.Context) (api.JobState, error) { return s.api.Get(ctx, id) })
		if err != nil {
			return s.fail(err, "watch job "+id)
		}
		if !seen || st.Revision != last.Revision {
			if err := show(st); err != nil {
				return err
			}
		}
	}
	if err := v.finish(last); err != nil {
		return err
	}
	return stateExit(last)
}

// stateExit is nil for a completed job and exit code 5 for one that failed or was cancelled.
func stateExit(st api.JobState) error {
	switch st.State {
	case api.StateFailed, api.StateCancelled:
		return &ExitError{Code: exitJobFailed, Err: fmt.Errorf("job %s %s", st.ID, st.State)}
	case api.StateCompleted:
		return nil
	}
	return &ExitError{Code: exitOther, Err: fmt.Errorf("job %s stopped streaming while %s", st.ID, st.State)}
}

// jsonView prints every state as a JSON line; notes go to stderr.
type jsonView struct{ s *session }

func (v *jsonView) state(st api.JobState) error { return writeJSON(v.s.out, st) }
func (v *jsonView) note(msg string) error       { return writeLine(v.s.errOut, []byte(msg)) }
func (v *jsonView) finish(api.JobState) error   { return nil }

// barView draws a progress bar. Notes go above the bar on a terminal, to stderr otherwise (so the
// plain output stays one line per state).
type barView struct {
	bar *progressbar.Bar
	s   *session
	tty bool
}

func (v *barView) state(st api.JobState) error {
	return v.bar.Update(progressbar.Frame{Percent: st.Progress.Percent, Done: st.Progress.Done, Total: st.Progress.Total, Label: string(st.State)})
}

func (v *barView) note(msg string) error {
	if v.tty {
		return v.bar.Note(msg)
	}
	return writeLine(v.s.errOut, []byte(msg))
}

func (v *barView) finish(st api.JobState) error { return v.bar.Finish(summary(st)) }
