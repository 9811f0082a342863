package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// idp is an identity provider's HTTPS JWKS endpoint, on a certificate of its own CA.
type idp struct {
	srv      *httptest.Server
	mu       sync.Mutex
	keys     map[string]*ecdsa.PrivateKey
	down     bool
	requests atomic.Int64
}

func newIDP(t *testing.T) *idp {
	p := &idp{keys: map[string]*ecdsa.PrivateKey{}}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.down {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		var set []map[string]string
		for kid, k := range p.keys {
			b, _ := k.PublicKey.Bytes()
			enc := base64.RawURLEncoding.EncodeToString
			set = append(set, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256", "x": enc(b[1:33]), "y": enc(b[33:])})
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": set})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// rotate publishes a new key named kid and retires every other one.
func (p *idp) rotate(t *testing.T, kid string) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.keys, p.down = map[string]*ecdsa.PrivateKey{kid: k}, false
	p.mu.Unlock()
	return k
}

func (p *idp) setDown(down bool) { p.mu.Lock(); p.down = down; p.mu.Unlock() }

// caFile writes the provider's certificate as the PEM file a gateway trusts.
func (p *idp) caFile(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "idp-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func idpToken(t *testing.T, k *ecdsa.PrivateKey, kid, sub string, ttl time.Duration) string {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": sub, "iss": "https://idp.test", "iat": now.Unix(), "exp": now.Add(ttl).Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A gateway process verifies the tokens of an identity provider from its JWKS URL, follows a key
// rotation without a restart, keeps accepting the current key while the provider is down, and refuses
// tokens of a retired key and tokens that live longer than the maximum.
func TestGatewayFollowsTheIdentityProvidersKeys(t *testing.T) {
	srv := streamstest.RunServer(t)
	p := newIDP(t)
	first := p.rotate(t, "2026-01")
	httpAddr := testkit.FreeAddr(t)
	startProc(t, "gateway", map[string]string{
		"NATS_URL":                 srv.URL(),
		"JOBWIRE_HTTP_ADDR":        httpAddr,
		"JOBWIRE_JWT_JWKS_URL":     p.srv.URL + "/.well-known/jwks.json",
		"JOBWIRE_JWT_JWKS_CA":      p.caFile(t),
		"JOBWIRE_JWT_JWKS_REFRESH": "1s",
		"JOBWIRE_JWT_ISSUER":       "https://idp.test",
		"JOBWIRE_JWT_MAX_LIFETIME": "2h",
	}, "gateway")
	base := "http://" + httpAddr
	waitReady(t, base)
	status := func(tok string) int {
		code, _, _ := doRequest("GET", base+"/v1/jobs", tok)
		return code
	}
	if got := status(idpToken(t, first, "2026-01", "alice", time.Hour)); got != 200 {
		t.Fatalf("a token of the published key: %d", got)
	}
	if got := status(idpToken(t, first, "2026-01", "alice", 3*time.Hour)); got != 401 {
		t.Errorf("a token that lives 3 h past a 2 h maximum: %d", got)
	}

	// Rotation: a token of the new key is accepted within the refresh interval, without a restart.
	second := p.rotate(t, "2026-02")
	newTok := idpToken(t, second, "2026-02", "alice", time.Hour)
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if got := status(newTok); got != 200 {
			return fmt.Errorf("a token of the rotated key: %d", got)
		}
		return nil
	})
	if got := status(idpToken(t, first, "2026-01", "alice", time.Hour)); got != 401 {
		t.Errorf("a token of the retired key: %d", got)
	}

	// Outage: the provider answers 503 for several refresh intervals; the current key keeps working.
	p.setDown(true)
	before := p.requests.Load()
	deadline := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if got := status(newTok); got != 200 {
			t.Fatalf("during the outage a token of the current key got %d", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := p.requests.Load() - before; n < 2 {
		t.Errorf("the gateway fetched %d times during a 3.5 s outage with a 1 s refresh", n)
	}
	p.setDown(false)
}
