package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobwire/jobwire/services/internal/auth"
)

const secret = "0123456789abcdef0123456789abcdef-test"

// keys are generated once: RSA generation is slow.
var keys = sync.OnceValue(func() (k struct {
	rsa1, rsa2 *rsa.PrivateKey
	ed1, ed2   ed25519.PrivateKey
}) {
	var err error
	if k.rsa1, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	_, k.ed1, _ = ed25519.GenerateKey(rand.Reader)
	_, k.ed2, _ = ed25519.GenerateKey(rand.Reader)
	return k
})

func pemOf(t testing.TB, pubs ...any) []byte {
	t.Helper()
	var out []byte
	for _, p := range pubs {
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return out
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func edJWK(kid string, k ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(k)}
}

func jwks(t testing.TB, ks ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": ks})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims returns valid claims for alice, adjusted by mod.
func claims(mod ...func(*auth.Claims)) auth.Claims {
	now := time.Now()
	c := auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", IssuedAt: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
	for _, m := range mod {
		m(&c)
	}
	return c
}

// raw is claims() with one field replaced by v, any JSON type, as a hostile issuer might write it.
func raw(good func(*auth.Claims), field string, v any) jwt.MapClaims {
	b, _ := json.Marshal(claims(good))
	var m jwt.MapClaims
	json.Unmarshal(b, &m)
	m[field] = v
	return m
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewVerifierConfiguration(t *testing.T) {
	ks, err := auth.ParsePublicKeys(pemOf(t, keys().ed1.Public()))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		secret string
		opts   []auth.VerifierOption
		ok     bool
		algs   string
	}{
		"nothing":           {},
		"short secret":      {secret: "short"},
		"secret":            {secret: secret, ok: true, algs: "HS256"},
		"keys":              {opts: []auth.VerifierOption{auth.WithPublicKeys(ks)}, ok: true, algs: "EdDSA"},
		"both":              {secret: secret, opts: []auth.VerifierOption{auth.WithPublicKeys(ks)}, ok: true, algs: "HS256,EdDSA"},
		"leeway too large":  {secret: secret, opts: []auth.VerifierOption{auth.WithLeeway(6 * time.Minute)}},
		"negative leeway":   {secret: secret, opts: []auth.VerifierOption{auth.WithLeeway(-time.Second)}},
		"max leeway":        {secret: secret, opts: []auth.VerifierOption{auth.WithLeeway(auth.MaxLeeway)}, ok: true, algs: "HS256"},
		"negative lifetime": {secret: secret, opts: []auth.VerifierOption{auth.WithMaxLifetime(-time.Hour)}},
		"no lifetime limit": {secret: secret, opts: []auth.VerifierOption{auth.WithMaxLifetime(0)}, ok: true, algs: "HS256"},
	} {
		v, err := auth.NewVerifier([]byte(tc.secret), tc.opts...)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", name, err)
			continue
		}
		if err == nil && strings.Join(v.Algorithms(), ",") != tc.algs {
			t.Errorf("%s: algorithms %v, want %s", name, v.Algorithms(), tc.algs)
		}
	}
}

func TestVerifyHS256Claims(t *testing.T) {
	now := time.Now()
	v, err := auth.NewVerifier([]byte(secret), auth.WithIssuer("https://issuer.example"), auth.WithAudience("jobwire"))
	if err != nil {
		t.Fatal(err)
	}
	good := func(c *auth.Claims) {
		c.Issuer = "https://issuer.example"
		c.Audience = jwt.ClaimStrings{"other", "jobwire"}
	}
	hs := func(c jwt.Claims) string { return sign(t, jwt.SigningMethodHS256, []byte(secret), "", c) }
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"valid", hs(claims(good)), true},
		{"expired within leeway", hs(claims(good, func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second)) })), true},
		{"expired past leeway", hs(claims(good, func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) })), false},
		{"no exp", hs(claims(good, func(c *auth.Claims) { c.ExpiresAt = nil })), false},
		{"nbf within leeway", hs(claims(good, func(c *auth.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(10 * time.Second)) })), true},
		{"nbf in the future", hs(claims(good, func(c *auth.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) })), false},
		{"iat in the future", hs(claims(good, func(c *auth.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) })), false},
		{"no iss", hs(claims(good, func(c *auth.Claims) { c.Issuer = "" })), false},
		{"wrong iss", hs(claims(good, func(c *auth.Claims) { c.Issuer = "https://evil.example" })), false},
		{"no aud", hs(claims(good, func(c *auth.Claims) { c.Audience = nil })), false},
		{"wrong aud", hs(claims(good, func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"other"} })), false},
		{"no sub", hs(claims(good, func(c *auth.Claims) { c.Subject = "" })), false},
		{"sub too long", hs(claims(good, func(c *auth.Claims) { c.Subject = strings.Repeat("a", 300) })), false},
		{"unknown scope", hs(claims(good, func(c *auth.Claims) { c.Scope = "admin" })), false},
		{"bad job claim", hs(claims(good, func(c *auth.Claims) { c.Scope, c.JobID = auth.ScopeStream, "jobs.>" })), false},
		{"job claim without stream scope", hs(claims(good, func(c *auth.Claims) { c.JobID = "01JF0000000000000000000000" })), false},
		{"stream token", hs(claims(good, func(c *auth.Claims) { c.Scope, c.JobID = auth.ScopeStream, "01JF0000000000000000000000" })), true},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte(secret+"x"), "", claims(good)), false},
		{"HS512", sign(t, jwt.SigningMethodHS512, []byte(secret), "", claims(good)), false},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(good)), false},
		{"garbage", "a.b.c", false},
		{"empty", "", false},
		{"too long", hs(claims(good, func(c *auth.Claims) { c.ID = strings.Repeat("x", auth.MaxTokenLen) })), false},
		{"lives the maximum", hs(claims(good, func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(auth.DefaultMaxLifetime)) })), true},
		{"exp 100 years ahead", hs(claims(good, func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.AddDate(100, 0, 0)) })), false},
		{"exp 25 h ahead, no iat", hs(claims(good, func(c *auth.Claims) { c.IssuedAt, c.ExpiresAt = nil, jwt.NewNumericDate(now.Add(25*time.Hour)) })), false},
		{"issued 2 days ago for 3", hs(claims(good, func(c *auth.Claims) {
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(now.Add(-48*time.Hour)), jwt.NewNumericDate(now.Add(24*time.Hour))
		})), false},
		{"exp as a string", hs(raw(good, "exp", fmt.Sprint(now.Add(time.Hour).Unix()))), false},
		{"nbf as a string", hs(raw(good, "nbf", fmt.Sprint(now.Unix()))), false},
		{"iat as a string", hs(raw(good, "iat", fmt.Sprint(now.Unix()))), false},
		{"exp as a fraction", hs(raw(good, "exp", float64(now.Add(time.Hour).Unix())+0.5)), true},
		{"exp as a bool", hs(raw(good, "exp", true)), false},
		{"exp null", hs(raw(good, "exp", nil)), false},
	}
	for _, tc := range cases {
		id, err := v.Verify(tc.token)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && (err == nil || !errors.Is(err, auth.ErrInvalidToken)) {
			t.Errorf("%s: accepted (%+v) or not ErrInvalidToken: %v", tc.name, id, err)
		}
	}
	// Critical header extensions are refused.
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(good))
	tok.Header["crit"] = []string{"exp"}
	s, _ := tok.SignedString([]byte(secret))
	if _, err := v.Verify(s); err == nil {
		t.Error("crit header accepted")
	}
}

