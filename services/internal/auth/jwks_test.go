package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// provider is a real HTTPS identity provider's JWKS endpoint: what it publishes can change (a
// rotation), and it can go down (an outage).
type provider struct {
	srv      *httptest.Server
	mu       sync.Mutex
	body     []byte
	down     bool
	requests atomic.Int64
}

func newProvider(t *testing.T, body []byte) *provider {
	p := &provider{body: body}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.mu.Lock()
		body, down := p.body, p.down
		p.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) publish(body []byte) { p.mu.Lock(); p.body, p.down = body, false; p.mu.Unlock() }
func (p *provider) fail()               { p.mu.Lock(); p.down = true; p.mu.Unlock() }

func (p *provider) remote(t *testing.T, opts ...auth.RemoteOption) *auth.RemoteJWKS {
	t.Helper()
	opts = append([]auth.RemoteOption{auth.WithHTTPClient(p.srv.Client()), auth.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	r, err := auth.NewRemoteJWKS(context.Background(), p.srv.URL+"/.well-known/jwks.json", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	b, _ := k.Bytes() // 0x04 || x || y
	size := (len(b) - 1) / 2
	crv := map[int]string{32: "P-256", 48: "P-384"}[size]
	return map[string]any{"kty": "EC", "crv": crv, "kid": kid, "use": "sig", "x": b64(b[1 : 1+size]), "y": b64(b[1+size:])}
}

func newEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A provider rotates its keys and goes down: tokens signed with a key it has just published verify at
// once (an unknown kid refreshes the set), tokens of a retired key are refused, and during the outage
// the last good keys keep verifying.
func TestRemoteJWKSRotationAndOutage(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // last: after the provider and the refresher stop
	old, next, third := newEC(t, elliptic.P256()), newEC(t, elliptic.P384()), newEC(t, elliptic.P256())
	p := newProvider(t, jwks(t, ecJWK("old", &old.PublicKey)))
	r := p.remote(t, auth.WithMinRefresh(50*time.Millisecond), auth.WithRefresh(time.Hour))
	v, err := auth.NewVerifier(nil, auth.WithRemoteKeys(r))
	if err != nil {
		t.Fatal(err)
	}
	verify := func(name string, token string, ok bool) {
		t.Helper()
		id, err := v.Verify(token)
		if ok && (err != nil || id.Owner != "alice") {
			t.Errorf("%s: refused: %v", name, err)
		}
		if !ok && err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := claims()
	verify("ES256 by the published key", sign(t, jwt.SigningMethodES256, old, "old", c), true)
	verify("ES256 by another key with its kid", sign(t, jwt.SigningMethodES256, third, "old", c), false)
	verify("ES384 token naming a P-256 key", sign(t, jwt.SigningMethodES384, next, "old", c), false)

	// Rotation: the provider publishes the next key and retires the old one.
	time.Sleep(60 * time.Millisecond)
	p.publish(jwks(t, ecJWK("next", &next.PublicKey)))
	verify("ES384 by the new key, before any scheduled refresh", sign(t, jwt.SigningMethodES384, next, "next", c), true)
	verify("ES256 by the retired key", sign(t, jwt.SigningMethodES256, old, "old", c), false)

	// Outage: the provider answers 503; the last good keys keep working, unknown kids are refused.
	time.Sleep(60 * time.Millisecond)
	p.fail()
	verify("unknown kid during the outage", sign(t, jwt.SigningMethodES256, third, "third", c), false)
	for i := range 20 {
		verify(fmt.Sprintf("the current key during the outage (%d)", i), sign(t, jwt.SigningMethodES384, next, "next", c), true)
	}
	if keys := r.Keys(); len(keys) != 1 || keys[0].ID != "next" || keys[0].Alg != auth.AlgES384 {
		t.Fatalf("keys during the outage: %+v", keys)
	}

	// Recovery, with a set that mixes key types.
	time.Sleep(60 * time.Millisecond)
	p.publish(jwks(t, ecJWK("next", &next.PublicKey), ecJWK("third", &third.PublicKey), rsaJWK("r1", &keys().rsa1.PublicKey)))
	verify("the third key after the outage", sign(t, jwt.SigningMethodES256, third, "third", c), true)
	verify("RS256 after the outage", sign(t, jwt.SigningMethodRS256, keys().rsa1, "r1", c), true)
	verify("the next key still", sign(t, jwt.SigningMethodES384, next, "next", c), true)
}

// Tokens naming random kids cause at most one fetch per minimum interval, and a set without one
// usable key (or an oversized one) never replaces the good keys.
func TestRemoteJWKSRateLimitAndBadSets(t *testing.T) {
	k := newEC(t, elliptic.P256())
	p := newProvider(t, jwks(t, ecJWK("k", &k.PublicKey)))
	r := p.remote(t, auth.WithMinRefresh(300*time.Millisecond), auth.WithRefresh(time.Hour))
	v, _ := auth.NewVerifier(nil, auth.WithRemoteKeys(r))
	unknownKIDs := func() {
		for i := range 200 {
			if _, err := v.Verify(sign(t, jwt.SigningMethodES256, k, fmt.Sprintf("random-%d", i), claims())); err == nil {
				t.Fatal("a token naming an unknown kid was accepted")
			}
		}
	}
	unknownKIDs()
	if n := p.requests.Load(); n != 1 {
		t.Errorf("200 tokens with unknown kids right after the first fetch made %d requests, want 1", n)
	}
	time.Sleep(350 * time.Millisecond)
	unknownKIDs()
	if n := p.requests.Load(); n != 2 {
		t.Errorf("200 more after the minimum interval made %d requests in all, want 2", n)
	}

	bad := map[string][]byte{
		"no usable key":     jwks(t, map[string]any{"kty": "oct", "k": "c2VjcmV0"}),
		"private key":       jwks(t, map[string]any{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}),
		"not JSON":          []byte("<html>login</html>"),
		"larger than 1 MiB": []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`),
		"point off curve":   jwks(t, map[string]any{"kty": "EC", "crv": "P-256", "kid": "bad", "x": b64(make([]byte, 32)), "y": b64(make([]byte, 32))}),
	}
	for name, body := range bad {
		p.publish(body)
		r2, err := auth.NewRemoteJWKS(context.Background(), p.srv.URL, auth.WithHTTPClient(p.srv.Client()))
		if err == nil {
			r2.Close()
			t.Errorf("%s: a first fetch of it succeeded", name)
		}
	}
	streamstest.WaitFor(t, time.Second, func() error {
		if keys := r.Keys(); len(keys) != 1 || keys[0].ID != "k" {
			return fmt.Errorf("keys %+v", keys)
		}
		return nil
	})
}

// The set is fetched again on schedule, and retried sooner while the provider is down.
func TestRemoteJWKSRefreshesOnSchedule(t *testing.T) {
	a, b := newEC(t, elliptic.P256()), newEC(t, elliptic.P256())
	p := newProvider(t, jwks(t, ecJWK("a", &a.PublicKey)))
	r := p.remote(t, auth.WithRefresh(100*time.Millisecond), auth.WithMinRefresh(20*time.Millisecond))
	p.publish(jwks(t, ecJWK("a", &a.PublicKey), ecJWK("b", &b.PublicKey)))
	streamstest.WaitFor(t, 5*time.Second, func() error {
		if n := len(r.Keys()); n != 2 {
			return fmt.Errorf("%d keys, want 2", n)
		}
		return nil
	})
	p.fail()
	before := p.requests.Load()
	time.Sleep(300 * time.Millisecond)
	if n := p.requests.Load() - before; n < 3 {
		t.Errorf("%d fetches in 300 ms while the provider was down, want retries every 20 ms after a failure", n)
	}
	if n := len(r.Keys()); n != 2 {
		t.Errorf("the outage dropped keys: %d left", n)
	}
}

func TestNewRemoteJWKSRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"http://idp.example.com/jwks", "ftp://idp.example.com/jwks", "https:///jwks", "::", "file:///etc/jwks.json"} {
		if r, err := auth.NewRemoteJWKS(context.Background(), u); err == nil {
			r.Close()
			t.Errorf("%s accepted", u)
		}
	}
	// http on loopback is allowed; nothing listens there, so the first fetch fails with a clear error.
	_, err := auth.NewRemoteJWKS(context.Background(), "http://127.0.0.1:1/jwks", auth.WithHTTPClient(&http.Client{Timeout: time.Second}))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("loopback http: %v", err)
	}
}
