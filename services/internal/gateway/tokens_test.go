package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// issuedStreamToken asks the gateway for a stream token with body.
func issuedStreamToken(t *testing.T, b *bundle, token, body string) (string, time.Time) {
	t.Helper()
	status, _, resp := request(t, "POST", b.url+"/v1/stream-tokens", token, "application/json", body)
	if status != 201 {
		t.Fatalf("stream token: %d %s", status, resp)
	}
	var st struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	if err := json.Unmarshal(resp, &st); err != nil {
		t.Fatal(err)
	}
	return st.Token, st.ExpiresAt
}

// streamStatus opens url, returns the status and closes the stream.
func streamStatus(t *testing.T, url string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body []byte
	if resp.StatusCode != 200 {
		body, _ = io.ReadAll(resp.Body)
	}
	return resp.StatusCode, resp.Header, body
}

func TestStreamTokensOnlyReadStreams(t *testing.T) {
	b := setup(t)
	full := b.token(t, "alice")
	c := b.client(t, "alice")
	job := b.submitSteps(t, c, stepsInput{Steps: 1, Block: true})
	other := b.submitSteps(t, c, stepsInput{Steps: 1, Block: true})
	waitState(t, c, job.ID, api.StateActive)

	// Default lifetime: 15 minutes.
	any, exp := issuedStreamToken(t, b, full, "")
	if d := time.Until(exp); d < 14*time.Minute || d > 15*time.Minute+time.Second {
		t.Fatalf("stream token lives %s", d)
	}
	one, _ := issuedStreamToken(t, b, full, `{"jobId":"`+job.ID+`"}`)

	// Valid for SSE reads only.
	for _, tok := range []string{any, one} {
		for _, r := range []struct{ method, path, ct, body string }{
			{"GET", "/v1/jobs", "", ""},
			{"GET", "/v1/jobs/" + job.ID, "", ""},
			{"GET", "/v1/jobs/" + job.ID + "/history", "", ""},
			{"POST", "/v1/jobs/" + job.ID + "/cancel", "", ""},
			{"POST", "/v1/jobs/" + job.ID + "/retry", "", ""},
			{"POST", "/v1/jobs", "application/json", `{"type":"noop","input":{}}`},
			{"POST", "/v1/stream-tokens", "application/json", `{}`},
			{"GET", "/v1/library", "", ""},
			{"GET", "/library/sync/" + job.ID, "", ""},
			{"POST", "/library/sync", "application/json", `{"name":"x","format":"csv","content":"a,b"}`},
		} {
			status, _, body := request(t, r.method, b.url+r.path, tok, r.ct, r.body)
			if status != 403 || errorCode(body) != api.CodeForbidden {
				t.Errorf("stream token on %s %s: %d %s", r.method, r.path, status, body)
			}
		}
		// It cannot become a session either.
		status, _, body := request(t, "POST", b.url+"/v1/session", "", "application/json", `{"token":"`+tok+`"}`)
		if status != 403 {
			t.Errorf("stream token as a session: %d %s", status, body)
		}
	}
	// The unrestricted one opens every stream of its user, in the header or the query.
	for _, path := range []string{"/v1/events", "/v1/jobs/" + job.ID + "/events", "/v1/jobs/" + other.ID + "/events", "/library/sync/" + job.ID + "/progress"} {
		if status, _, body := streamStatus(t, b.url+path+"?access_token="+any); status != 200 {
			t.Errorf("%s with a stream token: %d %s", path, status, body)
		}
	}
	if status, _, body := streamStatus(t, b.url+"/v1/events", "Authorization", "Bearer "+any); status != 200 {
		t.Errorf("stream token in the header: %d %s", status, body)
	}
	// The restricted one opens its job's streams only.
	if status, _, body := streamStatus(t, b.url+"/v1/jobs/"+job.ID+"/events?access_token="+one); status != 200 {
		t.Errorf("own job: %d %s", status, body)
	}
	if status, _, body := streamStatus(t, b.url+"/library/sync/"+job.ID+"/progress?access_token="+one); status != 200 {
		t.Errorf("own job, legacy: %d %s", status, body)
	}
	if status, _, body := streamStatus(t, b.url+"/v1/jobs/"+other.ID+"/events?access_token="+one); status != 404 || errorCode(body) != api.CodeJobNotFound {
		t.Errorf("other job: %d %s", status, body)
	}
	if status, _, body := streamStatus(t, b.url+"/v1/events?access_token="+one); status != 403 || errorCode(body) != api.CodeForbidden {
		t.Errorf("all jobs: %d %s", status, body)
	}
	// A stream token never outlives the token it came from.
	short, _ := b.signer.Sign("alice", 90*time.Second, "", "")
	if _, exp := issuedStreamToken(t, b, short, ""); time.Until(exp) > 90*time.Second {
		t.Errorf("stream token from a 90 s token lives %s", time.Until(exp))
	}
	// The job claim must be a job id.
	if status, _, body := request(t, "POST", b.url+"/v1/stream-tokens", full, "application/json", `{"jobId":"jobs.>"}`); status != 404 {
		t.Errorf("bad jobId: %d %s", status, body)
	}
	if status, _, body := request(t, "POST", b.url+"/v1/stream-tokens", full, "application/json", `{"jobId":"`+job.ID+`","ttl":"99h"}`); status != 422 {
		t.Errorf("unknown field: %d %s", status, body)
	}
}

