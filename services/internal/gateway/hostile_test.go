package gateway_test

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	encjson "encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
)

// rawResponse is what a raw request got back.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// rawRequest writes req to the gateway byte for byte (no client cleans it up) and reads the answer;
// a stream's body is not read.
func rawRequest(t *testing.T, addr, req string) rawResponse {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return rawResponse{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	out := rawResponse{status: resp.StatusCode, header: resp.Header}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		out.body, _ = io.ReadAll(resp.Body)
	}
	return out
}

// hostileRequest is one row: a request meant to hurt, and the answer it must get.
type hostileRequest struct {
	name   string
	method string
	path   string // sent verbatim
	token  string // Authorization: Bearer <token>, when set
	hdr    []string
	ct     string
	body   string
	raw    string // the whole request, verbatim, instead of the fields above
	status int
	code   api.Code // "" when the answer is not an error
}

func (h hostileRequest) build() string {
	if h.raw != "" {
		return h.raw
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", h.method, h.path)
	if h.token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", h.token)
	}
	if h.ct != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", h.ct)
	}
	for i := 0; i+1 < len(h.hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", h.hdr[i], h.hdr[i+1])
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(h.body), h.body)
	return b.String()
}

func nested(depth int, inner string) string {
	return strings.Repeat("[", depth) + inner + strings.Repeat("]", depth)
}

