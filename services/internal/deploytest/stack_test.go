package deploytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/config"
	"github.com/jobwire/jobwire/services/internal/testkit"
)

// jwtSecret is the gateways' JOBWIRE_JWT_SECRET in these tests.
const jwtSecret = "deploytest-secret-deploytest-secret-0123456789"

// stack runs jobwire services as processes against NATS, each with its own NATS user.
type stack struct {
	natsURL string
	users   map[string]natsUser
	// common is added to every service's environment (JOBWIRE_REPLICAS, ...).
	common []string
}

// env returns the environment of a process that connects as user.
func (s *stack) env(user string, extra ...string) []string {
	u := s.users[user]
	env := []string{"NATS_URL=" + s.natsURL, "NATS_USER=" + u.Name, "NATS_PASSWORD=" + u.Password, "JOBWIRE_LOG_FORMAT=text"}
	env = append(env, s.common...)
	return append(env, extra...)
}

// svc is a running jobwire service: the base URL of its HTTP endpoints (the gateway's API, else its
// metrics listener) and of its metrics listener.
type svc struct {
	*testkit.Proc
	base, ops string
}

// startService runs `jobwire <command>` as user with its metrics listener on a free port
// (JOBWIRE_METRICS_ADDR), and for the gateway its API too (JOBWIRE_HTTP_ADDR), and waits for /readyz.
func (s *stack) startService(t *testing.T, name, command, user string, extra ...string) *svc {
	t.Helper()
	ops := testkit.FreeAddr(t)
	extra = append(extra, "JOBWIRE_METRICS_ADDR="+ops)
	v := &svc{base: "http://" + ops, ops: "http://" + ops}
	if command == "gateway" {
		addr := testkit.FreeAddr(t)
		extra = append(extra, "JOBWIRE_JWT_SECRET="+jwtSecret, "JOBWIRE_HTTP_ADDR="+addr)
		v.base = "http://" + addr
	}
	v.Proc = testkit.StartProc(t, name, jobwireBin, s.env(user, extra...), command)
	v.waitReady(t)
	return v
}

func (v *svc) waitReady(t *testing.T) {
	t.Helper()
	waitHTTP200(t, v.Proc, v.base+"/readyz", 90*time.Second)
}

// admin runs `jobwire args...` as the admin user and returns its combined output and exit code.
func (s *stack) admin(t *testing.T, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, jobwireBin, args...)
	cmd.Env = append([]string{"HOME=/tmp"}, s.env("admin")...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("jobwire %v: %v\n%s", args, err, out)
	return "", -1
}

// connect opens a nats.go connection as user; async errors (permission violations) go to the channel.
func (s *stack) connect(t *testing.T, user string) (*nats.Conn, chan error) {
	t.Helper()
	u := s.users[user]
	errs := make(chan error, 256)
	nc, err := nats.Connect(s.natsURL, nats.UserInfo(u.Name, u.Password), nats.Name("deploytest-"+user),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func (s *stack) jetstream(t *testing.T, user string) jetstream.JetStream {
	t.Helper()
	nc, _ := s.connect(t, user)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// token returns a user token signed with the gateways' secret.
func token(t *testing.T, user string) string {
	t.Helper()
	tok, err := auth.NewSigner([]byte(jwtSecret), "").Sign(user, 2*time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// playlist is a CSV playlist for user with n distinct tracks, dups repeated entries and one invalid line.
type playlist struct {
	content string
	tracks  []string // "artist|title", lower case, as the library should hold them
	dups    int
}

func newPlaylist(user string, n, dups int) playlist {
	var b strings.Builder
	b.WriteString("artist,title,album\n")
	p := playlist{dups: dups}
	for i := range n {
		artist, title := fmt.Sprintf("Artist %s %d", user, i%7), fmt.Sprintf("Song %d", i)
		fmt.Fprintf(&b, "%s,%s,Album %s\n", artist, title, user)
		p.tracks = append(p.tracks, strings.ToLower(artist+"|"+title))
	}
	for i := range dups {
		fmt.Fprintf(&b, "%s,%s,\n", strings.ToUpper(fmt.Sprintf("artist %s %d", user, i%7)), fmt.Sprintf("  song %d ", i))
	}
	b.WriteString(",no artist,\n")
	p.content = b.String()
	slices.Sort(p.tracks)
	return p
}

func (p playlist) request(name string) api.SubmitRequest {
	in, _ := json.Marshal(api.PlaylistImport{Name: name, Format: api.FormatCSV, Content: p.content})
	return api.SubmitRequest{Type: api.JobTypePlaylistImport, Input: in}
}

// checkLibrary compares the caller's whole library with want ("artist|title", sorted): no track
// missing, none extra, no duplicates.
func checkLibrary(ctx context.Context, c *api.Client, want []string) error {
	var got []string
	keys := map[string]bool{}
	cursor := ""
	for {
		page, err := c.Library(ctx, cursor, 100)
		if err != nil {
			return fmt.Errorf("library: %w", err)
		}
		for _, tr := range page.Tracks {
			if keys[tr.Key] {
				return fmt.Errorf("track key %s listed twice", tr.Key)
			}
			keys[tr.Key] = true
			got = append(got, strings.ToLower(tr.Artist+"|"+tr.Title))
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("library has %d tracks, want %d:\n got  %v\n want %v", len(got), len(want), got, want)
	}
	return nil
}

// checkImportResult checks a completed import's result against its playlist.
func checkImportResult(st api.JobState, p playlist) error {
	if st.State != api.StateCompleted {
		return fmt.Errorf("job %s ended %s: %+v", st.ID, st.State, st.Error)
	}
	var res api.ImportResult
	if err := json.Unmarshal(st.Result, &res); err != nil {
		return fmt.Errorf("job %s result: %w", st.ID, err)
	}
	if res.Added+res.Existing != len(p.tracks) || res.Duplicates != p.dups || res.Invalid != 1 {
		return fmt.Errorf("job %s result %+v, want added+existing %d, duplicates %d, invalid 1", st.ID, res, len(p.tracks), p.dups)
	}
	return nil
}

// hasVar reports whether the binary reads the environment variable name (config.Vars).
func hasVar(name string) bool {
	return slices.ContainsFunc(config.Vars, func(v config.Var) bool { return v.Name == name })
}

// getStatus performs GET url with a bearer token and returns the status and body.
func getStatus(ctx context.Context, url, tok string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, nil
}
