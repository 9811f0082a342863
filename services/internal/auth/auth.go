// Package auth verifies and issues the JWTs that identify jobwire's users. A token's sub is the user id;
// Owner maps it to the subject-safe token that keys and subjects carry.
package auth

import (
	"encoding/json"
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

// DefaultMaxLifetime is the longest a token may live, from its iat (or from now without one) to its exp,
// unless WithMaxLifetime says otherwise: a token that outlives it cannot be revoked in reasonable time.
const DefaultMaxLifetime = 24 * time.Hour

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
	// Operator: the token holds the operator role (WithOperatorRole).
	Operator bool
}

// Verifier checks tokens. HS256 tokens are accepted only when it has a secret, RS256, ES256, ES384 and
// EdDSA tokens only when it has public keys of that type (a RemoteJWKS may bring any of them); every
// other algorithm, "none" included, is refused, and the algorithm must match the key's type (an HS256
// token "signed" with an RSA public key's bytes is refused). exp is required, and exp, nbf and iat must
// be JSON numbers; nbf and iat are checked when present; iss and aud when configured; all with a bounded
// leeway; and no token may live longer than the maximum lifetime. A Verifier is safe for concurrent use.
type Verifier struct {
	secret      []byte
	keys        keySource
	issuer      string
	audience    string
	leeway      time.Duration
	maxLifetime time.Duration
	now         func() time.Time
	methods     []string
	// rolesClaim and operatorRole say which tokens are operators' (WithOperatorRole).
	rolesClaim   string
	operatorRole string
}

