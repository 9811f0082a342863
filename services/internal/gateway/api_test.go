package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
)

func TestSubmitRejectsBadInput(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.BodyLimit = 64 << 10 }))
	tok := b.token(t, "alice")
	big := `{"type":"playlist.import","input":{"name":"x","format":"m3u","content":"` + strings.Repeat("a", 70<<10) + `"}}`
	cases := []struct {
		name, ct, body string
		status         int
		code           api.Code
	}{
		{"malformed JSON", "application/json", `{"type":`, 400, api.CodeBadRequest},
		{"not an object", "application/json", `[1,2]`, 400, api.CodeBadRequest},
		{"trailing data", "application/json", `{"type":"noop"} {"x":1}`, 400, api.CodeBadRequest},
		{"unknown type", "application/json", `{"type":"mine.bitcoin","input":{}}`, 422, api.CodeUnknownJobType},
		{"wildcard type", "application/json", `{"type":"jobs.>","input":{}}`, 422, api.CodeUnknownJobType},
		{"unknown field", "application/json", `{"type":"noop","priority":9}`, 422, api.CodeInvalidInput},
		{"wrong field type", "application/json", `{"type":7}`, 422, api.CodeInvalidInput},
		{"missing input", "application/json", `{"type":"playlist.import"}`, 422, api.CodeInvalidInput},
		{"null input", "application/json", `{"type":"playlist.import","input":null}`, 422, api.CodeInvalidInput},
		{"empty content", "application/json", `{"type":"playlist.import","input":{"name":"x","format":"m3u","content":"  "}}`, 422, api.CodeInvalidInput},
		{"missing content", "application/json", `{"type":"playlist.import","input":{"name":"x","format":"m3u"}}`, 422, api.CodeInvalidInput},
		{"bad format", "application/json", `{"type":"playlist.import","input":{"name":"x","format":"exe","content":"a"}}`, 422, api.CodeInvalidInput},
		{"unknown input field", "application/json", `{"type":"playlist.import","input":{"name":"x","format":"m3u","content":"a","evil":1}}`, 422, api.CodeInvalidInput},
		{"wrong content type", "text/plain", `{"type":"noop"}`, 415, api.CodeUnsupportedMedia},
		{"no content type", "", `{"type":"noop"}`, 415, api.CodeUnsupportedMedia},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := request(t, "POST", b.url+"/v1/jobs", tok, tc.ct, tc.body)
			if status != tc.status || errorCode(body) != tc.code {
				t.Fatalf("got %d %s, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	t.Run("body over limit", func(t *testing.T) {
		if status, body := overLimit(t, b.url+"/v1/jobs", tok, big); status != 413 || errorCode(body) != api.CodeBodyTooLarge {
			t.Fatalf("got %d %s, want 413 body_too_large", status, body)
		}
	})
	// The server is still healthy afterwards.
	if status, _, _ := request(t, "GET", b.url+"/healthz", "", "", ""); status != 200 {
		t.Fatalf("healthz %d", status)
	}
}

