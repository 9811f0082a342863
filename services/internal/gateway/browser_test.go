package gateway_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
)

const appOrigin = "https://app.example.com"

func TestCORSOriginsMustBeExact(t *testing.T) {
	for _, o := range []string{"*", "https://*.example.com", "https://app.example.com/path", "ftp://app.example.com",
		"app.example.com", "https://user@app.example.com", "https://app.example.com?x=1", "null", "https://"} {
		cfg := gateway.Config{CORSOrigins: []string{o}}
		if err := cfg.Validate(); err == nil {
			t.Errorf("origin %q accepted", o)
		}
	}
	cfg := gateway.Config{CORSOrigins: []string{"https://App.Example.com:443", "http://localhost:3000", " "}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestNoCORSByDefault(t *testing.T) {
	b := setup(t)
	tok := b.token(t, "alice")
	status, hdr, _ := request(t, "GET", b.url+"/v1/jobs", tok, "", "", "Origin", appOrigin)
	if status != 200 || hdr.Get("Access-Control-Allow-Origin") != "" || hdr.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("CORS headers without configuration: %d %v", status, hdr)
	}
	status, hdr, _ = request(t, "OPTIONS", b.url+"/v1/jobs", "", "", "", "Origin", appOrigin, "Access-Control-Request-Method", "POST")
	if status != 403 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight without configuration: %d %v", status, hdr)
	}
	status, hdr, _ = streamStatus(t, b.url+"/v1/events?access_token="+tok, "Origin", appOrigin)
	if status != 200 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("stream: %d %v", status, hdr)
	}
}

func TestCORSWithExactOrigins(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.CORSOrigins = []string{appOrigin, "http://localhost:3000"} }))
	tok := b.token(t, "alice")

	// Preflight from an allowed origin, for the API routes.
	for _, path := range []string{"/v1/jobs", "/v1/jobs/01JF0000000000000000000000/cancel", "/v1/session", "/library/sync"} {
		status, hdr, _ := request(t, "OPTIONS", b.url+path, "", "", "", "Origin", appOrigin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
		if status != 204 || hdr.Get("Access-Control-Allow-Origin") != appOrigin || hdr.Get("Access-Control-Allow-Credentials") != "true" ||
			!strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "traceparent") ||
			!strings.Contains(hdr.Get("Vary"), "Origin") || hdr.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight %s: %d %v", path, status, hdr)
		}
	}
	// Preflight from anywhere else: refused, nothing echoed.
	for _, o := range []string{"https://evil.example.com", "https://app.example.com.evil.com", "http://app.example.com", "null", "https://app.example.com\r\nX-Evil: 1"} {
		req, _ := http.NewRequest("OPTIONS", b.url+"/v1/jobs", nil)
		req.Header["Origin"] = []string{o}
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue // the client refuses to send a header with CRLF: fine
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("X-Evil") != "" {
			t.Errorf("preflight from %q: %d %v", o, resp.StatusCode, resp.Header)
		}
	}
	// Simple requests: exact origin echoed with credentials, never "*".
	status, hdr, _ := request(t, "GET", b.url+"/v1/jobs", tok, "", "", "Origin", "https://APP.example.com:443")
	if status != 200 || hdr.Get("Access-Control-Allow-Origin") != appOrigin || hdr.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(hdr.Get("Access-Control-Expose-Headers"), "Location") || !strings.Contains(hdr.Get("Vary"), "Origin") {
		t.Errorf("allowed origin: %d %v", status, hdr)
	}
	status, hdr, _ = request(t, "GET", b.url+"/v1/jobs", tok, "", "", "Origin", "https://evil.example.com")
	if status != 200 || hdr.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(hdr.Get("Vary"), "Origin") {
		t.Errorf("other origin: %d %v", status, hdr)
	}
	// Errors carry the headers too, so the page can read them.
	status, hdr, _ = request(t, "GET", b.url+"/v1/jobs", "", "", "", "Origin", appOrigin)
	if status != 401 || hdr.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Errorf("401 from an allowed origin: %d %v", status, hdr)
	}
	// The SSE routes write their own head: the CORS lines are in it.
	c := b.client(t, "alice")
	job := b.submitSteps(t, c, stepsInput{Steps: 1, Block: true})
	for _, path := range []string{"/v1/events", "/v1/jobs/" + job.ID + "/events", "/library/sync/" + job.ID + "/progress"} {
		status, hdr, _ := streamStatus(t, b.url+path+"?access_token="+tok, "Origin", appOrigin)
		if status != 200 || hdr.Get("Access-Control-Allow-Origin") != appOrigin || hdr.Get("Access-Control-Allow-Credentials") != "true" ||
			hdr.Get("Vary") != "Origin" || hdr.Get("Content-Type") != "text/event-stream; charset=utf-8" {
			t.Errorf("stream %s from the allowed origin: %d %v", path, status, hdr)
		}
		status, hdr, _ = streamStatus(t, b.url+path+"?access_token="+tok, "Origin", "https://evil.example.com")
		if status != 200 || hdr.Get("Access-Control-Allow-Origin") != "" || hdr.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("stream %s from another origin: %d %v", path, status, hdr)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	b := setup(t)
	tok := b.token(t, "alice")
	for _, r := range []struct {
		method, path, token string
		status              int
	}{
		{"GET", "/v1/jobs", tok, 200},
		{"GET", "/v1/jobs", "", 401},
		{"GET", "/v1/jobs/nope", tok, 404},
		{"GET", "/v1/library", tok, 200},
		{"POST", "/v1/jobs", tok, 415},
		{"GET", "/library/sync/01JF0000000000000000000000", tok, 404},
	} {
		status, hdr, _ := request(t, r.method, b.url+r.path, r.token, "", "")
		if status != r.status || hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("Cache-Control") != "no-store" ||
			hdr.Get("Referrer-Policy") != "no-referrer" || hdr.Get("Cross-Origin-Resource-Policy") != "same-origin" {
			t.Errorf("%s %s: %d %v", r.method, r.path, status, hdr)
		}
	}
	if status, hdr, _ := request(t, "GET", b.url+"/healthz", "", "", ""); status != 200 || hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("healthz: %d %v", status, hdr)
	}
}