// keySource finds the public key(s) that may verify a token signed with alg and naming kid.
type keySource interface {
	lookup(alg, kid string) (any, error)
	has(alg string) bool
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

// WithMaxLifetime refuses tokens whose exp is more than d after their iat (or after now, without one),
// leeway aside; 0 removes the limit. Default DefaultMaxLifetime.
func WithMaxLifetime(d time.Duration) VerifierOption { return func(v *Verifier) { v.maxLifetime = d } }

// WithPublicKeys makes the Verifier accept RS256, ES256, ES384 and EdDSA tokens signed by the keys of
// ks, the algorithms of its keys only. It replaces WithRemoteKeys.
func WithPublicKeys(ks *KeySet) VerifierOption {
	return func(v *Verifier) {
		v.keys = nil
		if ks != nil {
			v.keys = ks
		}
	}
}

// WithRemoteKeys makes the Verifier accept tokens signed by the keys r holds at the time of each check,
// with any asymmetric algorithm, since a rotation may bring another. It replaces WithPublicKeys.
func WithRemoteKeys(r *RemoteJWKS) VerifierOption {
	return func(v *Verifier) {
		v.keys = nil
		if r != nil {
			v.keys = r
		}
	}
}

// NewVerifier returns a Verifier. secret, when not empty, enables HS256 and must be at least
// MinSecretLen bytes; it may be nil when WithPublicKeys gives keys. At least one of the two is required.
func NewVerifier(secret []byte, opts ...VerifierOption) (*Verifier, error) {
	v := &Verifier{secret: secret, leeway: DefaultLeeway, maxLifetime: DefaultMaxLifetime, now: time.Now,
		rolesClaim: DefaultRolesClaim, operatorRole: DefaultOperatorRole}
	for _, o := range opts {
		o(v)
	}
	if len(secret) > 0 && len(secret) < MinSecretLen {
		return nil, fmt.Errorf("jwt secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	if v.leeway < 0 || v.leeway > MaxLeeway {
		return nil, fmt.Errorf("jwt leeway %s not in 0..%s", v.leeway, MaxLeeway)
	}
	if v.maxLifetime < 0 {
		return nil, fmt.Errorf("jwt max lifetime %s is negative", v.maxLifetime)
	}
	if len(secret) > 0 {
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	for _, alg := range asymmetricAlgs {
		if v.keys != nil && v.keys.has(alg) {
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
	case AlgRS256, AlgES256, AlgES384, AlgEdDSA:
		if v.keys == nil {
			return nil, fmt.Errorf("no public keys for %s", alg)
		}
		return v.keys.lookup(alg, kid)
	default:
		return nil, fmt.Errorf("algorithm %q is not accepted", alg)
	}
}

// Verify parses and checks a token: its size, signature (see Verifier), exp (required), nbf and iat (all
// JSON numbers), iss and aud when configured, its lifetime, a non-empty sub that maps to an owner, a known scope and a valid job
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
	var tc tokenClaims
	if _, err := jwt.ParseWithClaims(token, &tc, v.key, popts...); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c := tc.claims()
	if err := v.checkLifetime(c); err != nil {
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
	return Identity{Subject: c.Subject, Owner: owner, ExpiresAt: c.ExpiresAt.Time, Scope: c.Scope, JobID: c.JobID,
		Operator: hasRole(token, v.rolesClaim, v.operatorRole)}, nil
}

// checkLifetime refuses a token that lives longer than the maximum, from its iat (or now) to its exp.
func (v *Verifier) checkLifetime(c Claims) error {
	if v.maxLifetime == 0 {
		return nil
	}
	start := v.now()
	if c.IssuedAt != nil && c.IssuedAt.Before(start) {
		start = c.IssuedAt.Time
	}
	if life := c.ExpiresAt.Sub(start); life > v.maxLifetime+v.leeway {
		return fmt.Errorf("token lives %s, longer than the maximum of %s", life.Round(time.Second), v.maxLifetime)
	}
	return nil
}

// tokenClaims is what Verify decodes: Claims whose exp, nbf and iat must be JSON numbers (RFC 7519
// NumericDate). The library alone also takes a string such as "exp":"1700000000".
type tokenClaims struct {
	Claims
	ExpiresAt *numericDate `json:"exp,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date(), nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date(), nil }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date(), nil }

// claims returns the Claims with the strictly decoded dates in place.
func (c *tokenClaims) claims() Claims {
	out := c.Claims
	out.ExpiresAt, out.NotBefore, out.IssuedAt = c.ExpiresAt.date(), c.NotBefore.date(), c.IssuedAt.date()
	return out
}

// numericDate is a jwt.NumericDate that refuses anything but a JSON number.
type numericDate struct{ jwt.NumericDate }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("a NumericDate must be a JSON number")
	}
	return d.NumericDate.UnmarshalJSON(b)
}

func (d *numericDate) date() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

// Signer issues HS256 tokens (the gateway's stream tokens, development and admin tokens).
type Signer struct {
	secret     []byte
	issuer     string
	audience   string
	rolesClaim string
	now        func() time.Time
}

// SignerOption configures a Signer.
type SignerOption func(*Signer)

// SignAudience puts aud into the aud claim of every token (needed when verifiers require an audience).
func SignAudience(aud string) SignerOption { return func(s *Signer) { s.audience = aud } }

// SignRolesClaim names the claim Sign writes roles into (default DefaultRolesClaim): a top-level name.
func SignRolesClaim(name string) SignerOption { return func(s *Signer) { s.rolesClaim = name } }

// NewSigner returns a Signer for secret; issuer, when set, goes into iss.
func NewSigner(secret []byte, issuer string, opts ...SignerOption) *Signer {
	s := &Signer{secret: secret, issuer: issuer, rolesClaim: DefaultRolesClaim, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Sign returns a token for sub valid for ttl, with the given scope and job restriction (both optional)
// and roles (in the roles claim, e.g. DefaultOperatorRole).
func (s *Signer) Sign(sub string, ttl time.Duration, scope, jobID string, roles ...string) (string, error) {
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
	var err error
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
	var claims jwt.Claims = c
	if len(roles) > 0 {
		if claims, err = withRoles(c, s.rolesClaim, roles); err != nil {
			return "", fmt.Errorf("sign token: %w", err)
		}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// withRoles is c with the roles claim added.
func withRoles(c Claims, claim string, roles []string) (jwt.MapClaims, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	m := jwt.MapClaims{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	m[claim] = roles
	return m, nil
}
