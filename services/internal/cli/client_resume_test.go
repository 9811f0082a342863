package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
)

// cuttingProxy forwards to a gateway and cuts the first event stream abruptly (no clean end of the
// chunked body) after it has passed `after` state events. It records the Last-Event-ID of every
// stream request.
type cuttingProxy struct {
	target *url.URL
	after  int
	rest   *httputil.ReverseProxy

	mu      sync.Mutex
	streams []string // Last-Event-ID of each stream request, in order
	dead    bool     // after the cut, hang up on every stream request without an answer
}

func newCuttingProxy(t *testing.T, gateway string, after int) (*cuttingProxy, *httptest.Server) {
	t.Helper()
	u, err := url.Parse(gateway)
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{target: u, after: after, rest: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

func (p *cuttingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/events") {
		p.rest.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	p.streams = append(p.streams, r.Header.Get("Last-Event-ID"))
	first, dead := len(p.streams) == 1, p.dead && len(p.streams) > 1
	p.mu.Unlock()
	if dead {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}

	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target.String()+r.URL.RequestURI(), nil)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	flush := w.(http.Flusher).Flush
	flush()
	br := bufio.NewReader(resp.Body)
	states, inState := 0, false
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			_, _ = io.WriteString(w, line)
		}
		switch {
		case line == "event: state\n":
			inState = true
		case line == "\n":
			flush()
			if inState {
				states++
			}
			inState = false
			if first && states == p.after {
				panic(http.ErrAbortHandler) // drop the connection mid-stream
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *cuttingProxy) lastEventIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.streams...)
}

func TestWatchResumesAfterTheStreamDrops(t *testing.T) {
	s := setup(t, 10*time.Millisecond, "alice")
	for _, mode := range []string{"plain", "json"} {
		t.Run(mode, func(t *testing.T) {
			id := submitID(t, "long.m3u", m3u(120, 0, 0))
			proxy, srv := newCuttingProxy(t, s.URL, 3)
			args := []string{"watch", id, "--url", srv.URL}
			if mode == "json" {
				args = append(args, "--json")
			}
			r := runCLI(t, "", args...).wantCode(t, 0)

			ids := proxy.lastEventIDs()
			if len(ids) < 2 || ids[0] != "" || ids[1] == "" {
				t.Fatalf("want a first stream and a resume with Last-Event-ID, got %q", ids)
			}
			if !strings.Contains(r.errOut, "reconnecting…") {
				t.Fatalf("no reconnect note on stderr: %q", r.errOut)
			}
			ls := lines(r.out)
			if mode == "json" {
				var prev uint64
				var st api.JobState
				for _, l := range ls {
					if err := json.Unmarshal([]byte(l), &st); err != nil {
						t.Fatal(err)
					}
					if st.Revision <= prev {
						t.Fatalf("revision %d printed after %d", st.Revision, prev)
					}
					prev = st.Revision
				}
				if st.State != api.StateCompleted || st.Progress.Done != 120 {
					t.Fatalf("last state %s %+v", st.State, st.Progress)
				}
				return
			}
			seen := map[string]bool{}
			for _, l := range ls[:len(ls)-1] {
				if seen[l] {
					t.Fatalf("state line %q printed twice:\n%s", l, r.out)
				}
				seen[l] = true
			}
			if got := ls[len(ls)-2]; got != "100%  120/120  completed" {
				t.Fatalf("final state line %q:\n%s", got, r.out)
			}
			if !strings.HasPrefix(ls[len(ls)-1], "completed in ") || !strings.Contains(ls[len(ls)-1], "added 120") {
				t.Fatalf("summary %q", ls[len(ls)-1])
			}
			if bytes.Count([]byte(r.out), []byte("active")) < 3 {
				t.Fatalf("want progress from both connections:\n%s", r.out)
			}
		})
	}
}

func TestWatchGivesUpOnAGatewayThatStaysAway(t *testing.T) {
	s := setup(t, 10*time.Millisecond, "alice")
	id := submitID(t, "long.m3u", m3u(300, 0, 0))
	proxy, srv := newCuttingProxy(t, s.URL, 2)
	proxy.dead = true
	start := time.Now()
	r := runCLI(t, "", "watch", id, "--url", srv.URL, "--reconnect-timeout", "700ms").wantCode(t, 2)
	if !strings.Contains(r.err.Error(), "gave up reconnecting after 700ms") || !strings.Contains(r.err.Error(), "cannot reach the jobwire gateway at "+srv.URL) {
		t.Fatalf("error %q", r.err)
	}
	if n := strings.Count(r.errOut, "reconnecting…"); n != 1 {
		t.Fatalf("want one reconnect note per outage, got %d: %q", n, r.errOut)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %s", d)
	}
}