// cookieAttrs parses a Set-Cookie value into lower-case attribute names and values.
func cookieAttrs(setCookie string) map[string]string {
	out := map[string]string{}
	for i, part := range strings.Split(setCookie, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if i == 0 {
			out["name"], out["value"] = k, v
			continue
		}
		out[strings.ToLower(k)] = v
	}
	return out
}

func TestSessionCookie(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.CORSOrigins = []string{appOrigin} }))
	tok, _ := b.signer.Sign("alice", 2*time.Hour, "", "")
	self := b.url // the page's own origin: http://127.0.0.1:port

	status, hdr, body := request(t, "POST", b.url+"/v1/session", "", "application/json", `{"token":"`+tok+`"}`, "Origin", self)
	if status != 204 {
		t.Fatalf("session: %d %s", status, body)
	}
	ck := cookieAttrs(hdr.Get("Set-Cookie"))
	maxAge, _ := strconv.Atoi(ck["max-age"])
	if ck["name"] != "jobwire_token" || ck["value"] != tok || ck["path"] != "/" || !hasKey(ck, "httponly") ||
		!strings.EqualFold(ck["samesite"], "strict") || hasKey(ck, "secure") || maxAge < 7100 || maxAge > 7200 {
		t.Fatalf("cookie %q", hdr.Get("Set-Cookie"))
	}
	// Behind a TLS-terminating proxy the cookie is Secure.
	_, hdr, _ = request(t, "POST", b.url+"/v1/session", "", "application/json", `{"token":"`+tok+`"}`, "X-Forwarded-Proto", "https")
	if !hasKey(cookieAttrs(hdr.Get("Set-Cookie")), "secure") {
		t.Errorf("https cookie %q", hdr.Get("Set-Cookie"))
	}

	cookie := "jobwire_token=" + tok
	submit := `{"type":"noop","input":{}}`
	// Reads with the cookie work from anywhere (SameSite=Strict keeps browsers from sending it cross-site).
	if status, _, body := request(t, "GET", b.url+"/v1/jobs", "", "", "", "Cookie", cookie); status != 200 {
		t.Fatalf("cookie read: %d %s", status, body)
	}
	if status, _, body := streamStatus(t, b.url+"/v1/events", "Cookie", cookie); status != 200 {
		t.Fatalf("cookie stream: %d %s", status, body)
	}
	// Writes with the cookie: only from this origin, an allowed origin or a non-browser client.
	for _, tc := range []struct {
		name   string
		hdr    []string
		status int
	}{
		{"no Origin", nil, 202},
		{"own origin", []string{"Origin", self}, 202},
		{"allowed origin", []string{"Origin", appOrigin}, 202},
		{"own origin via proxy", []string{"Origin", "https://jobs.example.com", "X-Forwarded-Host", "jobs.example.com"}, 202},
		{"foreign origin", []string{"Origin", "https://evil.example.com"}, 403},
		{"lookalike origin", []string{"Origin", "http://127.0.0.1.evil.com"}, 403},
		{"null origin", []string{"Origin", "null"}, 403},
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site"}, 403},
	} {
		status, _, body := request(t, "POST", b.url+"/v1/jobs", "", "application/json", submit, append([]string{"Cookie", cookie}, tc.hdr...)...)
		if status != tc.status {
			t.Errorf("cookie POST, %s: %d %s", tc.name, status, body)
		}
		if tc.status == 403 && errorCode(body) != api.CodeForbidden {
			t.Errorf("cookie POST, %s: code %s", tc.name, errorCode(body))
		}
	}
	// A bearer token is not sent by the browser on its own: no origin check.
	if status, _, body := request(t, "POST", b.url+"/v1/jobs", tok, "application/json", submit, "Origin", "https://evil.example.com"); status != 202 {
		t.Errorf("bearer POST from another origin: %d %s", status, body)
	}
	// Bad sessions.
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "alice",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}).SignedString([]byte(testSecret))
	for _, tc := range []struct {
		name, body string
		hdr        []string
		status     int
		code       api.Code
	}{
		{"forged", `{"token":"` + tok[:len(tok)-3] + `abc"}`, nil, 401, api.CodeUnauthorized},
		{"empty", `{"token":""}`, nil, 422, api.CodeInvalidInput},
		{"unknown field", `{"token":"` + tok + `","remember":true}`, nil, 422, api.CodeInvalidInput},
		{"huge", `{"token":"` + strings.Repeat("a", 5000) + `"}`, nil, 422, api.CodeInvalidInput},
		{"foreign origin", `{"token":"` + tok + `"}`, []string{"Origin", "https://evil.example.com"}, 403, api.CodeForbidden},
		{"not JSON", `token=` + tok, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, api.CodeUnsupportedMedia},
	} {
		status, hdr, body := request(t, "POST", b.url+"/v1/session", "", "application/json", tc.body, tc.hdr...)
		if status != tc.status || errorCode(body) != tc.code || hdr.Get("Set-Cookie") != "" {
			t.Errorf("session %s: %d %s %v", tc.name, status, body, hdr.Get("Set-Cookie"))
		}
	}
	if status, _, body := request(t, "POST", b.url+"/v1/session", "", "application/json", `{"token":"`+expired+`"}`); status != 401 {
		t.Errorf("expired session token: %d %s", status, body)
	}
	// Logout clears the cookie, and only from this origin.
	if status, _, _ := request(t, "DELETE", b.url+"/v1/session", "", "", "", "Origin", "https://evil.example.com", "Cookie", cookie); status != 403 {
		t.Errorf("foreign logout: %d", status)
	}
	status, hdr, _ = request(t, "DELETE", b.url+"/v1/session", "", "", "", "Origin", self, "Cookie", cookie)
	ck = cookieAttrs(hdr.Get("Set-Cookie"))
	exp, err := http.ParseTime(ck["expires"])
	if status != 204 || ck["name"] != "jobwire_token" || ck["value"] != "" || ck["max-age"] != "0" || err != nil || exp.After(time.Now()) ||
		ck["path"] != "/" || !hasKey(ck, "httponly") || !strings.EqualFold(ck["samesite"], "strict") {
		t.Errorf("logout: %d %q", status, hdr.Get("Set-Cookie"))
	}
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }
