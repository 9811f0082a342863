package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/sse"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// The browser tests drive the real page in Debian's Chromium (chromedp) against a whole jobwire
// started in-process (stacktest); their helpers are in browser_helpers_test.go. Without
// /usr/bin/chromium they skip, unless JOBWIRE_REQUIRE_BROWSER=1.

// TestBrowserImports runs the page through what a user does: sign in from the dev link, import,
// watch progress, cancel, reload mid-import, read history and library, open a second tab.
func TestBrowserImports(t *testing.T) {
	requireBrowser(t)
	began := time.Now()
	s := stacktest.Start(t, stacktest.Options{TrackDelay: 30 * time.Millisecond})
	token := s.Token(t, "alice")
	client := s.Client(t, "alice")
	tb := newBrowser(t)
	step := func(name string) { t.Logf("%6.2fs %s", time.Since(began).Seconds(), name) }

	step("sign in from the dev link")
	tb.do("open the page", 15*time.Second, chromedp.Navigate(s.URL+"/#token="+token))
	tb.waitJS("the live stream", 10*time.Second, `document.querySelector('#conn-status').dataset.state === 'live'`)
	if h := evalJS[string](tb, `location.href`); strings.Contains(h, "#") || strings.Contains(h, token) {
		t.Errorf("the token is still in the address bar: %s", h)
	}
	tb.checkSessionCookie(s.URL, token)
	if u := evalJS[string](tb, `document.querySelector('#user').textContent`); u != "alice" {
		t.Errorf("user shown as %q", u)
	}
	if evalJS[bool](tb, fmt.Sprintf(`JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)]).includes(%q)`, token)) {
		t.Error("the page keeps the token in web storage")
	}
	waitOpenStreams(t, s, 1)
	if urls := tb.streamURLs(); len(urls) != 1 || urls[0] != "/v1/events" {
		t.Errorf("a fresh tab opened the streams %q, want one plain /v1/events", urls)
	}

	step("import a 60-track CSV (double click)")
	tb.do("fill the form", 10*time.Second, chromedp.SendKeys(chromedp.ID("name"), "Road trip"))
	tb.paste("#playlist", csvPlaylist(tracks("Road trip", 60)))
	tb.waitJS("CSV detected", 5*time.Second, `document.querySelector('#format-hint').dataset.format === 'csv'`)
	tb.do("start the import", 10*time.Second, chromedp.DoubleClick(chromedp.ID("start")))
	first := tb.newestOtherJob()
	tb.waitJS("live progress between 0 and 100 %", 10*time.Second, fmt.Sprintf(`(() => {
		const v = Number(document.querySelector('%s .bar').getAttribute('aria-valuenow'));
		return v > 0 && v < 100; })()`, jobSel(first)))
	tb.waitJobState(first, "completed", 20*time.Second)
	if p := tb.percent(first); p != 100 {
		t.Errorf("completed job's bar at %d %%", p)
	}
	if n := tb.count(first, "added"); n != 60 {
		t.Errorf("added count shown: %d, want 60", n)
	}
	if st := evalJS[string](tb, fmt.Sprintf(`document.querySelector('%s .state').textContent`, jobSel(first))); st != "completed" {
		t.Errorf("state shown: %q", st)
	}
	if list, err := client.List(tb.ctx, "", "", 10); err != nil || len(list.Jobs) != 1 {
		t.Errorf("after a double click the user has %d jobs (err %v), want 1", len(list.Jobs), err)
	}

	step("import a 400-track M3U file and cancel it")
	file := filepath.Join(t.TempDir(), "Long mix.m3u8")
	if err := os.WriteFile(file, []byte(m3uPlaylist(tracks("Long mix", 400))), 0o644); err != nil {
		t.Fatal(err)
	}
	tb.do("pick the file", 10*time.Second, chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}))
	tb.waitJS("M3U from the file name", 5*time.Second, `document.querySelector('#format-hint').dataset.format === 'm3u' &&
		document.querySelector('#name').value === 'Long mix'`)
	tb.do("start the import", 10*time.Second, chromedp.Click(chromedp.ID("start")))
	second := tb.newestOtherJob(first)
	tb.waitJS("the second import running", 10*time.Second, fmt.Sprintf(`(() => {
		const j = document.querySelector('%s');
		return j.dataset.state === 'active' && Number(j.querySelector('.bar').getAttribute('aria-valuenow')) > 0; })()`, jobSel(second)))
	tb.do("cancel", 10*time.Second, chromedp.Click(chromedp.CSS(jobSel(second)+" button.cancel")))
	tb.waitJobState(second, "cancelled", 5*time.Second)
	if added := tb.count(second, "added"); added <= 0 || added >= 400 {
		t.Errorf("cancelled import shows %d added, want a partial count", added)
	}
	if evalJS[bool](tb, fmt.Sprintf(`!document.querySelector('%s button.cancel').hidden`, jobSel(second))) {
		t.Error("the cancelled job still offers Cancel")
	}

	step("import 100 tracks as JSON (format chosen), reload mid-import")
	ts := tracks("Evening", 100)
	tb.do("fill the form", 10*time.Second,
		chromedp.SendKeys(chromedp.ID("name"), "Evening"),
		chromedp.SetValue(chromedp.ID("format"), "json"))
	tb.paste("#playlist", jsonPlaylist(append(ts, ts[3], ts[7]))) // two duplicates
	tb.do("start the import", 10*time.Second, chromedp.Click(chromedp.ID("start")))
	third := tb.newestOtherJob(first, second)
	tb.waitJS("the third import under way", 10*time.Second, fmt.Sprintf(`(() => {
		const v = Number(document.querySelector('%s .bar').getAttribute('aria-valuenow'));
		return v >= 5 && v < 60; })()`, jobSel(third)))
	tb.do("reload", 15*time.Second, chromedp.Reload())
	tb.waitJS("live again after the reload", 10*time.Second, `document.querySelector('#conn-status').dataset.state === 'live'`)
	if p := tb.percent(third); p >= 100 {
		t.Logf("the third import had already finished when the page came back (%d %%)", p)
	}
	tb.waitJobState(third, "completed", 20*time.Second)
	if n := tb.count(third, "added"); n != 100 {
		t.Errorf("added count after the reload: %d, want 100", n)
	}
	if n := tb.count(third, "duplicates"); n != 2 {
		t.Errorf("duplicates count: %d, want 2", n)
	}
	if last := evalJS[string](tb, `sessionStorage.getItem('jobwire.lastEventId') || ''`); last == "" {
		t.Error("the page did not keep its last event id for the next reload")
	}
	waitOpenStreams(t, s, 1) // the reloaded page's stream replaced the old one
	if urls := tb.streamURLs(); !strings.Contains(urls[len(urls)-1], "?lastEventId=") {
		t.Errorf("after the reload the page opened %q, want a resume with ?lastEventId=", urls[len(urls)-1])
	}
	if urls := tb.streamURLs(); len(urls) != 2 {
		t.Errorf("streams opened so far: %q, want 2 (one per page load)", urls)
	}

	step("history")
	tb.do("open the history", 10*time.Second, chromedp.Click(chromedp.CSS(jobSel(first)+" button.history")))
	tb.waitJS("history rows", 10*time.Second, `document.querySelector('#history-dialog').open &&
		document.querySelector('#history tr[data-type="job.submitted"]') !== null &&
		document.querySelector('#history tr[data-type="job.completed"]') !== null`)
	tb.do("close the history", 10*time.Second, chromedp.Click(chromedp.ID("history-close")))
	tb.waitJS("the dialog closed", 5*time.Second, `!document.querySelector('#history-dialog').open`)

	step("library")
	var total int
	for cursor := ""; ; {
		page, err := client.Library(tb.ctx, cursor, 500)
		if err != nil {
			t.Fatal(err)
		}
		total += len(page.Tracks)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if total <= 160 {
		t.Fatalf("library holds %d tracks, want 160 plus the cancelled import's", total)
	}
	tb.do("open the library", 10*time.Second, chromedp.Click(chromedp.ID("tab-library")))
	tb.waitJS("the first library page", 10*time.Second, `document.querySelectorAll('#library tbody tr').length === 100 &&
		!document.querySelector('#library-more').hidden`)
	if first := evalJS[string](tb, `document.querySelector('#library tbody tr td').textContent`); first == "" {
		t.Error("library rows have no artist")
	}
	for range 5 {
		if evalJS[bool](tb, `document.querySelector('#library-more').hidden`) {
			break
		}
		n := evalJS[int](tb, `document.querySelectorAll('#library tbody tr').length`)
		tb.do("load more", 10*time.Second, chromedp.Click(chromedp.ID("library-more")))
		tb.waitJS("more tracks", 10*time.Second, fmt.Sprintf(`document.querySelectorAll('#library tbody tr').length > %d`, n))
	}
	if n := evalJS[int](tb, `document.querySelectorAll('#library tbody tr').length`); n != total {
		t.Errorf("library view shows %d tracks, the API %d", n, total)
	}
	tb.do("back to the jobs", 10*time.Second, chromedp.Click(chromedp.ID("tab-jobs")))

	step("one stream per tab")
	waitOpenStreams(t, s, 1)
	tab2, closeTab2 := tb.newTab("tab 2")
	tab2.do("open the page", 15*time.Second, chromedp.Navigate(s.URL))
	tab2.waitJS("tab 2 live with all jobs", 10*time.Second, `document.querySelector('#conn-status').dataset.state === 'live' &&
		document.querySelectorAll('#jobs .job').length === 3 && document.querySelector('#user').textContent === 'alice'`)
	waitOpenStreams(t, s, 2)
	tab2.checkConsole()
	closeTab2()
	waitOpenStreams(t, s, 1)

	step("screenshot, with an import under way")
	tb.do("fill the form", 10*time.Second, chromedp.SendKeys(chromedp.ID("name"), "Weekend"))
	tb.paste("#playlist", csvPlaylist(tracks("Weekend", 100)))
	tb.do("start the import", 10*time.Second, chromedp.Click(chromedp.ID("start")))
	fourth := tb.newestOtherJob(first, second, third)
	tb.waitJS("the fourth import half way", 10*time.Second, fmt.Sprintf(`(() => {
		const j = document.querySelector('%s');
		return j.dataset.state === 'active' && Number(j.querySelector('.bar').getAttribute('aria-valuenow')) >= 40; })()`, jobSel(fourth)))
	png := tb.screenshot()
	p, err := writeArtifact("web-page.png", png)
	if err != nil {
		t.Errorf("keep the screenshot: %v", err)
	} else {
		t.Logf("screenshot: %s (%d KiB)", p, len(png)/1024)
	}
	if os.Getenv("JOBWIRE_UPDATE_SCREENSHOT") == "1" {
		root, err := repoRoot()
		if err == nil {
			err = os.MkdirAll(filepath.Join(root, "docs"), 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(root, "docs", "screenshot.png"), png, 0o644)
		}
		if err != nil {
			t.Errorf("update docs/screenshot.png: %v", err)
		}
	}
	tb.checkConsole()
	tb.checkRequests(token)
	step("done")
}

