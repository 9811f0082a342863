package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// chromiumPath is Debian's Chromium (apt package chromium).
const chromiumPath = "/usr/bin/chromium"

// requireBrowser skips the test when there is no browser, or in -short mode, unless
// JOBWIRE_REQUIRE_BROWSER=1 (scripts/test, CI): then a missing browser fails the test.
func requireBrowser(t *testing.T) {
	t.Helper()
	required := os.Getenv("JOBWIRE_REQUIRE_BROWSER") == "1"
	if _, err := os.Stat(chromiumPath); err != nil {
		if required {
			t.Fatalf("JOBWIRE_REQUIRE_BROWSER=1 but there is no browser at %s (apt-get install -y chromium): %v", chromiumPath, err)
		}
		t.Skipf("skipping the browser test: no browser at %s (apt-get install -y chromium; JOBWIRE_REQUIRE_BROWSER=1 makes this a failure)", chromiumPath)
	}
	if testing.Short() && !required {
		t.Skip("skipping the browser test in -short mode")
	}
}

// tab is one browser tab and the test it belongs to.
type tab struct {
	t        *testing.T
	ctx      context.Context
	name     string
	mu       sync.Mutex
	console  []chromedp.ConsoleMessage
	requests []string // the URLs the tab requested
}

// newBrowser starts a headless Chromium with a fresh profile and returns its first tab. The browser
// is closed when the test ends; when the test failed, a screenshot of the tab is kept first.
func newBrowser(t *testing.T) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit, before t.TempDir is removed
	})
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	tb := &tab{t: t, ctx: ctx, name: "tab 1"}
	tb.watch()
	t.Cleanup(func() {
		if t.Failed() {
			tb.keepScreenshot("web-failure-" + strings.ReplaceAll(t.Name(), "/", "_") + ".png")
			tb.logState()
		}
	})
	return tb
}

// newTab opens another tab in the same browser (same profile, so the same cookie).
func (tb *tab) newTab(name string) (*tab, context.CancelFunc) {
	tb.t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx)
	if err := chromedp.Do(ctx); err != nil {
		tb.t.Fatalf("open %s: %v", name, err)
	}
	other := &tab{t: tb.t, ctx: ctx, name: name}
	other.watch()
	return other, cancel
}

// watch records the tab's console messages, exceptions and browser log entries (CSP violations
// show up there), and the URLs it requests.
func (tb *tab) watch() {
	msgs := chromedp.Console(tb.ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	reqs := chromedp.Events(tb.ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range reqs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.requests = append(tb.requests, ev.Request.URL)
			tb.mu.Unlock()
		}
	}()
}

// streamURLs returns the URLs of the EventSource requests so far (path and query).
func (tb *tab) streamURLs() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, u := range tb.requests {
		if i := strings.Index(u, "/v1/events"); i >= 0 {
			out = append(out, u[i:])
		}
	}
	return out
}

// checkRequests fails the test if the tab ever put the token in a URL.
func (tb *tab) checkRequests(token string) {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, u := range tb.requests {
		if strings.Contains(u, token) || strings.Contains(u, "access_token") {
			tb.t.Errorf("%s: a request carries the token in its URL: %.120s", tb.name, u)
		}
	}
}

// checkConsole fails the test on an uncaught exception, a CSP violation or a console.error of the
// page; allowed says which failed requests (by a substring of the message) are expected.
func (tb *tab) checkConsole(allowed ...string) {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
next:
	for _, m := range tb.console {
		bad := m.IsException() || m.Source == "security" || m.Type == chromedp.ConsoleError
		if !bad {
			continue
		}
		for _, a := range allowed {
			if strings.Contains(m.Text, a) {
				continue next
			}
		}
		tb.t.Errorf("%s: console %s (%s) %s at %s:%d", tb.name, m.Type, m.Source, m.Text, m.URL, m.Line+1)
	}
}

