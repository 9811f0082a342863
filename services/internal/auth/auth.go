// Package auth verifies and issues the JWTs that identify jobwire's users. A token's sub is the user id;
// Owner maps it to the subject-safe token that keys and subjects carry.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobwire/jobwire/streams"
)

// ErrInvalidToken wraps every reason a token is refused (answered with 401).
var ErrInvalidToken = errors.New("invalid token")

// DefaultLeeway is the clock skew tolerated on exp, nbf and iat; MaxLeeway bounds what may be configured.
const (
	DefaultLeeway = 30 * time.Second
	MaxLeeway     = 5 * time.Minute
)

// MaxTokenLen bounds the length of a token: a longer one is refused before it is parsed.
const MaxTokenLen = 8 << 10

// MinSecretLen is the shortest HS256 secret accepted.
const MinSecretLen = 32

// Claims are jobwire's JWT claims.
type Claims struct {
	jwt.RegisteredClaims
	// Scope limits what the token may do. Empty means a full user token; "stream" means SSE reads only.
	Scope string `json:"scope,omitempty"`
	// JobID, on a stream token, limits it to one job's stream.
	JobID string `json:"job,omitempty"`
}

// ScopeStream marks short-lived tokens that may only open SSE streams.
const ScopeStream = "stream"

// Identity is who a verified token speaks for.
type Identity struct {
	// Subject is the token's sub, as the issuer wrote it.
	Subject string
	// Owner is OwnerToken(Subject): safe in subjects and keys.
	Owner     string
	ExpiresAt time.Time
	Scope     string
	JobID     string
}

