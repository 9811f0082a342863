package gateway_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/streams"
)

// FuzzValidJobID: an id passes only if it is a canonical ULID, which is subject- and key-safe.
func FuzzValidJobID(f *testing.F) {
	f.Add("01JF0000000000000000000000")
	f.Add(streams.NewJobID(time.Now()))
	f.Add("01jf0000000000000000000000")
	f.Add("8ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("01JF000000000000000000000*")
	f.Add("01JF00000000000000000000.>")
	f.Add("０1JF000000000000000000000")
	f.Add("01JF0000000000000000000000\x00")
	f.Fuzz(func(t *testing.T, id string) {
		valid := streams.ValidJobID(id)
		u, err := ulid.ParseStrict(id)
		canonical := err == nil && u.String() == id
		if valid != canonical {
			t.Fatalf("ValidJobID(%q) = %v, canonical ULID: %v (%v)", id, valid, canonical, err)
		}
		if !valid {
			return
		}
		for i := 0; i < len(id); i++ {
			if c := id[i]; !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
				t.Fatalf("valid id %q holds %q", id, c)
			}
		}
		if streams.JobIDTime(id).IsZero() {
			t.Fatalf("valid id %q has no time", id)
		}
	})
}

// decodeOwner inverts streams.OwnerToken: proof that the mapping is injective.
func decodeOwner(tok string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '_' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tok) {
			return "", false
		}
		var v byte
		for _, h := range []byte{tok[i+1], tok[i+2]} {
			switch {
			case h >= '0' && h <= '9':
				v = v<<4 | (h - '0')
			case h >= 'A' && h <= 'F':
				v = v<<4 | (h - 'A' + 10)
			default:
				return "", false
			}
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), true
}

func subjectSafe(tok string) bool {
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return tok != ""
}

