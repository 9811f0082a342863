package cli

import (
	"context"
	"fmt"

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
	return listing[api.Track]{
		what:   "tracks",
		header: "ARTIST\tTITLE\tALBUM\tDURATION\tADDED",
		row: func(tr api.Track) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", tr.Artist, tr.Title, orDash(tr.Album), duration(tr.DurationSec), fmtTime(tr.AddedAt))
		},
		fetch: func(ctx context.Context, cursor string) ([]api.Track, string, error) {
			page, err := s.api.Library(ctx, cursor, p.limit)
			return page.Tracks, page.NextCursor, err
		},
	}.print(ctx, s, p)
}

// duration prints seconds as m:ss, or "-" when unknown.
func duration(sec int) string {
	if sec <= 0 {
		return "-"
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}