// cookie returns the browser's cookie called name for url, or nil. It reads the browser's cookie jar
// (Network.getCookies), which sees HttpOnly cookies that the page's scripts cannot.
func (tb *tab) cookie(url, name string) *network.Cookie {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		tb.t.Fatalf("%s: read the cookies: %v", tb.name, err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// checkSessionCookie checks that the browser holds token in the jobwire_token cookie as the gateway
// sets it (HttpOnly, SameSite=Strict, Path=/, expiring with the token), and that the page's scripts
// cannot see it.
func (tb *tab) checkSessionCookie(url, token string) {
	tb.t.Helper()
	c := tb.cookie(url, "jobwire_token")
	if c == nil {
		tb.t.Errorf("%s: no jobwire_token cookie", tb.name)
		return
	}
	if c.Value != token {
		tb.t.Errorf("%s: the cookie holds %.20q..., not the token", tb.name, c.Value)
	}
	if !c.HTTPOnly {
		tb.t.Errorf("%s: the jobwire_token cookie is not HttpOnly", tb.name)
	}
	if c.SameSite != network.CookieSameSiteStrict || c.Path != "/" {
		tb.t.Errorf("%s: cookie SameSite=%q Path=%q, want Strict and /", tb.name, c.SameSite, c.Path)
	}
	if left := time.Until(time.Unix(int64(c.Expires), 0)); c.Session || left < 50*time.Minute || left > 61*time.Minute {
		tb.t.Errorf("%s: the cookie expires in %v (session %v), want with the one-hour token", tb.name, left.Round(time.Second), c.Session)
	}
	if js := evalJS[string](tb, `document.cookie`); strings.Contains(js, "jobwire_token") || strings.Contains(js, token) {
		tb.t.Errorf("%s: document.cookie shows the token: %.40q", tb.name, js)
	}
}

// do runs actions with a deadline.
func (tb *tab) do(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, what, err)
	}
}

// waitJS waits until the JavaScript expression is truthy, checking every 20 ms.
func (tb *tab) waitJS(what string, d time.Duration, expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, d+2*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err != nil {
		tb.t.Fatalf("%s: waiting for %s (%s): %v", tb.name, what, expr, err)
	}
}

func evalJS[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("%s: evaluate %s: %v", tb.name, expr, err)
	}
	return v
}

// paste puts text into the element as a paste would: one insertion, with its input event.
func (tb *tab) paste(sel, text string) {
	tb.t.Helper()
	tb.do("paste into "+sel, 10*time.Second,
		chromedp.Focus(chromedp.CSS(sel)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
			return err
		}))
}

func (tb *tab) screenshot() []byte {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot: %v", err)
	}
	return png
}

func (tb *tab) keepScreenshot(name string) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("no failure screenshot: %v", err)
		return
	}
	if p, err := writeArtifact(name, png); err == nil {
		tb.t.Logf("failure screenshot: %s", p)
	}
}