// An open stream ends with "event: expired" when the token that opened it expires, whatever its kind.
func TestStreamEndsWhenItsTokenExpires(t *testing.T) {
	b := setup(t)
	for _, scope := range []string{"", auth.ScopeStream} {
		tok, err := b.signer.Sign("alice", 2*time.Second, scope, "")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := http.Get(b.url + "/v1/events?access_token=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body) // the server ends the stream
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasSuffix(string(body), "event: expired\ndata: {\"reason\":\"max_duration\"}\n\n") {
			t.Fatalf("scope %q: %d %q", scope, resp.StatusCode, body)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("scope %q: stream lasted %s with a 2 s token", scope, d)
		}
	}
}

func TestGatewayWithoutSecretIssuesNoStreamTokens(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(priv.Public())
	ks, err := auth.ParsePublicKeys(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(nil, auth.WithPublicKeys(ks))
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, withDeps(func(d *gateway.Deps) { d.Verifier, d.Signer = v, nil }))
	tok := signEd(t, priv, "", "alice", time.Hour)
	if status, _, body := request(t, "GET", b.url+"/v1/jobs", tok, "", ""); status != 200 {
		t.Fatalf("EdDSA token: %d %s", status, body)
	}
	// HS256 is off without a secret, even with the usual test secret.
	if status, _, _ := request(t, "GET", b.url+"/v1/jobs", b.token(t, "alice"), "", ""); status != 401 {
		t.Fatalf("HS256 token accepted by a keys-only gateway: %d", status)
	}
	if status, _, body := request(t, "POST", b.url+"/v1/stream-tokens", tok, "application/json", "{}"); status != 403 {
		t.Fatalf("stream token without a secret: %d %s", status, body)
	}
	// The session cookie works with public-key tokens.
	status, hdr, body := request(t, "POST", b.url+"/v1/session", "", "application/json", `{"token":"`+tok+`"}`)
	if status != 204 || !strings.Contains(hdr.Get("Set-Cookie"), "jobwire_token=") {
		t.Fatalf("session: %d %s", status, body)
	}
}

func signEd(t testing.TB, k ed25519.PrivateKey, kid, sub string, ttl time.Duration) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(ttl))})
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPublicKeyTokensAtTheGateway(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	var pemData []byte
	for _, pub := range []any{&rsaKey.PublicKey, edKey.Public()} {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	ks, err := auth.ParsePublicKeys(pemData)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier([]byte(testSecret), auth.WithPublicKeys(ks))
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, withDeps(func(d *gateway.Deps) { d.Verifier = v }))
	claims := jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}
	rs, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(rsaKey)
	confused, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pemData)
	rsAsEd := func() string {
		parts := strings.Split(rs, ".")
		hdr, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT"})
		return strings.Join([]string{b64url(hdr), parts[1], parts[2]}, ".")
	}()
	for name, tc := range map[string]struct {
		tok    string
		status int
	}{
		"RS256":                    {rs, 200},
		"EdDSA":                    {signEd(t, edKey, "", "alice", time.Hour), 200},
		"HS256":                    {b.token(t, "alice"), 200},
		"HS256 keyed with the PEM": {confused, 401},
		"RS256 relabelled EdDSA":   {rsAsEd, 401},
		"EdDSA expired":            {signEd(t, edKey, "", "alice", -time.Hour), 401},
	} {
		if status, _, body := request(t, "GET", b.url+"/v1/jobs", tc.tok, "", ""); status != tc.status {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	// A user's jobs are the same whichever key signed the token.
	st := b.submitSteps(t, api.NewClient(b.url, rs), stepsInput{Steps: 1})
	if _, err := api.NewClient(b.url, b.token(t, "alice")).Get(t.Context(), st.ID); err != nil {
		t.Errorf("HS256 alice cannot read RS256 alice's job: %v", err)
	}
}

// Tokens travel in query strings on stream routes; they must never reach the logs.
func TestQueryTokensAreNeverLogged(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := setup(t, withDeps(func(d *gateway.Deps) { d.Logger = logger }),
		withGateway(func(c *gateway.Config) { c.MaxStreamsPerUser = 2 }))
	tok := b.token(t, "alice")
	stream, _ := b.signer.Sign("alice", time.Minute, auth.ScopeStream, "")
	c := b.client(t, "alice")
	st := b.submitSteps(t, c, stepsInput{Steps: 1})
	waitState(t, c, st.ID, api.StateCompleted)
	secrets := []string{tok, stream}
	for _, s := range []string{tok, stream} {
		secrets = append(secrets, s[strings.LastIndexByte(s, '.')+1:]) // the signature alone
	}
	tampered := tok[:len(tok)-4] + "AAAA"
	secrets = append(secrets, tampered)
	urls := []string{
		"/v1/events?access_token=" + tok,
		"/v1/events?access_token=" + stream + "&lastEventId=999999",
		"/v1/jobs/" + st.ID + "/events?access_token=" + tok,
		"/v1/jobs/" + st.ID + "/events?access_token=" + tok + "&lastEventId=1",
		"/library/sync/" + st.ID + "/progress?access_token=" + stream,
		"/v1/jobs/" + streamsNewID() + "/events?access_token=" + tok,
		"/v1/jobs/..%2F..%2Fx/events?access_token=" + tok,
		"/v1/events?access_token=" + tampered,
		"/v1/jobs?access_token=" + tok,
		"/no/such/route?access_token=" + tok,
		"/library/sync/" + st.ID + "?access_token=" + tok,
	}
	var open []*http.Response
	for _, u := range urls {
		resp, err := http.Get(b.url + u)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, resp)
	}
	// Over the per-user limit: refused, and logged as such, without the token.
	for i := 0; i < 3; i++ {
		resp, err := http.Get(b.url + "/v1/events?access_token=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, resp)
	}
	for _, resp := range open {
		resp.Body.Close()
	}
	streamstest.WaitFor(t, 5*time.Second, func() error {
		if n := b.gw.Pool().Open(); n != 0 {
			return fmt.Errorf("%d streams open", n)
		}
		if !strings.Contains(logs.String(), "stream closed") {
			return fmt.Errorf("no stream closed yet")
		}
		return nil
	})
	out := logs.String()
	if !strings.Contains(out, "stream opened") {
		t.Fatalf("the log capture saw nothing: %q", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("a token reached the logs:\n%s", out)
		}
	}
	if strings.Contains(out, "access_token") {
		t.Fatalf("a query string reached the logs:\n%s", out)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func streamsNewID() string { return streams.NewJobID(time.Now()) }