// Verifier checks tokens. HS256 tokens are accepted only when it has a secret, RS256 and EdDSA tokens
// only when it has public keys of that type; every other algorithm, "none" included, is refused, and
// the algorithm must match the key's type (an HS256 token "signed" with an RSA public key's bytes is
// refused). exp is required; nbf and iat are checked when present; iss and aud when configured; all with
// a bounded leeway. A Verifier is safe for concurrent use.
type Verifier struct {
	secret   []byte
	keys     *KeySet
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	methods  []string
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithIssuer requires the iss claim to equal iss.
func WithIssuer(iss string) VerifierOption { return func(v *Verifier) { v.issuer = iss } }

// WithAudience requires the aud claim to contain aud.
func WithAudience(aud string) VerifierOption { return func(v *Verifier) { v.audience = aud } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) VerifierOption { return func(v *Verifier) { v.now = now } }

// WithLeeway sets the clock skew tolerated on exp, nbf and iat (0..MaxLeeway; default DefaultLeeway).
func WithLeeway(d time.Duration) VerifierOption { return func(v *Verifier) { v.leeway = d } }

// WithPublicKeys makes the Verifier accept RS256 and EdDSA tokens signed by the keys of ks.
func WithPublicKeys(ks *KeySet) VerifierOption { return func(v *Verifier) { v.keys = ks } }

// NewVerifier returns a Verifier. secret, when not empty, enables HS256 and must be at least
// MinSecretLen bytes; it may be nil when WithPublicKeys gives keys. At least one of the two is required.
func NewVerifier(secret []byte, opts ...VerifierOption) (*Verifier, error) {
	v := &Verifier{secret: secret, leeway: DefaultLeeway, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	if len(secret) > 0 && len(secret) < MinSecretLen {
		return nil, fmt.Errorf("jwt secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	if v.leeway < 0 || v.leeway > MaxLeeway {
		return nil, fmt.Errorf("jwt leeway %s not in 0..%s", v.leeway, MaxLeeway)
	}
	if len(secret) > 0 {
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	for _, alg := range []string{AlgRS256, AlgEdDSA} {
		if v.keys.has(alg) {
			v.methods = append(v.methods, alg)
		}
	}
	if len(v.methods) == 0 {
		return nil, errors.New("no way to verify tokens: set a jwt secret or public keys")
	}
	return v, nil
}

// Algorithms returns the algorithms the Verifier accepts.
func (v *Verifier) Algorithms() []string { return append([]string(nil), v.methods...) }

// Leeway returns the tolerated clock skew.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// key is the jwt.Keyfunc: the secret for HS256, the public key(s) of the matching type for the rest.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("critical header extensions are not supported")
	}
	kid := ""
	if raw, ok := t.Header["kid"]; ok {
		s, isString := raw.(string)
		if !isString || len(s) > maxKIDLen {
			return nil, errors.New("kid must be a short string")
		}
		kid = s
	}
	switch alg := t.Method.Alg(); alg {
	case jwt.SigningMethodHS256.Alg():
		if len(v.secret) == 0 {
			return nil, errors.New("HS256 is not accepted")
		}
		return v.secret, nil
	case AlgRS256:
		if _, ok := t.Method.(*jwt.SigningMethodRSA); !ok {
			return nil, fmt.Errorf("unexpected method for %s", alg)
		}
		return v.keys.lookup(alg, kid)
	case AlgEdDSA:
		if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
			return nil, fmt.Errorf("unexpected method for %s", alg)
		}
		return v.keys.lookup(alg, kid)
	default:
		return nil, fmt.Errorf("algorithm %q is not accepted", alg)
	}
}

// Verify parses and checks a token: its size, signature (see Verifier), exp (required), nbf and iat,
// iss and aud when configured, a non-empty sub that maps to an owner, a known scope and a valid job
// claim. Every failure wraps ErrInvalidToken.
func (v *Verifier) Verify(token string) (Identity, error) {
	if len(token) > MaxTokenLen {
		return Identity{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenLen)
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	}
	if v.issuer != "" {
		popts = append(popts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		popts = append(popts, jwt.WithAudience(v.audience))
	}
	var c Claims
	if _, err := jwt.ParseWithClaims(token, &c, v.key, popts...); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	owner, err := streams.OwnerToken(c.Subject)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: sub: %w", ErrInvalidToken, err)
	}
	if c.Scope != "" && c.Scope != ScopeStream {
		return Identity{}, fmt.Errorf("%w: unknown scope %q", ErrInvalidToken, c.Scope)
	}
	if c.JobID != "" && !streams.ValidJobID(c.JobID) {
		return Identity{}, fmt.Errorf("%w: bad job claim", ErrInvalidToken)
	}
	if c.JobID != "" && c.Scope != ScopeStream {
		return Identity{}, fmt.Errorf("%w: a job claim needs the stream scope", ErrInvalidToken)
	}
	return Identity{Subject: c.Subject, Owner: owner, ExpiresAt: c.ExpiresAt.Time, Scope: c.Scope, JobID: c.JobID}, nil
}

// Signer issues HS256 tokens (the gateway's stream tokens, development and admin tokens).
type Signer struct {
	secret   []byte
	issuer   string
	audience string
	now      func() time.Time
}

// SignerOption configures a Signer.
type SignerOption func(*Signer)

// SignAudience puts aud into the aud claim of every token (needed when verifiers require an audience).
func SignAudience(aud string) SignerOption { return func(s *Signer) { s.audience = aud } }

// NewSigner returns a Signer for secret; issuer, when set, goes into iss.
func NewSigner(secret []byte, issuer string, opts ...SignerOption) *Signer {
	s := &Signer{secret: secret, issuer: issuer, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Sign returns a token for sub valid for ttl, with the given scope and job restriction (both optional).
func (s *Signer) Sign(sub string, ttl time.Duration, scope, jobID string) (string, error) {
	if sub == "" {
		return "", errors.New("sign token: empty subject")
	}
	if ttl <= 0 {
		return "", errors.New("sign token: ttl must be positive")
	}
	if jobID != "" && scope != ScopeStream {
		return "", errors.New("sign token: a job restriction needs the stream scope")
	}
	now := s.now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			Issuer:    s.issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Scope: scope,
		JobID: jobID,
	}
	if s.audience != "" {
		c.Audience = jwt.ClaimStrings{s.audience}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}
