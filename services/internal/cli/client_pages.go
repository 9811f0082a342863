package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
)

// listing is one paged listing command: what it lists, its table header and row, and how to fetch a page.
type listing[T any] struct {
	what   string // "jobs": in messages
	header string // tab-separated column names
	row    func(T) string
	fetch  func(ctx context.Context, cursor string) (items []T, next string, err error)
}

// print prints the first page, or with --all every page, as a table or (--json) one object per line.
func (l listing[T]) print(ctx context.Context, s *session, p pageFlags) error {
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	if !s.json {
		fmt.Fprintln(tw, l.header)
	}
	cursor := ""
	for {
		var items []T
		var err error
		items, cursor, err = callPage(ctx, l.fetch, cursor)
		if err != nil {
			return s.fail(err, "list "+l.what)
		}
		for _, item := range items {
			if s.json {
				if err := writeJSON(s.out, item); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintln(tw, l.row(item))
		}
		if cursor == "" || !p.all {
			break
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if cursor != "" {
		fmt.Fprintf(s.errOut, "more %s: use --all to list every page\n", l.what)
	}
	return nil
}

// callPage fetches one page within the request timeout.
func callPage[T any](ctx context.Context, fetch func(context.Context, string) ([]T, string, error), cursor string) ([]T, string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return fetch(ctx, cursor)
}
