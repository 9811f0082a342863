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

// DefaultLeeway is the clock skew tolerated on exp and nbf.
const DefaultLeeway = 30 * time.Second

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

// Verifier checks HS256 tokens signed with a shared secret.
type Verifier struct {
	secret   []byte
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithIssuer requires the iss claim to equal iss.
func WithIssuer(iss string) VerifierOption { return func(v *Verifier) { v.issuer = iss } }

// WithAudience requires the aud claim to contain aud.
func WithAudience(aud string) VerifierOption { return func(v *Verifier) { v.audience = aud } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) VerifierOption { return func(v *Verifier) { v.now = now } }

// NewVerifier returns a Verifier for HS256 tokens signed with secret (at least 32 bytes).
func NewVerifier(secret []byte, opts ...VerifierOption) (*Verifier, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("jwt secret must be at least 32 bytes, got %d", len(secret))
	}
	v := &Verifier{secret: secret, leeway: DefaultLeeway, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// Verify parses and checks a token: signature (HS256 only: "none" and every other algorithm are
// refused), exp (required), nbf, iss and aud when configured, a non-empty sub that maps to an owner.
func (v *Verifier) Verify(token string) (Identity, error) {
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	}
	if v.issuer != "" {
		popts = append(popts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		popts = append(popts, jwt.WithAudience(v.audience))
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.secret, nil }, popts...)
	if err != nil {
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
	return Identity{Subject: c.Subject, Owner: owner, ExpiresAt: c.ExpiresAt.Time, Scope: c.Scope, JobID: c.JobID}, nil
}

// Signer issues HS256 tokens.
type Signer struct {
	secret []byte
	issuer string
	now    func() time.Time
}

// NewSigner returns a Signer for secret; issuer, when set, goes into iss.
func NewSigner(secret []byte, issuer string) *Signer {
	return &Signer{secret: secret, issuer: issuer, now: time.Now}
}

// Sign returns a token for sub valid for ttl, with the given scope and job restriction (both optional).
func (s *Signer) Sign(sub string, ttl time.Duration, scope, jobID string) (string, error) {
	if sub == "" {
		return "", errors.New("sign token: empty subject")
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
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}