// TestBrowserSignInAndStreamLifecycle signs in through the paste box, then checks that the page rides
// over the stream's end of life: "expired" (resume with ?lastEventId=) and "reset" (start over from
// the snapshot).
func TestBrowserSignInAndStreamLifecycle(t *testing.T) {
	requireBrowser(t)
	s := stacktest.Start(t, stacktest.Options{TrackDelay: 10 * time.Millisecond, Gateway: func(c *gateway.Config) {
		c.SSE = sse.Config{Heartbeat: time.Second, MaxDuration: 3 * time.Second}
	}})
	tb := newBrowser(t)

	tb.do("open the page", 15*time.Second, chromedp.Navigate(s.URL))
	tb.waitJS("the sign-in box", 10*time.Second, `!document.querySelector('#signin').hidden &&
		document.querySelector('#app').hidden && document.querySelector('#conn-status').dataset.state === 'signed-out'`)
	tb.do("paste a broken token", 10*time.Second,
		chromedp.SendKeys(chromedp.ID("token-input"), "not-a-token"),
		chromedp.Click(chromedp.ID("signin-submit")))
	tb.waitJS("a refusal", 5*time.Second, `document.querySelector('#signin-msg').textContent !== ''`)
	// The gateway verifies the token: a stream token cannot start a session (403), a token of another
	// issuer is refused (401). The page says so and stays signed out.
	streamToken, err := s.Signer.Sign("bob", time.Hour, auth.ScopeStream, "")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := auth.NewSigner([]byte("another-secret-another-secret-0123456789"), "").Sign("bob", time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, token, msg string }{
		{"a stream token", streamToken, "stream token"},
		{"a token of another issuer", foreign, "not valid or has expired"},
	} {
		tb.paste("#token-input", tc.token)
		tb.do("sign in with "+tc.name, 10*time.Second, chromedp.Click(chromedp.ID("signin-submit")))
		tb.waitJS("the refusal of "+tc.name, 5*time.Second, fmt.Sprintf(`document.querySelector('#signin-msg').textContent.includes(%q) &&
			document.querySelector('#app').hidden && document.querySelector('#conn-status').dataset.state === 'signed-out'`, tc.msg))
		if c := tb.cookie(s.URL, "jobwire_token"); c != nil {
			t.Errorf("after %s the browser holds a cookie", tc.name)
		}
	}
	bob := s.Token(t, "bob")
	tb.paste("#token-input", s.URL+"/#token="+bob)
	tb.do("sign in", 10*time.Second, chromedp.Click(chromedp.ID("signin-submit")))
	tb.waitJS("live", 10*time.Second, `!document.querySelector('#app').hidden &&
		document.querySelector('#conn-status').dataset.state === 'live'`)
	tb.checkSessionCookie(s.URL, bob)

	// A job submitted elsewhere (the CLI) shows up live.
	client := s.Client(t, "bob")
	submit := func(series string, n int, extra string) string {
		t.Helper()
		in, _ := json.Marshal(api.PlaylistImport{Name: series, Format: api.FormatCSV, Content: csvPlaylist(tracks(series, n)) + extra})
		st, _, err := client.Submit(tb.ctx, api.SubmitRequest{Type: api.JobTypePlaylistImport, Input: in}, "")
		if err != nil {
			t.Fatal(err)
		}
		return st.ID
	}
	first := submit("From the CLI", 20, "a row with too few fields\n")
	tb.waitJobState(first, "completed", 15*time.Second)
	if added, invalid := tb.count(first, "added"), tb.count(first, "invalid"); added != 20 || invalid != 1 {
		t.Errorf("counts shown: %d added, %d invalid; want 20 and 1", added, invalid)
	}
	tb.waitJS("the skipped line listed", 5*time.Second, fmt.Sprintf(`(() => {
		const d = document.querySelector('%s details.invalid');
		return !d.hidden && d.querySelector('summary').textContent.startsWith('1 line skipped') &&
			d.querySelector('li').textContent.includes('too few fields'); })()`, jobSel(first)))

	// A playlist the page cannot place asks for a format; one the worker cannot read fails, and the
	// page shows why.
	tb.paste("#playlist", "this is not a playlist")
	tb.do("start", 10*time.Second, chromedp.Click(chromedp.ID("start")))
	tb.waitJS("a request for the format", 5*time.Second, `document.querySelector('#form-msg').textContent.includes('format')`)
	tb.do("choose JSON and start", 10*time.Second,
		chromedp.SetValue(chromedp.ID("format"), "json"),
		chromedp.Click(chromedp.ID("start")))
	failed := tb.newestOtherJob(first)
	tb.waitJobState(failed, "failed", 15*time.Second)
	tb.waitJS("the failure's reason", 5*time.Second, fmt.Sprintf(`(() => {
		const e = document.querySelector('%s .error');
		return !e.hidden && e.textContent.length > 0; })()`, jobSel(failed)))
	if evalJS[bool](tb, fmt.Sprintf(`!document.querySelector('%s button.cancel').hidden`, jobSel(failed))) {
		t.Error("a failed job offers Cancel")
	}

	// A stream lives at most 3 s here: the page shows it, resumes from its last event and is live
	// again, and later changes still arrive.
	tb.waitJS("the stream expiring", 6*time.Second, `document.querySelector('#conn-status').dataset.state === 'expired'`)
	tb.waitJS("live again", 6*time.Second, `document.querySelector('#conn-status').dataset.state === 'live'`)
	urls := tb.streamURLs()
	if len(urls) < 2 || !strings.HasPrefix(urls[len(urls)-1], "/v1/events?lastEventId=") {
		t.Errorf("streams after the expiry: %q, want a resume with ?lastEventId=", urls)
	}
	second := submit("After the expiry", 10, "")
	tb.waitJobState(second, "completed", 15*time.Second)
	if n := evalJS[int](tb, `document.querySelectorAll('#jobs .job').length`); n != 3 {
		t.Errorf("%d jobs listed, want 3", n)
	}

	// A position the server cannot resume from (here: one from the future) makes it send "reset" and
	// a fresh snapshot: the page starts over from that and loses nothing.
	tb.do("reload with an unknown position", 15*time.Second,
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('jobwire.lastEventId', '999999999')`),
		chromedp.Reload())
	tb.waitJS("the reset shown", 5*time.Second, `document.querySelector('#conn-status').dataset.state === 'reset'`)
	tb.waitJS("all jobs back", 5*time.Second, `document.querySelectorAll('#jobs .job[data-state="completed"]').length === 2 &&
		document.querySelectorAll('#jobs .job[data-state="failed"]').length === 1`)
	if last := evalJS[string](tb, `sessionStorage.getItem('jobwire.lastEventId')`); last == "999999999" {
		t.Error("the page kept the position the server could not resume from")
	}
	waitOpenStreams(t, s, 1)
	// Signed out, the page asked the server (401) and the gateway refused the bad tokens (401, 403).
	tb.checkConsole("status of 401", "status of 403")
	tb.checkRequests(bob)
}

// TestBrowserSessionAcrossTabs signs in and out in one tab and checks that the other tab follows: the
// cookie is HttpOnly, so each tab learns where it stands from the server, after a BroadcastChannel
// message. A bad link keeps a good session, and a cookie gone (expired) signs every tab out.
func TestBrowserSessionAcrossTabs(t *testing.T) {
	requireBrowser(t)
	began := time.Now()
	step := func(name string) { t.Logf("%6.2fs %s", time.Since(began).Seconds(), name) }
	// Frequent heartbeats: the gateway notices a closed stream at its next writes.
	s := stacktest.Start(t, stacktest.Options{Gateway: func(c *gateway.Config) { c.SSE = sse.Config{Heartbeat: 250 * time.Millisecond} }})
	alice, bob := s.Token(t, "alice"), s.Token(t, "bob")
	in, _ := json.Marshal(api.PlaylistImport{Name: "Alice's", Format: api.FormatCSV, Content: csvPlaylist(tracks("Alice's", 3))})
	if _, _, err := s.Client(t, "alice").Submit(context.Background(), api.SubmitRequest{Type: api.JobTypePlaylistImport, Input: in}, ""); err != nil {
		t.Fatal(err)
	}
	signedIn := func(user string, jobs int) string {
		return fmt.Sprintf(`document.querySelector('#conn-status').dataset.state === 'live' && !document.querySelector('#app').hidden &&
			document.querySelector('#user').textContent === %q && document.querySelectorAll('#jobs .job').length === %d`, user, jobs)
	}
	signedOut := func(msg string) string {
		return fmt.Sprintf(`!document.querySelector('#signin').hidden && document.querySelector('#app').hidden &&
			document.querySelector('#conn-status').dataset.state === 'signed-out' && document.querySelector('#signin-msg').textContent.includes(%q)`, msg)
	}

	step("sign in from the link, open a second tab")
	tb := newBrowser(t)
	tb.do("open the page", 15*time.Second, chromedp.Navigate(s.URL+"/#token="+alice))
	tb.waitJS("tab 1 signed in as alice", 10*time.Second, signedIn("alice", 1))
	tab2, closeTab2 := tb.newTab("tab 2")
	defer closeTab2()
	tab2.do("open the page", 15*time.Second, chromedp.Navigate(s.URL))
	tab2.waitJS("tab 2 signed in as alice", 10*time.Second, signedIn("alice", 1))
	waitOpenStreams(t, s, 2)

	step("a bad link")
	// A link with a refused token does not end the session the cookie holds.
	foreign, err := auth.NewSigner([]byte("another-secret-another-secret-0123456789"), "").Sign("mallory", time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// (A query makes it a new document: a new fragment alone would not load the page again.)
	tab2.do("open a bad link", 15*time.Second, chromedp.Navigate(s.URL+"/?link#token="+foreign))
	tab2.waitJS("still signed in as alice, with a note", 10*time.Second, signedIn("alice", 1)+
		` && document.querySelector('#jobs-msg').textContent.includes('still signed in')`)
	tab2.checkSessionCookie(s.URL, alice)
	waitOpenStreams(t, s, 2)

	step("sign out in tab 1")
	// Signing out in tab 1 clears the cookie on the server's word and signs tab 2 out too.
	tb.do("sign out", 10*time.Second, chromedp.Click(chromedp.ID("signout")))
	tb.waitJS("tab 1 signed out", 5*time.Second, signedOut(""))
	tab2.waitJS("tab 2 signed out", 5*time.Second, signedOut("another tab"))
	if c := tb.cookie(s.URL, "jobwire_token"); c != nil {
		t.Errorf("after signing out the browser still holds the cookie (expires %v)", c.Expires)
	}
	if u := evalJS[string](tb, `localStorage.getItem('jobwire.user') || ''`); u != "" {
		t.Errorf("after signing out the page still remembers the user %q", u)
	}
	waitOpenStreams(t, s, 0)

	step("sign in as bob in tab 2")
	// Signing in as bob in tab 2 brings tab 1 along, with bob's (empty) list.
	tab2.paste("#token-input", bob)
	tab2.do("sign in as bob", 10*time.Second, chromedp.Click(chromedp.ID("signin-submit")))
	tab2.waitJS("tab 2 signed in as bob", 10*time.Second, signedIn("bob", 0))
	tb.waitJS("tab 1 signed in as bob", 10*time.Second, signedIn("bob", 0))
	tb.checkSessionCookie(s.URL, bob)
	waitOpenStreams(t, s, 2)

	step("alice's link in tab 1")
	// A link for alice in tab 1 switches both tabs to alice: tab 2 never shows bob's page with
	// alice's cookie.
	tb.do("open alice's link", 15*time.Second, chromedp.Navigate(s.URL+"/?link#token="+alice))
	tb.waitJS("tab 1 signed in as alice", 10*time.Second, signedIn("alice", 1))
	tab2.waitJS("tab 2 follows to alice", 10*time.Second, signedIn("alice", 1))
	waitOpenStreams(t, s, 2)

	step("the cookie expires")
	// The cookie goes away behind the page's back (it expired): the next request is a 401, the tab
	// shows the sign-in box and the other tab, told, finds the same.
	tb.do("drop the cookie", 10*time.Second, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: "jobwire_token", URL: s.URL})
		return err
	}))
	tb.do("refresh the library", 10*time.Second, chromedp.Click(chromedp.ID("tab-library")))
	tb.waitJS("tab 1 asked to sign in again", 5*time.Second, signedOut("refused your token"))
	tab2.waitJS("tab 2 asked to sign in again", 5*time.Second, signedOut("refused your token"))
	waitOpenStreams(t, s, 0)

	step("done")
	for _, tab := range []*tab{tb, tab2} {
		tab.checkConsole("status of 401")
		tab.checkRequests(alice)
		tab.checkRequests(bob)
		tab.checkRequests(foreign)
	}
}

// TestBrowserStreamRefused opens a second tab past the user's stream limit: it must say so, retry
// with backoff (not in a loop) and go live once the first tab closes.
func TestBrowserStreamRefused(t *testing.T) {
	requireBrowser(t)
	s := stacktest.Start(t, stacktest.Options{Gateway: func(c *gateway.Config) { c.MaxStreamsPerUser = 1 }})
	token := s.Token(t, "carol")
	tb := newBrowser(t)
	tb.do("open the page", 15*time.Second, chromedp.Navigate(s.URL+"/#token="+token))
	tb.waitJS("live", 10*time.Second, `document.querySelector('#conn-status').dataset.state === 'live'`)
	waitOpenStreams(t, s, 1)

	refused := func() float64 { return counterValue(t, s, "jobwire_sse_streams_refused_total", "limit", "user") }
	// The page retries a refused stream no sooner than the server's Retry-After (5 s), and later after
	// further refusals: never more than one attempt per half second, where a loop would make hundreds.
	checkRate := func(since time.Time) {
		t.Helper()
		attempts, elapsed := refused(), time.Since(since)
		if limit := 2 + 2*elapsed.Seconds(); attempts > limit {
			t.Errorf("%v refused attempts in %v: the page retries without backing off", attempts, elapsed.Round(time.Millisecond))
		}
		t.Logf("%v refused attempts in %v", attempts, elapsed.Round(time.Millisecond))
	}
	tab2, closeTab2 := tb.newTab("tab 2")
	defer closeTab2()
	opened := time.Now()
	tab2.do("open the page", 15*time.Second, chromedp.Navigate(s.URL))
	tab2.waitJS("the refusal shown", 10*time.Second, `document.querySelector('#conn-status').dataset.state === 'closed' &&
		document.querySelector('#conn-status').textContent.includes('refused')`)
	if n := evalJS[int](tab2, `document.querySelectorAll('#jobs .job').length`); n != 0 || !evalJS[bool](tab2, `!document.querySelector('#app').hidden`) {
		t.Errorf("tab 2 should stay signed in and usable while its stream is refused")
	}
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if n := refused(); n < 2 {
			return fmt.Errorf("%v refused attempts, want a retry", n)
		}
		return nil
	})
	if e := time.Since(opened); e < 5*time.Second {
		t.Errorf("the page retried %v after opening, sooner than the gateway's Retry-After (5 s)", e.Round(time.Millisecond))
	}
	checkRate(opened)

	tb.do("leave with tab 1", 10*time.Second, chromedp.Navigate("about:blank"))
	waitOpenStreams(t, s, 0)
	tab2.waitJS("tab 2 live after tab 1 left", 15*time.Second, `document.querySelector('#conn-status').dataset.state === 'live'`)
	waitOpenStreams(t, s, 1)
	checkRate(opened)
	tab2.checkConsole("429")
	tb.checkConsole()
}

// counterValue reads one labelled counter from the stack's registry.
func counterValue(t *testing.T, s *stacktest.Stack, name, label, value string) float64 {
	t.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