func (tb *tab) logState() {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href,
		status: document.querySelector('#conn-status').textContent,
		jobs: [...document.querySelectorAll('.job')].map(j => j.dataset.id + ' ' + j.dataset.state + ' ' +
			j.querySelector('.bar').getAttribute('aria-valuenow') + '% ' + j.querySelector('.message').textContent)})`))
	if err == nil {
		tb.t.Logf("%s at failure: %s", tb.name, state)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.console {
		tb.t.Logf("%s console %s (%s): %s", tb.name, m.Type, m.Source, m.Text)
	}
}

// waitOpenStreams waits until the gateway holds want SSE streams.
func waitOpenStreams(t *testing.T, s *stacktest.Stack, want int) {
	t.Helper()
	streamstest.WaitFor(t, 8*time.Second, func() error {
		if got := s.Gateway.Pool().Open(); got != want {
			return fmt.Errorf("%d open SSE streams, want %d", got, want)
		}
		return nil
	})
}

// artifactsDir is $JOBWIRE_ARTIFACTS_DIR, or <repo>/artifacts (git-ignored), created if missing.
func artifactsDir() (string, error) {
	dir := os.Getenv("JOBWIRE_ARTIFACTS_DIR")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "artifacts")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// repoRoot is the directory holding go.work, above the test's working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory")
		}
		dir = parent
	}
}

func writeArtifact(name string, data []byte) (string, error) {
	dir, err := artifactsDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, data, 0o644)
}

// Playlists.

type track struct {
	artist, title, album string
	sec                  int
}

var (
	bands = []string{"The Night Drivers", "Harbor Lights", "Velvet Static", "Northern Echo", "Paper Satellites",
		"Glass Canyon", "Mira Sol", "The Long Weekends", "Copper Coast", "Low Orbit"}
	words = []string{"Highway", "Morning", "Golden", "Neon", "Quiet", "River", "Summer", "Electric", "Paper", "Distant"}
	nouns = []string{"Lights", "Hearts", "Signals", "Roads", "Waves", "Skies", "Letters", "Engines", "Gardens", "Cities"}
)

// tracks returns n distinct tracks; series keeps the tracks of different playlists apart.
func tracks(series string, n int) []track {
	out := make([]track, n)
	for i := range out {
		out[i] = track{
			artist: bands[i%len(bands)],
			title:  fmt.Sprintf("%s %s (%s %d)", words[(i/len(bands))%len(words)], nouns[(i*7)%len(nouns)], series, i+1),
			album:  series,
			sec:    150 + (i*37)%150,
		}
	}
	return out
}

func csvPlaylist(ts []track) string {
	var b strings.Builder
	b.WriteString("artist,title,album,duration\n")
	for _, tr := range ts {
		fmt.Fprintf(&b, "%s,%s,%s,%d:%02d\n", tr.artist, tr.title, tr.album, tr.sec/60, tr.sec%60)
	}
	return b.String()
}

func m3uPlaylist(ts []track) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n")
	for i, tr := range ts {
		fmt.Fprintf(&b, "#EXTINF:%d,%s - %s\n/music/%03d.mp3\n", tr.sec, tr.artist, tr.title, i)
	}
	return b.String()
}

func jsonPlaylist(ts []track) string {
	type entry struct {
		Artist      string `json:"artist"`
		Title       string `json:"title"`
		Album       string `json:"album"`
		DurationSec int    `json:"durationSec"`
	}
	es := make([]entry, len(ts))
	for i, tr := range ts {
		es[i] = entry{tr.artist, tr.title, tr.album, tr.sec}
	}
	data, _ := json.MarshalIndent(es, "", "  ")
	return string(data)
}

// newestOtherJob waits for a job in the list that is not one of known, and returns its id.
func (tb *tab) newestOtherJob(known ...string) string {
	tb.t.Helper()
	list, _ := json.Marshal(append([]string{}, known...))
	expr := fmt.Sprintf(`(() => { const known = %s;
		const j = [...document.querySelectorAll('#jobs .job')].find(j => !known.includes(j.dataset.id));
		return j ? j.dataset.id : ''; })()`, list)
	tb.waitJS("a new job in the list", 10*time.Second, expr)
	return evalJS[string](tb, expr)
}

func jobSel(id string) string { return fmt.Sprintf(`.job[data-id="%s"]`, id) }

func (tb *tab) waitJobState(id, state string, d time.Duration) {
	tb.t.Helper()
	tb.waitJS("job "+id+" "+state, d, fmt.Sprintf(`document.querySelector('%s[data-state="%s"]') !== null`, jobSel(id), state))
}

func (tb *tab) percent(id string) int {
	return evalJS[int](tb, fmt.Sprintf(`Number(document.querySelector('%s .bar').getAttribute('aria-valuenow'))`, jobSel(id)))
}

func (tb *tab) count(id, name string) int {
	return evalJS[int](tb, fmt.Sprintf(`(() => { const c = document.querySelector('%s [data-count="%s"]');
		return c ? Number(c.dataset.value) : -1; })()`, jobSel(id), name))
}
