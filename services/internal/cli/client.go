package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/config"
	"github.com/jobwire/jobwire/services/internal/progressbar"
)

// addClientCommands adds the user commands (submit, watch, jobs, cancel, history, library, job-types).
func addClientCommands(root *cobra.Command) {
	root.AddCommand(newSubmitCmd(), newWatchCmd(), newJobsCmd(), newCancelCmd(), newHistoryCmd(), newLibraryCmd(), newJobTypesCmd(), newDeadLettersCmd(), newSchedulesCmd())
}

// clientHelp ends the help of every user command: where the gateway and token come from, and the
// exit codes scripts can rely on.
const clientHelp = `
The gateway is --url, else $JOBWIRE_URL, else http://127.0.0.1:8080; the token is --token, else
$JOBWIRE_TOKEN (make one with ` + "`jobwire token --user you`" + `).

Exit codes:
  0  ok
  1  usage or other error (bad flags, 409 job already finished, 422 invalid playlist, ...)
  2  the gateway cannot be reached
  3  unauthorized: token missing, invalid or expired (HTTP 401 or 403)
  4  not found (HTTP 404): no such job for this user
  5  the watched job ended failed or cancelled`

// requestTimeout bounds one REST call of a user command (streams are not bounded).
const requestTimeout = 30 * time.Second

// clientFlags are the flags every user command has.
type clientFlags struct {
	url, token string
	json       bool
}

// bind adds --url, --token and --json to cmd.
func (f *clientFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.url, "url", "", "gateway URL (default $JOBWIRE_URL, else http://127.0.0.1:8080)")
	fs.StringVar(&f.token, "token", "", "bearer token (default $JOBWIRE_TOKEN)")
	fs.BoolVar(&f.json, "json", false, "print JSON objects, one per line, instead of text")
}

// session is one run of a user command: the API client, the output streams and the output mode.
type session struct {
	url    string
	api    *api.Client
	json   bool
	out    io.Writer
	errOut io.Writer
	// responses counts HTTP answers received (any status); watch uses it to tell a gateway that never
	// answered from one that dropped a stream.
	responses *atomic.Int64
	// bar, when set, overrides how the progress bar is drawn (tests); nil detects it from out.
	bar *progressbar.Options
}

// session resolves the flags and the environment into a session for cmd.
func (f *clientFlags) session(cmd *cobra.Command) (*session, error) {
	env := config.FromOS()
	base := strings.TrimRight(f.url, "/")
	if base == "" {
		base = strings.TrimRight(env.String("JOBWIRE_URL"), "/")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &ExitError{Code: 1, Err: fmt.Errorf("gateway URL %q: want http(s)://host:port", base)}
	}
	token := f.token
	if token == "" {
		token = env.String("JOBWIRE_TOKEN")
	}
	s := &session{url: base, json: f.json, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), responses: new(atomic.Int64)}
	s.api = api.NewClient(base, token)
	s.api.HTTP = &http.Client{Transport: &countingTransport{base: newTransport(), n: s.responses}}
	return s, nil
}

// newTransport is the default transport with a bounded dial, so an unreachable host fails in seconds.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}

// countingTransport counts the answers it gets.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		t.n.Add(1)
	}
	return resp, err
}

// call runs one REST call bounded by requestTimeout.
func call[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return fn(ctx)
}
