package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
)

// rawSubmit is the exact bytes of a one-shot POST of body to path with an Idempotency-Key.
func rawSubmit(token, path, key, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
		"Idempotency-Key: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", path, token, key, len(body), body)
}

// The Idempotency-Key is bounded on every submit route, and it stands for the whole request: the same
// key with anything that changes what runs is a 422, never the first job returned in silence.
func TestIdempotencyKeyStandsForTheWholeRequest(t *testing.T) {
	b := setup(t)
	alice, bob := b.token(t, "alice"), b.token(t, "bob")
	addr := b.gw.Addr()
	runAt := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	later := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	body := func(input, runAt, timeout string, maxAttempts int) string {
		return fmt.Sprintf(`{"type":"noop","input":%s,"runAt":%q,"timeout":%q,"maxAttempts":%d}`, input, runAt, timeout, maxAttempts)
	}
	first := body(`{}`, runAt, "90s", 2)
	got := sendRaw(t, addr, rawSubmit(alice, "/v1/jobs", "k1", first))
	if got.status != 202 {
		t.Fatalf("first submit: %d %s", got.status, got.body)
	}
	var job api.JobState
	if err := json.Unmarshal([]byte(got.body), &job); err != nil || job.ID == "" {
		t.Fatalf("first submit: %s %v", got.body, err)
	}
	rows := []struct {
		name, token, path, key, body string
		status                       int
		sameJob                      bool
	}{
		{"the same request again", alice, "/v1/jobs", "k1", first, 200, true},
		{"another runAt", alice, "/v1/jobs", "k1", body(`{}`, later, "90s", 2), 422, false},
		{"another timeout", alice, "/v1/jobs", "k1", body(`{}`, runAt, "91s", 2), 422, false},
		{"another maxAttempts", alice, "/v1/jobs", "k1", body(`{}`, runAt, "90s", 3), 422, false},
		{"no options", alice, "/v1/jobs", "k1", `{"type":"noop","input":{}}`, 422, false},
		{"another input", alice, "/v1/jobs", "k1", body(`{"x":1}`, runAt, "90s", 2), 422, false},
		{"the same key from another user", bob, "/v1/jobs", "k1", first, 202, false},
		{"a 255-byte key", alice, "/v1/jobs", strings.Repeat("k", 255), first, 202, false},
		{"a 256-byte key", alice, "/v1/jobs", strings.Repeat("k", 256), first, 422, false},
		{"a 256-byte key on the legacy route", alice, "/library/sync", strings.Repeat("k", 256), `{"name":"x","format":"csv","content":"a,b"}`, 422, false},
		{"a 4,000-byte key on the legacy route", alice, "/library/sync", strings.Repeat("k", 4000), `{"name":"x","format":"csv","content":"a,b"}`, 422, false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			got := sendRaw(t, addr, rawSubmit(row.token, row.path, row.key, row.body))
			if got.status != row.status {
				t.Fatalf("status %d %s, want %d", got.status, got.body, row.status)
			}
			if !got.closed || got.second != "" {
				t.Errorf("closed %v, second answer %q", got.closed, got.second)
			}
			if strings.Contains(got.body, row.token) || strings.Contains(got.body, row.key) {
				t.Errorf("the answer quotes the request: %s", got.body)
			}
			if row.status == 422 && errorCode([]byte(got.body)) != api.CodeInvalidInput {
				t.Errorf("body %s, want invalid_input", got.body)
			}
			var st api.JobState
			_ = json.Unmarshal([]byte(got.body), &st)
			if row.sameJob != (st.ID == job.ID) {
				t.Errorf("job %q, first job %q, want the same: %v", st.ID, job.ID, row.sameJob)
			}
		})
	}
}

// The API port never serves Prometheus metrics: they are on the process's own listener.
func TestMetricsAreNotOnTheAPIPort(t *testing.T) {
	b := setup(t)
	got := sendRaw(t, b.gw.Addr(), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if got.status != 404 || strings.Contains(got.body, "jobwire_") || strings.Contains(got.body, "go_goroutines") {
		t.Fatalf("GET /metrics on the API port: %d %s", got.status, got.body)
	}
}