func TestHostileRequests(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) {
		c.BodyLimit = 256 << 10
		c.SubmitRate = gateway.Rate{N: -1}
	}))
	alice := b.token(t, "alice")
	bobJob := b.submitSteps(t, b.client(t, "bob"), stepsInput{Steps: 1, Block: true})
	aliceJob := b.submitSteps(t, b.client(t, "alice"), stepsInput{Steps: 1})
	waitState(t, b.client(t, "alice"), aliceJob.ID, api.StateCompleted)

	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	hs := func(claims jwt.Claims, key []byte, hdr map[string]any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		for k, v := range hdr {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sub := func(s string) jwt.RegisteredClaims { return jwt.RegisteredClaims{Subject: s, ExpiresAt: exp} }
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rs256, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, sub("alice")).SignedString(rsaKey)
	jku := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, sub("alice"))
		tok.Header["jku"] = "https://evil.example.com/jwks.json"
		tok.Header["jwk"] = map[string]string{"kty": "RSA"}
		s, _ := tok.SignedString(rsaKey)
		return s
	}()
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, sub("alice")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	expired := hs(jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}, []byte(testSecret), nil)
	streamTok, _ := b.signer.Sign("alice", time.Minute, "stream", "")
	otherDoc := strings.Repeat("a", 300)

	const ulid = "01JF0000000000000000000000"
	submit := func(input string) string { return `{"type":"playlist.import","input":` + input + `}` }
	playlist := func(format, content string) string {
		return submit(`{"name":"x","format":"` + format + `","content":"` + content + `"}`)
	}
	json := "application/json"
	rows := []hostileRequest{
		// Path traversal.
		{name: "traversal in id, escaped", method: "GET", path: "/v1/jobs/..%2F..%2Fetc%2Fpasswd", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "traversal in path", method: "GET", path: "/v1/jobs/../../../etc/passwd", token: alice, status: 404, code: api.CodeNotFound},
		{name: "dot-dot id", method: "GET", path: "/v1/jobs/%2e%2e/history", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "traversal on legacy stream", method: "GET", path: "/library/sync/..%2F" + bobJob.ID + "/progress", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "backslash traversal", method: "GET", path: "/v1/jobs/..%5C..%5Cwindows", token: alice, status: 404, code: api.CodeJobNotFound},
		// Subject wildcards in ids and query parameters.
		{name: "star id", method: "GET", path: "/v1/jobs/*", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "gt id", method: "GET", path: "/v1/jobs/%3E/events", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "id with subject tail", method: "POST", path: "/v1/jobs/" + ulid + ".%3E/cancel", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "star retry", method: "POST", path: "/v1/jobs/*/retry", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "wildcard cursor", method: "GET", path: "/v1/jobs?cursor=%3E", token: alice, status: 400, code: api.CodeBadRequest},
		{name: "wildcard state", method: "GET", path: "/v1/jobs?state=*", token: alice, status: 400, code: api.CodeBadRequest},
		{name: "wildcard library cursor", method: "GET", path: "/v1/library?cursor=alice.%3E", token: alice, status: 400, code: api.CodeBadRequest},
		{name: "wildcard job type", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"jobs.>","input":{}}`, status: 422, code: api.CodeUnknownJobType},
		{name: "wildcard stream token job", method: "POST", path: "/v1/stream-tokens", token: alice, ct: json, body: `{"jobId":"*"}`, status: 404, code: api.CodeJobNotFound},
		// Header injection: CRLF in values only ever makes more (harmless) headers; nothing is reflected.
		{name: "CRLF in Idempotency-Key", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"noop","input":{}}`,
			hdr: []string{"Idempotency-Key", "k1\r\nX-Injected: yes"}, status: 202},
		{name: "folded Idempotency-Key", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"noop","input":{}}`,
			hdr: []string{"Idempotency-Key", "k2\r\n Set-Cookie: a=b"}, status: 400, code: api.CodeBadRequest},
		{name: "oversized Idempotency-Key", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"noop","input":{}}`,
			hdr: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: 422, code: api.CodeInvalidInput},
		{name: "oversized Idempotency-Key on the legacy route", method: "POST", path: "/library/sync", token: alice, ct: json,
			body: `{"name":"x","format":"csv","content":"a,b"}`, hdr: []string{"Idempotency-Key", strings.Repeat("k", 4000)}, status: 422, code: api.CodeInvalidInput},
		{name: "CRLF in Last-Event-ID", method: "GET", path: "/v1/events", token: alice, hdr: []string{"Last-Event-ID", "1\r\nevent: evil"}, status: 200},
		{name: "huge Last-Event-ID", method: "GET", path: "/v1/events", token: alice, hdr: []string{"Last-Event-ID", strings.Repeat("9", 4000)}, status: 200},
		{name: "negative Last-Event-ID", method: "GET", path: "/v1/jobs/" + aliceJob.ID + "/events", token: alice, hdr: []string{"Last-Event-ID", "-1"}, status: 200},
		{name: "max uint64 lastEventId", method: "GET", path: "/v1/events?lastEventId=18446744073709551615", token: alice, status: 200},
		{name: "Last-Event-ID over the header buffer", method: "GET", path: "/v1/events", token: alice, hdr: []string{"Last-Event-ID", strings.Repeat("9", 9000)}, status: 431, code: api.CodeBadRequest},
		// Oversized and deep JSON.
		{name: "body over the limit", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: submit(`{"name":"x","format":"csv","content":"` + strings.Repeat("a", 300<<10) + `"}`), status: 413, code: api.CodeBodyTooLarge},
		{name: "10,000-deep JSON", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: nested(10000, ""), status: 400, code: api.CodeBadRequest},
		{name: "33-deep input", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"noop","input":` + nested(32, "1") + `}`, status: 400, code: api.CodeBadRequest},
		{name: "32-deep input is fine", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"noop","input":` + nested(31, "1") + `}`, status: 202},
		{name: "brackets inside a string are not depth", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"noop","input":"` + strings.Repeat("[{", 5000) + `\"]"}`, status: 202},
		{name: "deep session body", method: "POST", path: "/v1/session", ct: json, body: `{"token":` + nested(100, `"x"`) + `}`, status: 400, code: api.CodeBadRequest},
		// Input against the type's schema (the registry's; the importer checks the rest when it runs).
		{name: "unknown playlist format", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: playlist("wav", "x"), status: 422, code: api.CodeInvalidInput},
		{name: "blank playlist", method: "POST", path: "/library/sync", token: alice, ct: json, body: `{"name":"x","format":"csv","content":" \n\t "}`, status: 422, code: api.CodeInvalidInput},
		{name: "name over 200 characters", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: submit(`{"name":"` + strings.Repeat("n", 201) + `","format":"csv","content":"a,b"}`), status: 422, code: api.CodeInvalidInput},
		{name: "unknown input field", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: submit(`{"format":"csv","content":"a,b","evil":1}`), status: 422, code: api.CodeInvalidInput},
		{name: "input not an object", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: submit(`"x"`), status: 422, code: api.CodeInvalidInput},
		{name: "no input", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"playlist.import"}`, status: 422, code: api.CodeInvalidInput},
		{name: "duplicate keys", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"noop","type":"playlist.import"}`, status: 422, code: api.CodeInvalidInput},
		{name: "byte order mark", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: "\xEF\xBB\xBF" + `{"type":"noop"}`, status: 400, code: api.CodeBadRequest},
		{name: "runAt in year 9999", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"noop","input":{},"runAt":"9999-01-01T00:00:00Z"}`, status: 422, code: api.CodeInvalidInput},
		// Content types.
		{name: "text/plain", method: "POST", path: "/v1/jobs", token: alice, ct: "text/plain", body: `{"type":"noop"}`, status: 415, code: api.CodeUnsupportedMedia},
		{name: "form", method: "POST", path: "/library/sync", token: alice, ct: "application/x-www-form-urlencoded", body: "name=x", status: 415, code: api.CodeUnsupportedMedia},
		{name: "multipart", method: "POST", path: "/v1/jobs", token: alice, ct: "multipart/form-data; boundary=x", body: "--x--", status: 415, code: api.CodeUnsupportedMedia},
		{name: "json lookalike type", method: "POST", path: "/v1/jobs", token: alice, ct: "application/json-patch+json", body: `{"type":"noop"}`, status: 415, code: api.CodeUnsupportedMedia},
		{name: "no body", method: "POST", path: "/v1/jobs", token: alice, ct: json, status: 400, code: api.CodeBadRequest},
		// Unicode tricks.
		{name: "fullwidth ULID", method: "GET", path: "/v1/jobs/%EF%BC%90%EF%BC%91JF00000000000000000000000", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "Cyrillic O in ULID", method: "GET", path: "/v1/jobs/" + strings.Replace(ulid, "0", "%D0%9E", 1), token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "lower-case ULID", method: "GET", path: "/v1/jobs/" + strings.ToLower(bobJob.ID), token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "RTL override in id", method: "GET", path: "/v1/jobs/%E2%80%AE" + ulid[:25], token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "NUL in id", method: "GET", path: "/v1/jobs/" + ulid[:25] + "%00/events", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "homoglyph job type", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: `{"type":"n\u043e\u043ep","input":{}}`, status: 422, code: api.CodeUnknownJobType},
		{name: "invalid UTF-8 name", method: "POST", path: "/v1/jobs", token: alice, ct: json, body: submit("{\"name\":\"\xff\xfe\",\"format\":\"csv\",\"content\":\"artist,title\\nA,B\"}"), status: 202},
		// Tokens.
		{name: "forged signature", method: "GET", path: "/v1/jobs", token: hs(sub("alice"), []byte("not-the-secret-not-the-secret-not-the-secret"), nil), status: 401, code: api.CodeUnauthorized},
		{name: "expired", method: "GET", path: "/v1/jobs", token: expired, status: 401, code: api.CodeUnauthorized},
		{name: "alg none", method: "GET", path: "/v1/jobs", token: none, status: 401, code: api.CodeUnauthorized},
		{name: "RS256 at an HS256-only gateway", method: "GET", path: "/v1/jobs", token: rs256, status: 401, code: api.CodeUnauthorized},
		{name: "jku/jwk headers", method: "GET", path: "/v1/jobs", token: jku, status: 401, code: api.CodeUnauthorized},
		{name: "kid path traversal, empty key", method: "GET", path: "/v1/jobs", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, sub("alice"))
			tok.Header["kid"] = "../../../../dev/null"
			s, _ := tok.SignedString([]byte{0})
			return s
		}(), status: 401, code: api.CodeUnauthorized},
		{name: "sub too long", method: "GET", path: "/v1/jobs", token: hs(sub(otherDoc), []byte(testSecret), nil), status: 401, code: api.CodeUnauthorized},
		{name: "token over 8 KiB as a session", method: "POST", path: "/v1/session", ct: json, body: `{"token":"` + hs(jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp, ID: strings.Repeat("j", 6500)}, []byte(testSecret), nil) + `"}`, status: 422, code: api.CodeInvalidInput},
		{name: "empty bearer", method: "GET", path: "/v1/jobs", hdr: []string{"Authorization", "Bearer "}, status: 401, code: api.CodeUnauthorized},
		{name: "basic auth", method: "GET", path: "/v1/jobs", hdr: []string{"Authorization", "Basic YWxpY2U6YWxpY2U="}, status: 401, code: api.CodeUnauthorized},
		{name: "query token on REST", method: "GET", path: "/v1/jobs?access_token=" + alice, status: 401, code: api.CodeUnauthorized},
		{name: "stream token reads REST", method: "GET", path: "/v1/jobs/" + aliceJob.ID, token: streamTok, status: 403, code: api.CodeForbidden},
		{name: "stream token submits", method: "POST", path: "/v1/jobs", token: streamTok, ct: json, body: `{"type":"noop","input":{}}`, status: 403, code: api.CodeForbidden},
		{name: "wildcard sub is just a name", method: "GET", path: "/v1/jobs", token: hs(sub("alice.>"), []byte(testSecret), nil), status: 200},
		// Another user's ids and cursors.
		{name: "another user's job", method: "GET", path: "/v1/jobs/" + bobJob.ID, token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "another user's job, cancel", method: "POST", path: "/v1/jobs/" + bobJob.ID + "/cancel", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "another user's job, stream", method: "GET", path: "/v1/jobs/" + bobJob.ID + "/events?lastEventId=1", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "another user's job, legacy", method: "GET", path: "/library/sync/" + bobJob.ID + "/progress", token: alice, status: 404, code: api.CodeJobNotFound},
		{name: "another owner's library cursor", method: "GET", path: "/v1/library?cursor=bob." + strings.Repeat("0", 32), token: alice, status: 400, code: api.CodeBadRequest},
		// Limits.
		{name: "negative limit", method: "GET", path: "/v1/jobs?limit=-1", token: alice, status: 400, code: api.CodeBadRequest},
		{name: "zero limit", method: "GET", path: "/v1/library?limit=0", token: alice, status: 400, code: api.CodeBadRequest},
		{name: "overflowing limit", method: "GET", path: "/v1/jobs?limit=99999999999999999999999", token: alice, status: 400, code: api.CodeBadRequest},
		{name: "float limit", method: "GET", path: "/v1/jobs?limit=1e3", token: alice, status: 400, code: api.CodeBadRequest},
		{name: "limit past the max", method: "GET", path: "/v1/library?limit=501", token: alice, status: 400, code: api.CodeBadRequest},
		// Protocol abuse.
		{name: "unknown method", method: "PUT", path: "/v1/jobs", token: alice, status: 404, code: api.CodeNotFound},
		{name: "TRACE", method: "TRACE", path: "/v1/jobs", token: alice, status: 404, code: api.CodeNotFound},
		{name: "URL over the header buffer", method: "GET", path: "/v1/jobs/" + strings.Repeat("A", 10000), token: alice, status: 431, code: api.CodeBadRequest},
		{name: "cross-site cookie write", method: "POST", path: "/v1/jobs", ct: json, body: `{"type":"noop","input":{}}`,
			hdr: []string{"Cookie", "jobwire_token=" + alice, "Origin", "https://evil.example.com"}, status: 403, code: api.CodeForbidden},
		{name: "smuggling: Content-Length and Transfer-Encoding", raw: "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice +
			"\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, code: api.CodeBadRequest},
	}
	if len(rows) < 40 {
		t.Fatalf("only %d hostile requests", len(rows))
	}
	for _, h := range rows {
		got := rawRequest(t, b.gw.Addr(), h.build())
		code := errorCode(got.body)
		if got.status != h.status || code != h.code {
			t.Errorf("%s: got %d %q %.200s, want %d %q", h.name, got.status, code, got.body, h.status, h.code)
		}
		if got.header.Get("X-Injected") != "" || got.header.Get("Set-Cookie") == "a=b" {
			t.Errorf("%s: a request header came back: %v", h.name, got.header)
		}
		if got.status >= 500 {
			t.Errorf("%s: server error %d", h.name, got.status)
		}
	}

	// The gateway is still healthy and serves normal requests.
	if status, _, body := request(t, "GET", b.url+"/healthz", "", "", ""); status != 200 {
		t.Fatalf("healthz: %d %s", status, body)
	}
	c := b.client(t, "alice")
	st := b.submitSteps(t, c, stepsInput{Steps: 2})
	if got := waitState(t, c, st.ID, api.StateCompleted); got.Progress.Percent != 100 {
		t.Fatalf("normal job after the hostile ones: %+v", got)
	}
	if _, err := b.client(t, "bob").Get(t.Context(), bobJob.ID); err != nil {
		t.Fatalf("bob's job: %v", err)
	}
}

