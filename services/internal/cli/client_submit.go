package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/importer"
)

// maxPlaylistBytes bounds what submit reads; the gateway's own body limit is usually lower.
const maxPlaylistBytes = 64 << 20

var playlistFormats = []string{api.FormatM3U, api.FormatXSPF, api.FormatCSV, api.FormatJSON}

// submitOptions are the flags of submit.
type submitOptions struct {
	format, name, key string
	jobType, input    string
	unique, uniqueFor string
	priority          string
	batch             string
	batchSize         int
	watch             bool
	giveUp            time.Duration
}

func newSubmitCmd() *cobra.Command {
	var f clientFlags
	var o submitOptions
	cmd := &cobra.Command{
		Use:   "submit [<playlist-file | -> | --type <type> --input <json | @file | @->]",
		Short: "Submit a job: a playlist import, or any registered job type",
		Long: "With a file argument, submits a playlist.import job for a playlist file, or for standard input\n" +
			"with -. The format comes from the file extension (.m3u .m3u8 .xspf .csv .tsv .json) or the\n" +
			"content, unless --format says it. With --type and --input it submits a job of any type the\n" +
			"workers registered (`jobwire job-types` lists them), its input given as JSON, or read from a\n" +
			"file (@file) or standard input (@-); the gateway checks it against the type's schema.\n" +
			"Prints the job id (the job's JSON with --json); with --watch it follows the job like\n" +
			"`jobwire watch` and exits 5 if the job fails, so scripts can chain on success.\n" +
			"The same --idempotency-key never makes a second job.\n" +
			"With --batch it submits every line of a JSON Lines file (or of standard input with -), each\n" +
			"a POST /v1/jobs body plus an optional \"idempotencyKey\", in requests of --batch-size jobs,\n" +
			"and prints per line the job id (or, with --json, the item's answer); a line the gateway\n" +
			"refused is reported on standard error and the command exits 1 once every line was sent.\n" + clientHelp,
		Example: "  jobwire submit road-trip.m3u --watch\n" +
			"  curl -s https://example.com/list.xspf | jobwire submit - --name 'Road trip'\n" +
			"  jobwire submit --type demo.count --input '{\"n\":10}' --watch\n" +
			"  jobwire submit --type demo.count --input @job.json\n" +
			"  jobwire submit --batch jobs.jsonl",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(args); err != nil {
				return &ExitError{Code: exitOther, Err: err}
			}
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			if o.batch != "" {
				return s.submitBatch(cmd.Context(), cmd.InOrStdin(), o)
			}
			if o.input != "" {
				return s.submitInput(cmd.Context(), cmd.InOrStdin(), o)
			}
			return s.submit(cmd.Context(), cmd.InOrStdin(), args[0], o)
		},
	}
	f.bind(cmd)
	fs := cmd.Flags()
	fs.StringVar(&o.jobType, "type", api.JobTypePlaylistImport, "job type (with --input)")
	fs.StringVar(&o.input, "input", "", "the job's input: JSON, @file or @- (standard input)")
	fs.StringVar(&o.batch, "batch", "", "submit many jobs from a JSON Lines file (- for standard input): one {\"type\",\"input\",...,\"idempotencyKey\"} per line")
	fs.IntVar(&o.batchSize, "batch-size", api.MaxBatchJobs, "with --batch: jobs per request (at most the gateway's submit burst)")
	fs.StringVar(&o.format, "format", "", "playlist format: m3u, xspf, csv or json (default: detected)")
	fs.StringVar(&o.name, "name", "", "name of the import (default: the file name)")
	fs.BoolVar(&o.watch, "watch", false, "follow the job until it ends")
	fs.StringVar(&o.key, "idempotency-key", "", "submitting again with the same key returns the first job")
	fs.StringVar(&o.unique, "unique-key", "", "while your job of this type with this key is unfinished, return it instead of making another")
	fs.StringVar(&o.uniqueFor, "unique-for", "", "with --unique-key: how long the key holds at most (default 1h, up to 24h)")
	fs.StringVar(&o.priority, "priority", "", "high, normal (the default) or low: workers take higher levels first")
	fs.DurationVar(&o.giveUp, "reconnect-timeout", defaultReconnectTimeout, "with --watch: give up (exit 2) after reconnecting this long")
	return cmd
}

// check reports flags that do not go together.
func (o submitOptions) check(args []string) error {
	switch {
	case o.batch != "" && (o.input != "" || len(args) > 0 || o.watch || o.key != "" || o.unique != "" || o.format != "" || o.name != ""):
		return fmt.Errorf("--batch takes its jobs from the file alone: no playlist, --input, --watch, --idempotency-key, --unique-key, --format or --name")
	case o.uniqueFor != "" && o.unique == "":
		return fmt.Errorf("--unique-for needs --unique-key")
	case o.batch != "" && (o.batchSize < 1 || o.batchSize > api.MaxBatchJobs):
		return fmt.Errorf("--batch-size must be 1..%d", api.MaxBatchJobs)
	case o.batch != "":
		return nil
	case o.input != "" && len(args) > 0:
		return fmt.Errorf("give a playlist file or --input, not both")
	case o.input == "" && o.jobType != api.JobTypePlaylistImport:
		return fmt.Errorf("--type %s needs --input", o.jobType)
	case o.input == "" && len(args) == 0:
		return fmt.Errorf("give a playlist file (or - for standard input), or --type and --input")
	case o.input != "" && (o.format != "" || o.name != ""):
		return fmt.Errorf("--format and --name describe a playlist file; with --input, put them in the input")
	}
	return nil
}

// submitInput submits a job of o.jobType with o.input (JSON, @file or @-).
func (s *session) submitInput(ctx context.Context, stdin io.Reader, o submitOptions) error {
	raw, err := readInput(stdin, o.input)
	if err != nil {
		return &ExitError{Code: exitOther, Err: err}
	}
	return s.send(ctx, api.SubmitRequest{Type: o.jobType, Input: raw, UniqueKey: o.unique, UniqueFor: o.uniqueFor, Priority: api.Priority(o.priority)}, o, "submit "+o.jobType, o.jobType)
}

// readInput returns the JSON of --input: the flag's value, or a file's (@path) or standard input's (@-).
func readInput(stdin io.Reader, value string) (json.RawMessage, error) {
	data, where := []byte(value), "--input"
	switch {
	case value == "@-":
		var err error
		if data, err = io.ReadAll(io.LimitReader(stdin, maxPlaylistBytes+1)); err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		where = "standard input"
	case strings.HasPrefix(value, "@"):
		var err error
		if data, err = readFileLimited(value[1:]); err != nil {
			return nil, err
		}
		where = value[1:]
	}
	if len(data) > maxPlaylistBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB", where, maxPlaylistBytes>>20)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%s is not JSON", where)
	}
	return data, nil
}

// submit reads the playlist at path (- is stdin), submits it and prints or follows the job.
func (s *session) submit(ctx context.Context, stdin io.Reader, path string, o submitOptions) error {
	in, err := readPlaylist(stdin, path, o)
	if err != nil {
		return &ExitError{Code: exitOther, Err: err}
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode input: %w", err)
	}
	label := fmt.Sprintf("%s %q (%s, %d bytes)", api.JobTypePlaylistImport, in.Name, in.Format, len(in.Content))
	return s.send(ctx, api.SubmitRequest{Type: api.JobTypePlaylistImport, Input: raw, UniqueKey: o.unique, UniqueFor: o.uniqueFor, Priority: api.Priority(o.priority)}, o, "submit "+path, label)
}

// send submits req and prints the job, or follows it with --watch (after a line with the job id and
// label).
func (s *session) send(ctx context.Context, req api.SubmitRequest, o submitOptions, what, label string) error {
	var created bool
	st, err := call(ctx, func(ctx context.Context) (st api.JobState, err error) {
		st, created, err = s.api.Submit(ctx, req, o.key)
		return st, err
	})
	if err != nil {
		return s.fail(err, what)
	}
	if !created {
		fmt.Fprintf(s.errOut, "idempotency key %q was used before: this is job %s, submitted %s\n", o.key, st.ID, fmtTime(st.CreatedAt))
	}
	switch {
	case o.watch && !s.json:
		fmt.Fprintf(s.out, "job %s  %s\n", st.ID, label)
		return s.follow(ctx, st.ID, o.giveUp)
	case o.watch:
		return s.follow(ctx, st.ID, o.giveUp)
	case s.json:
		return writeJSON(s.out, st)
	}
	return writeLine(s.out, []byte(st.ID))
}

// readPlaylist reads the playlist and settles its name and format.
func readPlaylist(stdin io.Reader, path string, o submitOptions) (api.PlaylistImport, error) {
	var (
		data []byte
		err  error
		file string
	)
	if path == "-" {
		if data, err = io.ReadAll(io.LimitReader(stdin, maxPlaylistBytes+1)); err != nil {
			err = fmt.Errorf("read standard input: %w", err)
		}
	} else {
		file = path
		data, err = readFileLimited(path)
	}
	if err != nil {
		return api.PlaylistImport{}, err
	}
	shown := path
	if path == "-" {
		shown = "standard input"
	}
	switch {
	case len(data) > maxPlaylistBytes:
		return api.PlaylistImport{}, fmt.Errorf("%s is larger than %d MiB", shown, maxPlaylistBytes>>20)
	case strings.TrimSpace(string(data)) == "":
		return api.PlaylistImport{}, fmt.Errorf("%s is empty", shown)
	}
	in := api.PlaylistImport{Name: o.name, Format: strings.ToLower(o.format), Content: string(data)}
	if in.Name == "" && file != "" {
		in.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	if in.Format == "" {
		f, ok := importer.DetectFormat(file, in.Content)
		if !ok {
			return in, fmt.Errorf("cannot tell the format of %s: pass --format m3u, xspf, csv or json", shown)
		}
		in.Format = f
	} else if !slices.Contains(playlistFormats, in.Format) {
		return in, fmt.Errorf("--format %q: want m3u, xspf, csv or json", o.format)
	}
	return in, nil
}

// readFileLimited reads at most maxPlaylistBytes+1 bytes of path.
func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read playlist: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPlaylistBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read playlist %s: %w", path, err)
	}
	return data, nil
}