func TestVerifyClockAndLeeway(t *testing.T) {
	base := time.Now()
	now := base
	v, err := auth.NewVerifier([]byte(secret), auth.WithClock(func() time.Time { return now }), auth.WithLeeway(0))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.NewSigner([]byte(secret), "").Sign("alice", time.Minute, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	now = base.Add(2 * time.Minute)
	if _, err := v.Verify(tok); err == nil {
		t.Fatal("expired token accepted with leeway 0")
	}
}

func TestSignerAudienceAndRules(t *testing.T) {
	v, _ := auth.NewVerifier([]byte(secret), auth.WithAudience("jobwire"), auth.WithIssuer("iss"))
	plain, _ := auth.NewSigner([]byte(secret), "iss").Sign("alice", time.Minute, "", "")
	if _, err := v.Verify(plain); err == nil {
		t.Error("token without aud accepted by a verifier that requires one")
	}
	withAud, _ := auth.NewSigner([]byte(secret), "iss", auth.SignAudience("jobwire")).Sign("alice", time.Minute, auth.ScopeStream, "01JF0000000000000000000000")
	id, err := v.Verify(withAud)
	if err != nil || id.Scope != auth.ScopeStream || id.JobID != "01JF0000000000000000000000" {
		t.Fatalf("stream token: %+v %v", id, err)
	}
	s := auth.NewSigner([]byte(secret), "")
	if _, err := s.Sign("alice", 0, "", ""); err == nil {
		t.Error("zero ttl signed")
	}
	if _, err := s.Sign("alice", time.Minute, "", "01JF0000000000000000000000"); err == nil {
		t.Error("job restriction without stream scope signed")
	}
}

func TestOwnerTokensNeverCollide(t *testing.T) {
	v, _ := auth.NewVerifier([]byte(secret))
	s := auth.NewSigner([]byte(secret), "")
	seen := map[string]string{}
	for _, sub := range []string{"alice", "alice.x", "alice_2Ex", "alice_2E", "alice.", "Alice", "alice@example.com", "alice_40example.com", "alice*", "alice>", "alice x", "ålice"} {
		tok, _ := s.Sign(sub, time.Minute, "", "")
		id, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("%q: %v", sub, err)
		}
		if id.Subject != sub {
			t.Fatalf("subject %q, want %q", id.Subject, sub)
		}
		if other, ok := seen[id.Owner]; ok {
			t.Fatalf("%q and %q share owner %q", sub, other, id.Owner)
		}
		if strings.ContainsAny(id.Owner, ".*> \t") {
			t.Fatalf("owner %q of %q is not subject-safe", id.Owner, sub)
		}
		seen[id.Owner] = sub
	}
}