// overLimit POSTs body, declaring its length first and sending none of it until the answer is in:
// the gateway refuses an over-limit body from its Content-Length and closes the connection, which
// would otherwise race with the client still writing the body (a reset instead of the 413).
func overLimit(t *testing.T, url, token, body string) (int, []byte) {
	t.Helper()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest("POST", url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func TestHostileIDsAreNotFoundOnEveryRoute(t *testing.T) {
	b := setup(t)
	tok := b.token(t, "alice")
	ids := []string{"*", ">", "a.b", "a%20b", "%2A", "%3E", strings.Repeat("A", 300), "%C3%A9t%C3%A9", "..%2F..%2Fetc", "01JFZZZZZZZZZZZZZZZZZZZZZ%2E", "jobs.events.%3E", "%00"}
	routes := []struct{ method, path string }{
		{"GET", "/v1/jobs/%s"}, {"POST", "/v1/jobs/%s/cancel"}, {"GET", "/v1/jobs/%s/history"},
		{"GET", "/v1/jobs/%s/events"}, {"GET", "/library/sync/%s"}, {"GET", "/library/sync/%s/progress"},
	}
	for _, r := range routes {
		for _, id := range ids {
			u := b.url + strings.Replace(r.path, "%s", id, 1)
			status, _, body := request(t, r.method, u, tok, "", "")
			if status != 404 {
				t.Errorf("%s %s: %d %s, want 404", r.method, u, status, body)
			}
		}
	}
	if status, _, _ := request(t, "GET", b.url+"/healthz", "", "", ""); status != 200 {
		t.Fatalf("healthz %d", status)
	}
}

func TestAuthentication(t *testing.T) {
	b := setup(t)
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "alice",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}).SignedString([]byte(testSecret))
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "alice"}).SignedString([]byte(testSecret))
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "alice",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString([]byte("another-secret-another-secret-another-secret"))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Subject: "alice",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	noSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString([]byte(testSecret))
	for name, tok := range map[string]string{"missing": "", "garbage": "not.a.token", "expired": expired,
		"no exp": noExp, "forged": forged, "alg none": none, "no sub": noSub} {
		status, hdr, body := request(t, "GET", b.url+"/v1/jobs", tok, "", "")
		if status != 401 || errorCode(body) != api.CodeUnauthorized || hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	// Basic auth is not a bearer token.
	status, _, _ := request(t, "GET", b.url+"/v1/jobs", "", "", "", "Authorization", "Basic YWxpY2U6eA==")
	if status != 401 {
		t.Errorf("basic auth: %d", status)
	}
	// A stream token opens streams but nothing else.
	streamTok, _ := b.signer.Sign("alice", time.Minute, "stream", "")
	if status, _, body := request(t, "GET", b.url+"/v1/jobs", streamTok, "", ""); status != 403 {
		t.Errorf("stream token on REST: %d %s", status, body)
	}
	// The query token is accepted on stream routes only.
	if status, _, _ := request(t, "GET", b.url+"/v1/jobs?access_token="+url.QueryEscape(b.token(t, "alice")), "", "", ""); status != 401 {
		t.Errorf("query token on REST: %d", status)
	}
}

func TestOwnerIsolation(t *testing.T) {
	b := setup(t)
	alice, bob := b.client(t, "alice"), b.client(t, "bob")
	st := b.submitSteps(t, alice, stepsInput{Steps: 1})
	waitState(t, alice, st.ID, api.StateCompleted)
	ctx := context.Background()
	if _, err := bob.Get(ctx, st.ID); !api.IsCode(err, api.CodeJobNotFound) {
		t.Errorf("bob get: %v", err)
	}
	if _, err := bob.Cancel(ctx, st.ID); !api.IsCode(err, api.CodeJobNotFound) {
		t.Errorf("bob cancel: %v", err)
	}
	if _, err := bob.History(ctx, st.ID, "", 0); !api.IsCode(err, api.CodeJobNotFound) {
		t.Errorf("bob history: %v", err)
	}
	if _, err := bob.OpenStream(ctx, "/v1/jobs/"+st.ID+"/events", ""); !api.IsCode(err, api.CodeJobNotFound) {
		t.Errorf("bob stream: %v", err)
	}
	for _, p := range []string{"/library/sync/" + st.ID, "/library/sync/" + st.ID + "/progress"} {
		if status, _, body := request(t, "GET", b.url+p, b.token(t, "bob"), "", ""); status != 404 {
			t.Errorf("bob %s: %d %s", p, status, body)
		}
	}
	list, err := bob.List(ctx, "", "", 0)
	if err != nil || len(list.Jobs) != 0 {
		t.Errorf("bob list: %v %+v", err, list)
	}
	list, err = alice.List(ctx, "", "", 0)
	if err != nil || len(list.Jobs) != 1 || list.Jobs[0].ID != st.ID {
		t.Errorf("alice list: %v %+v", err, list)
	}
	// Users whose ids differ only in characters that are special in subjects stay apart.
	odd := b.client(t, "alice.*")
	if list, err := odd.List(ctx, "", "", 0); err != nil || len(list.Jobs) != 0 {
		t.Errorf("alice.* list: %v %+v", err, list)
	}
}

