package web_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/jobwire/jobwire/services/internal/stacktest"
)

// recordStreamIDs runs before the page's own scripts (a test-only injection, not subject to the
// page's CSP): it wraps fetch so that every event id the page's stream receives is kept in
// window.__streamIDs, without changing what the page reads.
const recordStreamIDs = `(() => {
  window.__streamIDs = [];
  const fetch0 = window.fetch;
  window.fetch = async (...args) => {
    const res = await fetch0(...args);
    if (!String(args[0]).includes('/v1/events') || res.status !== 200 || !res.body) return res;
    const [mine, copy] = res.body.tee();
    (async () => {
      const r = copy.getReader(), dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { done, value } = await r.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.startsWith('id: ')) window.__streamIDs.push(Number(line.slice(4)));
        }
      }
    })().catch(() => {});
    return new Response(mine, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
})();`

// TestBrowserClientResume follows an import on the page (on @jobwire/client) through a reload: the
// reloaded page resumes from the position it kept in sessionStorage (?lastEventId=), receives nothing
// at or before it, and the import still reaches 100 %; a second tab opened meanwhile starts from a
// snapshot of its own and sees the same end.
func TestBrowserClientResume(t *testing.T) {
	requireBrowser(t)
	s := stacktest.Start(t, stacktest.Options{TrackDelay: 50 * time.Millisecond})
	token := s.Token(t, "alice")
	tb := newBrowser(t)
	tb.do("record the stream's ids", 10*time.Second, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordStreamIDs})
		return err
	}))
	tb.do("open the page", 15*time.Second, chromedp.Navigate(s.URL+"/#token="+token))
	tb.waitJS("live", 10*time.Second, `document.querySelector('#conn-status').dataset.state === 'live'`)

	tb.paste("#playlist", csvPlaylist(tracks("Resume", 100)))
	tb.do("start the import", 10*time.Second, chromedp.Click(chromedp.ID("start")))
	id := tb.newestOtherJob()
	tb.waitJS("the import under way", 10*time.Second, fmt.Sprintf(`(() => {
		const v = Number(document.querySelector('%s .bar').getAttribute('aria-valuenow'));
		return v >= 10 && v < 50; })()`, jobSel(id)))
	before, err := strconv.ParseUint(evalJS[string](tb, `sessionStorage.getItem('jobwire.lastEventId') || '0'`), 10, 64)
	if err != nil || before == 0 {
		t.Fatalf("no stream position stored before the reload (%v)", err)
	}
	if ids := evalJS[[]float64](tb, `window.__streamIDs`); len(ids) == 0 {
		t.Fatal("the recorder saw no event of the first page's stream")
	}

	tb.do("reload", 15*time.Second, chromedp.Reload())
	tb.waitJS("live again", 10*time.Second, `document.querySelector('#conn-status').dataset.state === 'live'`)
	urls := tb.streamURLs()
	if len(urls) != 2 || urls[0] != "/v1/events" {
		t.Fatalf("streams opened: %q, want /v1/events, then one resume", urls)
	}
	u, err := url.Parse(urls[1])
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := strconv.ParseUint(u.Query().Get("lastEventId"), 10, 64)
	if err != nil || resumed < before {
		t.Fatalf("the reloaded page opened %q: want ?lastEventId= at or after the stored %d", urls[1], before)
	}

	tab2, closeTab2 := tb.newTab("tab 2")
	defer closeTab2()
	tab2.do("open the page", 15*time.Second, chromedp.Navigate(s.URL))
	tab2.waitJS("tab 2 live with the import", 10*time.Second, fmt.Sprintf(`document.querySelector('#conn-status').dataset.state === 'live' &&
		document.querySelector('%s') !== null`, jobSel(id)))

	tb.waitJobState(id, "completed", 30*time.Second)
	if p := tb.percent(id); p != 100 {
		t.Errorf("the completed import's bar at %d %%", p)
	}
	if n := tb.count(id, "added"); n != 100 {
		t.Errorf("added after the reload: %d, want 100", n)
	}
	ids := evalJS[[]float64](tb, `window.__streamIDs`)
	if len(ids) == 0 {
		t.Fatal("the reloaded page received no event")
	}
	for _, got := range ids {
		if uint64(got) <= resumed {
			t.Errorf("after resuming from %d the page received event %d again (all: %v)", resumed, uint64(got), ids)
		}
	}
	t.Logf("resumed from %d (stored %d before the reload); %d events after it", resumed, before, len(ids))

	tab2.waitJobState(id, "completed", 10*time.Second)
	if p, n := tab2.percent(id), tab2.count(id, "added"); p != 100 || n != 100 {
		t.Errorf("tab 2 shows %d %% and %d added", p, n)
	}
	if urls := tab2.streamURLs(); len(urls) != 1 || urls[0] != "/v1/events" {
		t.Errorf("tab 2 opened %q, want one plain /v1/events (its position is its own)", urls)
	}
	if strings.Contains(strings.Join(tb.streamURLs(), " "), "access_token") {
		t.Error("the page put a token in a stream URL")
	}
	tb.checkConsole()
	tab2.checkConsole()
	tb.checkRequests(token)
}