func TestVerifyPublicKeys(t *testing.T) {
	k := keys()
	// PEM with an RSA and an Ed25519 key, no kid.
	pemSet, err := auth.ParsePublicKeys(pemOf(t, &k.rsa1.PublicKey, k.ed1.Public()))
	if err != nil {
		t.Fatal(err)
	}
	// JWKS with kids.
	jwkSet, err := auth.ParsePublicKeys(jwks(t, rsaJWK("r1", &k.rsa1.PublicKey), rsaJWK("r2", &k.rsa2.PublicKey),
		edJWK("e1", k.ed1.Public().(ed25519.PublicKey)), edJWK("e2", k.ed2.Public().(ed25519.PublicKey))))
	if err != nil {
		t.Fatal(err)
	}
	if pemSet.Len() != 2 || jwkSet.Len() != 4 {
		t.Fatalf("keys: %d pem, %d jwks", pemSet.Len(), jwkSet.Len())
	}
	pemOnly, _ := auth.NewVerifier(nil, auth.WithPublicKeys(pemSet))
	jwkOnly, _ := auth.NewVerifier(nil, auth.WithPublicKeys(jwkSet))
	both, _ := auth.NewVerifier([]byte(secret), auth.WithPublicKeys(jwkSet))
	rsaPEM := pemOf(t, &k.rsa1.PublicKey)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&k.rsa1.PublicKey)
	edPub := []byte(k.ed1.Public().(ed25519.PublicKey))
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := claims()
	cases := []struct {
		name  string
		v     *auth.Verifier
		token string
		ok    bool
	}{
		{"RS256 pem", pemOnly, sign(t, jwt.SigningMethodRS256, k.rsa1, "", c), true},
		{"EdDSA pem", pemOnly, sign(t, jwt.SigningMethodEdDSA, k.ed1, "", c), true},
		{"RS256 pem, unknown signer", pemOnly, sign(t, jwt.SigningMethodRS256, k.rsa2, "", c), false},
		{"RS256 pem, any kid", pemOnly, sign(t, jwt.SigningMethodRS256, k.rsa1, "whatever", c), true},
		{"RS256 jwks by kid", jwkOnly, sign(t, jwt.SigningMethodRS256, k.rsa2, "r2", c), true},
		{"EdDSA jwks by kid", jwkOnly, sign(t, jwt.SigningMethodEdDSA, k.ed2, "e2", c), true},
		{"RS256 jwks no kid", jwkOnly, sign(t, jwt.SigningMethodRS256, k.rsa2, "", c), true},
		{"RS256 jwks wrong kid", jwkOnly, sign(t, jwt.SigningMethodRS256, k.rsa2, "r1", c), false},
		{"RS256 jwks unknown kid", jwkOnly, sign(t, jwt.SigningMethodRS256, k.rsa1, "r9", c), false},
		{"EdDSA with an RSA kid", jwkOnly, sign(t, jwt.SigningMethodEdDSA, k.ed1, "r1", c), false},
		{"RS256 with an Ed25519 kid", jwkOnly, sign(t, jwt.SigningMethodRS256, k.rsa1, "e1", c), false},
		{"RS256 kid not a string", jwkOnly, func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
			tok.Header["kid"] = 7
			s, _ := tok.SignedString(k.rsa1)
			return s
		}(), false},
		{"both: HS256", both, sign(t, jwt.SigningMethodHS256, []byte(secret), "", c), true},
		{"both: RS256", both, sign(t, jwt.SigningMethodRS256, k.rsa1, "r1", c), true},
		{"keys only: HS256 with the secret", jwkOnly, sign(t, jwt.SigningMethodHS256, []byte(secret), "", c), false},
		// Algorithm confusion: HMAC keyed with the public key's bytes.
		{"confusion: HS256 keyed with RSA PEM", pemOnly, sign(t, jwt.SigningMethodHS256, rsaPEM, "", c), false},
		{"confusion: HS256 keyed with RSA DER", pemOnly, sign(t, jwt.SigningMethodHS256, rsaDER, "", c), false},
		{"confusion: HS256 keyed with Ed25519 key", pemOnly, sign(t, jwt.SigningMethodHS256, edPub, "", c), false},
		{"confusion, both: HS256 keyed with RSA PEM", both, sign(t, jwt.SigningMethodHS256, rsaPEM, "r1", c), false},
		{"confusion, both: HS256 keyed with RSA DER", both, sign(t, jwt.SigningMethodHS256, rsaDER, "", c), false},
		{"RS512", jwkOnly, sign(t, jwt.SigningMethodRS512, k.rsa1, "r1", c), false},
		{"PS256", jwkOnly, sign(t, jwt.SigningMethodPS256, k.rsa1, "r1", c), false},
		{"ES256", jwkOnly, sign(t, jwt.SigningMethodES256, ecKey, "", c), false},
		{"alg none", jwkOnly, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "r1", c), false},
		{"RS256 expired", jwkOnly, sign(t, jwt.SigningMethodRS256, k.rsa1, "r1", claims(func(c *auth.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
		})), false},
		{"EdDSA no exp", jwkOnly, sign(t, jwt.SigningMethodEdDSA, k.ed1, "e1", claims(func(c *auth.Claims) { c.ExpiresAt = nil })), false},
	}
	for _, tc := range cases {
		id, err := tc.v.Verify(tc.token)
		if tc.ok && (err != nil || id.Owner != "alice") {
			t.Errorf("%s: %+v %v", tc.name, id, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestParsePublicKeys(t *testing.T) {
	k := keys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.ed1)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub := k.ed1.Public().(ed25519.PublicKey)
	withD := edJWK("e1", edPub)
	withD["d"] = b64(k.ed1.Seed())
	encKey := rsaJWK("enc", &k.rsa2.PublicKey)
	encKey["use"] = "enc"
	cases := []struct {
		name string
		data []byte
		n    int // keys, or -1 for an error
	}{
		{"pem rsa+ed", pemOf(t, &k.rsa1.PublicKey, edPub), 2},
		{"pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa1.PublicKey)}), 1},
		{"pem private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), -1},
		{"pem small rsa", pemOf(t, &small.PublicKey), -1},
		{"pem ec P-256", pemOf(t, &ecKey.PublicKey), 1},
		{"pem ec P-384", pemOf(t, &ec384.PublicKey), 1},
		{"pem ec P-521", pemOf(t, &ec521.PublicKey), -1},
		{"pem garbage", []byte("hello"), -1},
		{"empty", nil, -1},
		{"jwks", jwks(t, rsaJWK("r1", &k.rsa1.PublicKey), edJWK("e1", edPub)), 2},
		{"jwks skips enc and P-521", jwks(t, rsaJWK("r1", &k.rsa1.PublicKey), encKey, map[string]any{"kty": "EC", "crv": "P-521", "kid": "ec"}), 1},
		{"jwks ec P-256 and P-384", jwks(t, ecJWK("a", &ecKey.PublicKey), ecJWK("b", &ec384.PublicKey)), 2},
		{"jwks ec without y", jwks(t, map[string]any{"kty": "EC", "crv": "P-256", "kid": "ec", "x": ecJWK("a", &ecKey.PublicKey)["x"]}), -1},
		{"jwks ec short x", jwks(t, map[string]any{"kty": "EC", "crv": "P-256", "x": b64([]byte("short")), "y": ecJWK("a", &ecKey.PublicKey)["y"]}), -1},
		{"jwks ec P-256 key labelled ES384", jwks(t, edJWK("e1", edPub), func() map[string]any { m := ecJWK("a", &ecKey.PublicKey); m["alg"] = "ES384"; return m }()), 1},
		{"jwks skips RS512", jwks(t, edJWK("e1", edPub), func() map[string]any { m := rsaJWK("r", &k.rsa1.PublicKey); m["alg"] = "RS512"; return m }()), 1},
		{"jwks only unusable", jwks(t, encKey), -1},
		{"jwks private", jwks(t, withD), -1},
		{"jwks duplicate kid", jwks(t, rsaJWK("k", &k.rsa1.PublicKey), edJWK("k", edPub)), -1},
		{"jwks small rsa", jwks(t, rsaJWK("s", &small.PublicKey)), -1},
		{"jwks bad base64", jwks(t, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "!!"}), -1},
		{"jwks short ed", jwks(t, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64([]byte("short"))}), -1},
		{"jwks even exponent", jwks(t, map[string]any{"kty": "RSA", "n": b64(k.rsa1.N.Bytes()), "e": b64([]byte{2})}), -1},
		{"jwks huge exponent", jwks(t, map[string]any{"kty": "RSA", "n": b64(k.rsa1.N.Bytes()), "e": b64([]byte{1, 0, 0, 0, 1})}), -1},
		{"jwks malformed", []byte(`{"keys":[`), -1},
		{"jwks long kid", jwks(t, edJWK(strings.Repeat("k", 300), edPub)), -1},
	}
	for _, tc := range cases {
		ks, err := auth.ParsePublicKeys(tc.data)
		switch {
		case tc.n < 0 && err == nil:
			t.Errorf("%s: accepted %d keys", tc.name, ks.Len())
		case tc.n >= 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.n >= 0 && ks.Len() != tc.n:
			t.Errorf("%s: %d keys, want %d", tc.name, ks.Len(), tc.n)
		}
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "keys.pem")
	os.WriteFile(p, pemOf(t, edPub), 0o600)
	if ks, err := auth.LoadPublicKeys(p); err != nil || ks.Len() != 1 {
		t.Errorf("load: %v", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2<<20), 0o600)
	if _, err := auth.LoadPublicKeys(big); err == nil {
		t.Error("2 MiB key file accepted")
	}
	if _, err := auth.LoadPublicKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}
