package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/api"
)

func newLibraryCmd() *cobra.Command {
	var f clientFlags
	var p pageFlags
	cmd := &cobra.Command{
		Use:   "library",
		Short: "List the tracks your imports added",
		Long: "Lists your library (artist, title, album, duration, added), ordered by track key, or with\n" +
			"--json one track per line. Only the first page is shown unless --all.\n" + clientHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.validate(); err != nil {
				return err
			}
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return s.library(cmd.Context(), p)
		},
	}
	f.bind(cmd)
	p.bind(cmd, 100, "tracks")
	return cmd
}

// library prints one page of tracks, or all of them.
func (s *session) library(ctx context.Context, p pageFlags) error {
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	if !s.json {
		fmt.Fprintln(tw, "ARTIST\tTITLE\tALBUM\tDURATION\tADDED")
	}
	cursor := ""
	for {
		page, err := call(ctx, func(ctx context.Context) (api.TrackList, error) { return s.api.Library(ctx, cursor, p.limit) })
		if err != nil {
			return s.fail(err, "list library")
		}
		for _, tr := range page.Tracks {
			if s.json {
				if err := writeJSON(s.out, tr); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", tr.Artist, tr.Title, orDash(tr.Album), duration(tr.DurationSec), fmtTime(tr.AddedAt))
		}
		cursor = page.NextCursor
		if cursor == "" || !p.all {
			break
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if cursor != "" {
		fmt.Fprintln(s.errOut, "more tracks: use --all to list every page")
	}
	return nil
}

// duration prints seconds as m:ss, or "-" when unknown.
func duration(sec int) string {
	if sec <= 0 {
		return "-"
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}
