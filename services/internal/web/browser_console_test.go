package web_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/console"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/services/internal/testkit"
)

// consoleRow is the selector of a job type's row in the console.
func consoleRow(jobType string) string {
	return fmt.Sprintf(`#console-types tr[data-type="%s"]`, jobType)
}

// waitCells waits until the console's row of jobType shows every field's value.
func (tb *tab) waitCells(what, jobType string, want map[string]string) {
	tb.t.Helper()
	var conds []string
	for field, v := range want {
		conds = append(conds, fmt.Sprintf(`cell(%q) === %q`, field, v))
	}
	tb.waitJS(what, 15*time.Second, fmt.Sprintf(`(() => {
		const row = document.querySelector('%s');
		const cell = (f) => { const td = row && row.querySelector('td[data-field="' + f + '"]'); return td ? td.textContent : null; };
		return %s; })()`, consoleRow(jobType), strings.Join(conds, " && ")))
}

// consoleStreams counts the tab's requests of the console stream.
func (tb *tab) consoleStreams() int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	n := 0
	for _, u := range tb.requests {
		if strings.Contains(u, api.OperatorEventsPath) {
			n++
		}
	}
	return n
}

// TestBrowserOperatorConsole runs the console as an operator: the demo.count row (the real
// examples/count worker) counts a job live as it runs; the pause and resume buttons pause and resume
// the type; the dead-letter list retries one dead letter (queued while the worker is away, dead again
// once it is back) and purges another once confirmed. Then a plain user signs in on the same page and
// has no console.
func TestBrowserOperatorConsole(t *testing.T) {
	requireBrowser(t)
	began := time.Now()
	step := func(name string) { t.Logf("%6.2fs %s", time.Since(began).Seconds(), name) }
	s := stacktest.Start(t, stacktest.Options{Gateway: func(c *gateway.Config) {
		c.Console = console.Config{Interval: 100 * time.Millisecond, DeadLetterInterval: 200 * time.Millisecond, StatsInterval: 200 * time.Millisecond}
	}})
	worker := testkit.StartCount(t, s.Server.URL())
	opsToken, err := s.Signer.Sign("ops", time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitJobType(t, s.Operator(t, "ops"), "demo.count", true, 30*time.Second)
	alice := s.Client(t, "alice")
	submit := func(input string) string {
		t.Helper()
		st, _, err := alice.Submit(t.Context(), api.SubmitRequest{Type: "demo.count", Input: json.RawMessage(input)}, "")
		if err != nil {
			t.Fatalf("submit %s: %v", input, err)
		}
		return st.ID
	}
	tb := newBrowser(t)

	step("an operator signs in and opens the console")
	tb.do("open the page", 15*time.Second, chromedp.Navigate(s.URL+"/#token="+opsToken))
	tb.waitJS("the console tab", 10*time.Second, `document.querySelector('#conn-status').dataset.state === 'live' &&
		!document.querySelector('#tab-console').hidden`)
	tb.do("open the console", 10*time.Second, chromedp.Click(chromedp.ID("tab-console")))
	tb.waitJS("the console live", 10*time.Second, `!document.querySelector('#view-console').hidden &&
		document.querySelector('#console-status').dataset.state === 'live'`)
	tb.waitCells("demo.count with its worker", "demo.count", map[string]string{"workersOnline": "1", "active": "0", "completed": "0"})
	tb.waitJS("this gateway and its streams", 5*time.Second, `(() => {
		const rows = document.querySelectorAll('#console-gateways tbody tr');
		return rows.length === 1 && rows[0].querySelector('td[data-field="consoleStreams"]').textContent === '1' &&
			rows[0].querySelector('td[data-field="openStreams"]').textContent === '2'; })()`)

	step("a job runs: the row counts it live")
	submit(`{"n":15,"delayMs":100}`)
	tb.waitCells("the job running", "demo.count", map[string]string{"active": "1", "completed": "0"})
	tb.waitCells("the job done", "demo.count", map[string]string{"active": "0", "completed": "1"})
	tb.waitJS("a start and a finish per second", 5*time.Second, fmt.Sprintf(`(() => {
		const r = document.querySelector('%s');
		return Number(r.querySelector('td[data-field="startedPerSec"]').textContent) > 0 &&
			Number(r.querySelector('td[data-field="finishedPerSec"]').textContent) > 0; })()`, consoleRow("demo.count")))

	step("two jobs fail for good: two dead letters")
	retried, purged := submit(`{"n":1,"permanent":true}`), submit(`{"n":1,"permanent":true}`)
	tb.waitCells("two dead letters", "demo.count", map[string]string{"failed": "2", "deadLettered": "2"})
	tb.waitJS("both listed", 10*time.Second, `document.querySelectorAll('#dead-letters tbody tr').length === 2`)

	step("pause demo.count, then resume it")
	pauseButton := chromedp.CSS(consoleRow("demo.count") + " button.pause")
	paused := func(want bool) string {
		state, label := "running", "Pause"
		if want {
			state, label = "paused", "Resume"
		}
		return fmt.Sprintf(`(() => {
			const r = document.querySelector('%s'), b = r.querySelector('button.pause');
			return r.dataset.paused === '%t' && r.querySelector('.state').dataset.state === '%s' && b.textContent === '%s' && !b.disabled; })()`,
			consoleRow("demo.count"), want, state, label)
	}
	tb.do("pause", 10*time.Second, chromedp.Click(pauseButton))
	tb.waitJS("paused", 10*time.Second, paused(true))
	if jt := jobType(t, s, "demo.count"); !jt.Paused || jt.PausedBy != "ops" {
		t.Errorf("after the pause button: %+v", jt)
	}
	tb.do("resume", 10*time.Second, chromedp.Click(pauseButton))
	tb.waitJS("running again", 10*time.Second, paused(false))
	if jt := jobType(t, s, "demo.count"); jt.Paused {
		t.Errorf("after the resume button: %+v", jt)
	}

	step("the worker stops; retry one dead letter: it waits, queued")
	if err := worker.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop examples/count: %v", err)
	}
	tb.waitCells("no worker", "demo.count", map[string]string{"workersOnline": "0"})
	dead := func(id string) string { return fmt.Sprintf(`#dead-letters tr[data-key="alice.%s"]`, id) }
	firstSeq := evalJS[string](tb, fmt.Sprintf(`document.querySelector('%s').dataset.seq`, dead(retried)))
	tb.do("retry", 10*time.Second, chromedp.Click(chromedp.CSS(dead(retried)+" button.retry")))
	tb.waitJS("the retried one gone from the list", 10*time.Second, fmt.Sprintf(`document.querySelector('%s') === null &&
		document.querySelectorAll('#dead-letters tbody tr').length === 1`, dead(retried)))
	tb.waitCells("retried: queued, not dead", "demo.count", map[string]string{"queued": "1", "failed": "1", "deadLettered": "1"})

	step("purge the other, after confirming")
	purgeButton := chromedp.CSS(dead(purged) + " button.purge")
	tb.do("purge, then keep it", 10*time.Second, chromedp.Click(purgeButton))
	tb.waitJS("the confirmation", 5*time.Second, `document.querySelector('#purge-dialog').open &&
		document.querySelector('#purge-text').textContent.includes('for good')`)
	tb.do("keep it", 10*time.Second, chromedp.Click(chromedp.ID("purge-cancel")))
	tb.waitJS("the dialog closed", 5*time.Second, `!document.querySelector('#purge-dialog').open`)
	if n := evalJS[int](tb, `document.querySelectorAll('#dead-letters tbody tr').length`); n != 1 {
		t.Fatalf("after keeping it the list has %d dead letters", n)
	}
	tb.do("purge, and confirm", 10*time.Second, chromedp.Click(purgeButton))
	tb.waitJS("the confirmation", 5*time.Second, `document.querySelector('#purge-dialog').open`)
	tb.do("confirm", 10*time.Second, chromedp.Click(chromedp.ID("purge-confirm")))
	tb.waitJS("no dead letter left", 10*time.Second, `document.querySelectorAll('#dead-letters tbody tr').length === 0 &&
		!document.querySelector('#dlq-empty').hidden`)
	tb.waitCells("purged: the job still failed, not dead", "demo.count", map[string]string{"failed": "1", "deadLettered": "0", "queued": "1"})
	if st, err := alice.Get(t.Context(), purged); err != nil || st.State != api.StateFailed {
		t.Errorf("the purged dead letter's job: %+v %v", st, err)
	}

	step("the worker is back: the retried job runs, and fails for good again")
	if err := worker.Restart(); err != nil {
		t.Fatal(err)
	}
	tb.waitCells("the retried job dead again", "demo.count", map[string]string{"workersOnline": "1", "queued": "0", "failed": "2", "deadLettered": "1"})
	tb.waitJS("listed again, as a new dead letter", 10*time.Second, fmt.Sprintf(`(() => {
		const r = document.querySelector('%s'); return r !== null && r.dataset.seq !== %q; })()`, dead(retried), firstSeq))
	if n := tb.consoleStreams(); n != 1 {
		t.Errorf("the page opened %d console streams, want 1", n)
	}
	tb.checkConsole()

	step("a plain user signs in on the same page: no console")
	tb.do("sign out", 10*time.Second, chromedp.Click(chromedp.ID("signout")))
	tb.waitJS("signed out", 10*time.Second, `!document.querySelector('#signin').hidden && document.querySelector('#tab-console').hidden`)
	waitOpenStreams(t, s, 0)
	tb.paste("#token-input", s.Token(t, "alice"))
	tb.do("sign in as alice", 10*time.Second, chromedp.Click(chromedp.ID("signin-submit")))
	tb.waitJS("alice's page", 10*time.Second, `document.querySelector('#conn-status').dataset.state === 'live' &&
		document.querySelector('#user').textContent === 'alice'`)
	waitOpenStreams(t, s, 1)
	if evalJS[bool](tb, `!document.querySelector('#tab-console').hidden || !document.querySelector('#view-console').hidden`) {
		t.Error("a plain user's page shows the console")
	}
	if n := tb.consoleStreams(); n != 1 {
		t.Errorf("%d console streams opened in all, want only the operator's", n)
	}
	if got := s.Gateway.Console().Viewers(); got != 0 {
		t.Errorf("%d console streams open after the operator left", got)
	}
	tb.checkConsole()
}

// jobType is the registry's view of a job type (GET /v1/job-types).
func jobType(t *testing.T, s *stacktest.Stack, name string) api.JobType {
	t.Helper()
	list, err := s.Client(t, "alice").JobTypes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, jt := range list.JobTypes {
		if jt.Name == name {
			return jt
		}
	}
	t.Fatalf("no job type %s", name)
	return api.JobType{}
}
