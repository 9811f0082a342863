package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
)

// framingReply is what a raw request got: its first answer, and whether the connection then closed
// without a second one.
type framingReply struct {
	status int
	header http.Header
	body   string
	closed bool // the connection ended right after the first answer
	second string
}

// sendRaw writes req verbatim on a fresh connection and reads the first answer, then waits a moment
// for a second one (the answer to a smuggled request).
func sendRaw(t *testing.T, addr, req string) framingReply {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := framingReply{status: resp.StatusCode, header: resp.Header, body: string(body)}
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if next, err := http.ReadResponse(r, nil); err == nil {
		out.second = next.Status
	} else {
		out.closed = err == io.EOF || err == io.ErrUnexpectedEOF || strings.Contains(err.Error(), "reset")
	}
	return out
}

// Requests whose framing is ambiguous, or whose head is malformed, get a 400 and a closed connection,
// the request hidden behind them is never answered, and no answer quotes the request.
func TestAmbiguousFramingIsRefusedAndTheConnectionClosed(t *testing.T) {
	b := setup(t)
	tok := b.token(t, "alice")
	const secretCookie = "jobwire_token=COOKIE-SECRET-0123"
	smuggled := "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
	post := func(headers string, body string) string {
		return "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nCookie: " + secretCookie +
			"\r\nContent-Type: application/json\r\n" + headers + "\r\n" + body + smuggled
	}
	noop := `{"type":"noop","input":{}}`
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(noop), noop)
	rows := []struct {
		name, req string
		status    int
	}{
		{"CL.TE chunked", post(fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", len(chunked)), chunked), 400},
		{"CL.TE CHUNKED", post(fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: CHUNKED\r\n", len(chunked)), chunked), 400},
		{"CL.TE chunked, identity", post(fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked, identity\r\n", len(chunked)), chunked), 400},
		{"CL.TE with a tab", post(fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding:\tchunked\r\n", len(chunked)), chunked), 400},
		{"CL.TE xchunked", post(fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: xchunked\r\n", len(chunked)), chunked), 400},
		{"TE.CL", post(fmt.Sprintf("Transfer-Encoding: chunked\r\nContent-Length: %d\r\n", len(chunked)), chunked), 400},
		{"two different Content-Lengths", post(fmt.Sprintf("Content-Length: %d\r\nContent-Length: 2\r\n", len(noop)), noop), 400},
		{"two equal Content-Lengths", post(fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n", len(noop), len(noop)), noop), 400},
		{"folded Authorization", "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n " + tok + "\r\n\r\n" + smuggled, 400},
		{"folded header", "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nX-Note: a\r\n\tb\r\n\r\n" + smuggled, 400},
		{"space before the colon", "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nCookie: " + secretCookie + "\r\nBad : x\r\n\r\n" + smuggled, 400},
		{"negative Content-Length", post("Content-Length: -1\r\n", ""), 400},
		{"Content-Length over the body limit", post("Content-Length: 999999999\r\n", ""), 413},
		{"bad chunk size", post("Transfer-Encoding: chunked\r\n", "zz\r\nxx\r\n0\r\n\r\n"), 400},
		{"headers over 8 KiB", "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nX-Big: " + strings.Repeat("a", 9000) + "\r\n\r\n", 431},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			got := sendRaw(t, b.gw.Addr(), row.req)
			if got.status != row.status {
				t.Errorf("status %d %s, want %d", got.status, got.body, row.status)
			}
			if !got.closed || got.second != "" {
				t.Errorf("the connection stayed open (closed %v), a smuggled request was answered: %q", got.closed, got.second)
			}
			for _, secret := range []string{tok, "COOKIE-SECRET", "Bearer", "Host:", "contents"} {
				if strings.Contains(got.body, secret) {
					t.Errorf("the answer quotes the request (%q): %s", secret, got.body)
				}
			}
			if got.header.Get("X-Content-Type-Options") != "nosniff" || got.header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("security headers missing: %v", got.header)
			}
			if got.status == 400 && errorCode([]byte(got.body)) != api.CodeBadRequest {
				t.Errorf("body %s", got.body)
			}
		})
	}
	// A plain keep-alive request on one connection is answered, and so is the next one after it.
	two := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	if got := sendRaw(t, b.gw.Addr(), two); got.status != 200 || got.second != "200 OK" {
		t.Fatalf("keep-alive: %d then %q", got.status, got.second)
	}
}