func TestGetListHistoryAndCancel(t *testing.T) {
	b := setup(t)
	c := b.client(t, "carol@example.com")
	ctx := context.Background()
	var ids []string
	for i := 0; i < 3; i++ {
		st := b.submitSteps(t, c, stepsInput{Steps: 2})
		ids = append(ids, st.ID)
		waitState(t, c, st.ID, api.StateCompleted)
	}
	page, err := c.List(ctx, "", "", 2)
	if err != nil || len(page.Jobs) != 2 || page.Jobs[0].ID != ids[2] || page.Jobs[1].ID != ids[1] || page.NextCursor == "" {
		t.Fatalf("first page: %v %+v", err, page)
	}
	page, err = c.List(ctx, "", page.NextCursor, 2)
	if err != nil || len(page.Jobs) != 1 || page.Jobs[0].ID != ids[0] {
		t.Fatalf("second page: %v %+v", err, page)
	}
	if page, err := c.List(ctx, api.StateActive, "", 0); err != nil || len(page.Jobs) != 0 {
		t.Fatalf("active filter: %v %+v", err, page)
	}
	h, err := c.History(ctx, ids[0], "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, raw := range h.Events {
		var ev struct {
			Type string `json:"type"`
			Seq  uint64 `json:"seq"`
		}
		json.Unmarshal(raw, &ev)
		types = append(types, ev.Type)
	}
	if types[0] != "job.submitted" || types[1] != "job.started" || types[len(types)-1] != "job.completed" {
		t.Fatalf("history order: %v", types)
	}
	// Cancelling a finished job is a conflict.
	if _, err := c.Cancel(ctx, ids[0]); !api.IsCode(err, api.CodeJobFinished) {
		t.Fatalf("cancel finished: %v", err)
	}
	// A running job stops and ends cancelled with its partial result.
	st := b.submitSteps(t, c, stepsInput{Steps: 1, Block: true})
	waitState(t, c, st.ID, api.StateActive)
	if _, err := c.Cancel(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	final := waitState(t, c, st.ID, api.StateCancelled)
	if string(final.Result) != "{}" || final.Error == nil {
		t.Fatalf("cancelled state: %+v", final)
	}
}

func TestIdempotentSubmit(t *testing.T) {
	b := setup(t)
	c := b.client(t, "dave")
	ctx := context.Background()
	req := api.SubmitRequest{Type: stepsName, Input: json.RawMessage(`{"steps":1}`)}
	first, created, err := c.Submit(ctx, req, "key-1")
	if err != nil || !created {
		t.Fatalf("first: %v %v", err, created)
	}
	again, created, err := c.Submit(ctx, req, "key-1")
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("second: %v created=%v id %s vs %s", err, created, again.ID, first.ID)
	}
	if _, _, err := c.Submit(ctx, api.SubmitRequest{Type: stepsName, Input: json.RawMessage(`{"steps":2}`)}, "key-1"); !api.IsCode(err, api.CodeInvalidInput) {
		t.Fatalf("same key, other body: %v", err)
	}
	// Another user with the same key gets their own job.
	other, created, err := b.client(t, "erin").Submit(ctx, req, "key-1")
	if err != nil || !created || other.ID == first.ID {
		t.Fatalf("other user: %v %v", err, created)
	}
	// Concurrent identical submissions make one job.
	var wg sync.WaitGroup
	got := make([]string, 10)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _, err := c.Submit(ctx, req, "key-concurrent")
			if err != nil {
				t.Error(err)
			}
			got[i] = st.ID
		}()
	}
	wg.Wait()
	for _, id := range got {
		if id != got[0] {
			t.Fatalf("concurrent submits made different jobs: %v", got)
		}
	}
	waitState(t, c, got[0], api.StateCompleted)
	list, _ := c.List(ctx, "", "", 0)
	if len(list.Jobs) != 2 {
		t.Fatalf("dave has %d jobs, want 2", len(list.Jobs))
	}
}

func TestLegacyRoutes(t *testing.T) {
	b := setup(t)
	tok := b.token(t, "frank")
	status, _, body := request(t, "POST", b.url+"/library/sync", tok, "application/json", `{"name":"x","format":"csv","content":"artist,title\nA,B"}`)
	if status != http.StatusAccepted {
		t.Fatalf("legacy submit: %d %s", status, body)
	}
	var sub struct{ JobID string }
	json.Unmarshal(body, &sub)
	c := b.client(t, "frank")
	st := b.submitSteps(t, c, stepsInput{Steps: 4})
	waitState(t, c, st.ID, api.StateCompleted)
	status, _, body = request(t, "GET", b.url+"/library/sync/"+st.ID, tok, "", "")
	want := `{"error":null,"jobId":"` + st.ID + `","progress":100,"result":{"steps":4},"state":"completed"}`
	if status != 200 || string(body) != want {
		t.Fatalf("legacy get: %d\n got %s\nwant %s", status, body, want)
	}
	s, err := api.NewClient(b.url, tok).OpenStream(context.Background(), "/library/sync/"+st.ID+"/progress", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil || ev.Event != "" || string(ev.Data) != want {
		t.Fatalf("legacy stream: %v %q %s", err, ev.Event, ev.Data)
	}
}