// Playlist limits that JSON Schema cannot express (lines, line length, text-ness) are the importer's:
// such a submit is queued and the job fails at once, with a code that says why, and no retry.
func TestPlaylistLimitsFailTheJobAtOnce(t *testing.T) {
	b := setup(t)
	c := b.client(t, "alice")
	for _, row := range []struct {
		name, format, content, code string
	}{
		{"too many lines", "m3u", strings.Repeat("a\n", 20001), "playlist_too_large"},
		{"line too long", "csv", "artist,title\n" + strings.Repeat("b", 5000), "playlist_too_large"},
		{"lone-CR lines count in m3u", "m3u", strings.Repeat("a\r", 20001), "playlist_too_large"},
		{"NUL byte", "m3u", "#EXTM3U\n\x00evil.mp3", "malformed_playlist"},
	} {
		raw, _ := encjson.Marshal(api.PlaylistImport{Name: row.name, Format: row.format, Content: row.content})
		st, _, err := c.Submit(t.Context(), api.SubmitRequest{Type: api.JobTypePlaylistImport, Input: raw}, "")
		if err != nil {
			t.Fatalf("%s: %v", row.name, err)
		}
		got := waitState(t, c, st.ID, api.StateFailed)
		if got.Attempt != 1 || got.Error == nil || got.Error.Code != row.code {
			t.Errorf("%s: %+v %+v, want failed on attempt 1 with %s", row.name, got, got.Error, row.code)
		}
	}
}