// FuzzOwnerToken: every user id maps to a subject-safe token that ValidOwnerToken accepts and that
// decodes back to it, so two user ids never share a token; ValidOwnerToken never accepts anything
// unsafe.
func FuzzOwnerToken(f *testing.F) {
	for _, pair := range [][2]string{{"alice", "alice.x"}, {"alice.x", "alice_2Ex"}, {"alice_2E", "alice."},
		{"a@b.c", "a_40b_2Ec"}, {"*", ">"}, {"ålice", "alice"}, {"", "x"}, {"\x00", "_00"}} {
		f.Add(pair[0], pair[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, errA := streams.OwnerToken(a)
		tb, errB := streams.OwnerToken(b)
		for _, c := range []struct {
			sub, tok string
			err      error
		}{{a, ta, errA}, {b, tb, errB}} {
			if (c.err == nil) != (c.sub != "" && len(c.sub) <= streams.MaxSubjectLen) {
				t.Fatalf("OwnerToken(%q): %v", c.sub, c.err)
			}
			if c.err != nil {
				continue
			}
			if !subjectSafe(c.tok) || !streams.ValidOwnerToken(c.tok) {
				t.Fatalf("OwnerToken(%q) = %q: not a safe, valid token", c.sub, c.tok)
			}
			if back, ok := decodeOwner(c.tok); !ok || back != c.sub {
				t.Fatalf("OwnerToken(%q) = %q decodes to %q", c.sub, c.tok, back)
			}
		}
		if errA == nil && errB == nil && (ta == tb) != (a == b) {
			t.Fatalf("OwnerToken(%q) = %q, OwnerToken(%q) = %q", a, ta, b, tb)
		}
		// Arbitrary strings: ValidOwnerToken accepts only safe ones, which decode.
		for _, s := range []string{a, b} {
			if streams.ValidOwnerToken(s) {
				if !subjectSafe(s) {
					t.Fatalf("ValidOwnerToken(%q) but unsafe", s)
				}
				if _, ok := decodeOwner(s); !ok {
					t.Fatalf("ValidOwnerToken(%q) but it does not decode", s)
				}
			}
		}
	})
}

// jsonDepth returns the nesting depth of valid JSON.
func jsonDepth(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// FuzzSubmitBody drives the real handlers (decodeJSON, validateInput, the playlist checks, sessions,
// stream tokens) through Fiber's app.Test: whatever the body and content type, the answer is a
// client error or a success, never a 5xx, and JSON deeper than the limit is always refused.
func FuzzSubmitBody(f *testing.F) {
	b := setup(f, withGateway(func(c *gateway.Config) {
		c.SubmitRate = gateway.Rate{N: -1}
		c.BodyLimit = 64 << 10
	}))
	tok, err := b.signer.Sign("fuzz", time.Hour, "", "")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"type":"noop","input":{}}`,
		`{"type":"playlist.import","input":{"name":"x","format":"m3u","content":"#EXTM3U\nA - B.mp3"}}`,
		`{"type":"playlist.import","input":{"name":"x","format":"csv","content":"artist,title\nA,B"}}`,
		`{"type":"playlist.import","input":{"name":"x","format":"json","content":"[{\"artist\":\"A\",\"title\":\"B\"}]"}}`,
		`{"type":"playlist.import","input":{"name":"x","format":"xspf","content":"<playlist/>"}}`,
		`{"type":"playlist.import","input":{"name":"x","format":"m3u","content":"a\u0000b"}}`,
		`{"type":"noop","input":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"type":"noop","runAt":"2030-01-01T00:00:00Z","input":null}`,
		`{"type":7}`, `[]`, `{"type":"noop"}{}`, `{"name":"x","format":"csv","content":"a,b"}`,
		`{"token":"a.b.c"}`, `{"jobId":"01JF0000000000000000000000"}`, `{"jobId":"*"}`,
	} {
		for route := range uint8(4) {
			f.Add(route, "application/json", []byte(s), "")
		}
	}
	f.Add(uint8(0), "text/plain", []byte(`{"type":"noop"}`), "key")
	f.Add(uint8(0), "application/json; charset=utf-8", []byte(`{"type":"noop","input":1}`), "k\r\nX: y")
	f.Add(uint8(1), "0", []byte("0"), "\b") // a control byte in a header value: the parser refuses it
	routes := []string{"/v1/jobs", "/library/sync", "/v1/session", "/v1/stream-tokens"}
	ok := map[string]map[int]bool{
		"/v1/jobs":          {200: true, 202: true, 400: true, 413: true, 415: true, 422: true},
		"/library/sync":     {200: true, 202: true, 400: true, 413: true, 415: true, 422: true},
		"/v1/session":       {204: true, 400: true, 401: true, 403: true, 413: true, 415: true, 422: true},
		"/v1/stream-tokens": {201: true, 400: true, 404: true, 413: true, 415: true, 422: true},
	}
	f.Fuzz(func(t *testing.T, route uint8, ct string, body []byte, key string) {
		path := routes[int(route)%len(routes)]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", ct)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := b.gw.App().Test(req, -1)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				t.Skip("request not writable") // net/http refused the header bytes
			}
			if strings.Contains(err.Error(), "error when reading request headers") {
				// fasthttp refused the head before any handler; over a socket that is a 400
				// (TestAmbiguousFramingIsRefusedAndTheConnectionClosed covers the wire answer).
				t.Skip("request head refused by the parser")
			}
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if !ok[path][resp.StatusCode] {
			t.Fatalf("POST %s %q %q: %d %s", path, ct, body, resp.StatusCode, out)
		}
		if resp.StatusCode >= 400 && errorCode(out) == "" {
			t.Fatalf("POST %s: %d without an error code: %s", path, resp.StatusCode, out)
		}
		mt, _, _ := strings.Cut(ct, ";")
		isJSON := strings.EqualFold(strings.TrimSpace(mt), "application/json")
		if isJSON && json.Valid(body) && jsonDepth(body) > gateway.MaxJSONDepth && resp.StatusCode != 400 {
			t.Fatalf("JSON %d deep answered %d", jsonDepth(body), resp.StatusCode)
		}
	})
}
