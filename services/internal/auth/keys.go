package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// The asymmetric algorithms a KeySet verifies. RSA keys verify RS256 only, P-256 keys ES256 only, P-384
// keys ES384 only and Ed25519 keys EdDSA only: the algorithm a token names must match the type of the key
// that checks it.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgES384 = "ES384"
	AlgEdDSA = "EdDSA"
)

// asymmetricAlgs lists every algorithm a KeySet can verify.
var asymmetricAlgs = []string{AlgRS256, AlgES256, AlgES384, AlgEdDSA}

// MinRSABits is the smallest RSA modulus a KeySet accepts.
const MinRSABits = 2048

// maxKeyFile bounds a public key file (PEM or JWKS).
const maxKeyFile = 1 << 20

// maxKIDLen bounds a key id, in a JWKS and in a token header.
const maxKIDLen = 256

// PublicKey is one key that verifies tokens.
type PublicKey struct {
	// ID is the key id ("kid"): from the JWKS, or empty for a key read from PEM.
	ID string
	// Alg is the one algorithm the key verifies: AlgRS256, AlgES256, AlgES384 or AlgEdDSA.
	Alg string
	// Key is an *rsa.PublicKey, an *ecdsa.PublicKey or an ed25519.PublicKey.
	Key crypto.PublicKey
}

// KeySet holds the public keys that verify RS256, ES256, ES384 and EdDSA tokens. It is read-only once built and safe
// for concurrent use.
type KeySet struct {
	keys  []PublicKey
	byKID map[string]int
}

func newKeySet(keys []PublicKey) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("no usable public key (RSA of at least 2048 bits, ECDSA P-256 or P-384, or Ed25519)")
	}
	ks := &KeySet{keys: keys, byKID: map[string]int{}}
	for i, k := range keys {
		if k.ID == "" {
			continue
		}
		if _, dup := ks.byKID[k.ID]; dup {
			return nil, fmt.Errorf("duplicate kid %q", k.ID)
		}
		ks.byKID[k.ID] = i
	}
	return ks, nil
}

// Len returns the number of keys.
func (ks *KeySet) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.keys)
}

// Keys returns a copy of the keys.
func (ks *KeySet) Keys() []PublicKey {
	if ks == nil {
		return nil
	}
	return append([]PublicKey(nil), ks.keys...)
}

// hasKID reports whether a key has the id kid.
func (ks *KeySet) hasKID(kid string) bool {
	if ks == nil {
		return false
	}
	_, ok := ks.byKID[kid]
	return ok
}

// has reports whether some key verifies alg.
func (ks *KeySet) has(alg string) bool {
	for _, k := range ks.Keys() {
		if k.Alg == alg {
			return true
		}
	}
	return false
}

// lookup returns the key(s) that may verify a token signed with alg and naming kid (may be empty):
// the key with that kid when there is one (its algorithm must be alg), otherwise every key without a
// kid (PEM keys) for alg, or, for a token without a kid, every key for alg.
func (ks *KeySet) lookup(alg, kid string) (any, error) {
	if ks == nil {
		return nil, fmt.Errorf("no public keys for %s", alg)
	}
	if kid != "" {
		if i, ok := ks.byKID[kid]; ok {
			k := ks.keys[i]
			if k.Alg != alg {
				return nil, fmt.Errorf("key %q verifies %s, the token says %s", kid, k.Alg, alg)
			}
			return k.Key, nil
		}
	}
	var set jwt.VerificationKeySet
	for _, k := range ks.keys {
		if k.Alg == alg && (kid == "" || k.ID == "") {
			set.Keys = append(set.Keys, k.Key)
		}
	}
	if len(set.Keys) == 0 {
		if kid != "" {
			return nil, fmt.Errorf("no key with kid %q for %s", kid, alg)
		}
		return nil, fmt.Errorf("no public keys for %s", alg)
	}
	return set, nil
}

// LoadPublicKeys reads a PEM file (one or more PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE blocks) or a
// JWKS JSON file ({"keys":[...]}, RSA, EC P-256/P-384 and OKP/Ed25519 keys) and returns its keys.
func LoadPublicKeys(path string) (*KeySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("public keys: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("public keys %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("public keys %s: larger than %d bytes", path, maxKeyFile)
	}
	ks, err := ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("public keys %s: %w", path, err)
	}
	return ks, nil
}

// ParsePublicKeys parses PEM or, when data starts with '{', a JWKS document.
func ParsePublicKeys(data []byte) (*KeySet, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return ParseJWKS(t)
	}
	return ParsePEM(data)
}

// ParsePEM reads every PEM block of data: PUBLIC KEY (PKIX: RSA, ECDSA P-256/P-384 or Ed25519), RSA PUBLIC KEY (PKCS #1)
// or CERTIFICATE (its public key). Private keys are refused: they do not belong in this file. The keys
// have no kid, so they verify tokens without a kid or with a kid no JWKS key has.
func ParsePEM(data []byte) (*KeySet, error) {
	var keys []PublicKey
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var pub any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			if bytes.Contains([]byte(b.Type), []byte("PRIVATE")) {
				return nil, fmt.Errorf("PEM block %d is a private key: give the gateway public keys only", n)
			}
			return nil, fmt.Errorf("PEM block %d: unsupported type %q", n, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		k, err := publicKey("", pub)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if len(bytes.TrimSpace(data)) > 0 && len(keys) == 0 {
		return nil, errors.New("no PEM block found")
	}
	return newKeySet(keys)
}

func publicKey(kid string, pub any) (PublicKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return PublicKey{}, fmt.Errorf("RSA key of %d bits, at least %d required", k.N.BitLen(), MinRSABits)
		}
		return PublicKey{ID: kid, Alg: AlgRS256, Key: k}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return PublicKey{ID: kid, Alg: AlgES256, Key: k}, nil
		case elliptic.P384():
			return PublicKey{ID: kid, Alg: AlgES384, Key: k}, nil
		}
		return PublicKey{}, fmt.Errorf("ECDSA key on %s: P-256 or P-384 only", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return PublicKey{ID: kid, Alg: AlgEdDSA, Key: k}, nil
	}
	return PublicKey{}, fmt.Errorf("unsupported key type %T (RSA, ECDSA or Ed25519 only)", pub)
}

// jwk is the part of a JSON Web Key (RFC 7517, 7518, 8037) jobwire reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	// Private parts: their presence is an error.
	D string `json:"d"`
	P string `json:"p"`
}

// ParseJWKS reads a JWK Set. RSA keys ("n", "e") verify RS256, EC keys ("x", "y") on crv P-256 ES256
// and on P-384 ES384, and OKP keys with crv Ed25519 ("x") EdDSA. Keys for encryption ("use":"enc"), of
// another type or curve, or naming another algorithm are skipped; a key with private parts, a duplicate kid or a malformed key is an error, and so is a set
// without one usable key.
func ParseJWKS(data []byte) (*KeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var keys []PublicKey
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("JWKS key %d: %w", i, err)
		}
		if j.D != "" || j.P != "" {
			return nil, fmt.Errorf("JWKS key %d (kid %q) holds private key material: publish public keys only", i, j.Kid)
		}
		if len(j.Kid) > maxKIDLen {
			return nil, fmt.Errorf("JWKS key %d: kid longer than %d bytes", i, maxKIDLen)
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		var k PublicKey
		var err error
		switch {
		case j.Kty == "RSA" && (j.Alg == "" || j.Alg == AlgRS256):
			k, err = rsaJWK(j)
		case j.Kty == "EC" && j.Crv == "P-256" && (j.Alg == "" || j.Alg == AlgES256):
			k, err = ecJWK(j, elliptic.P256())
		case j.Kty == "EC" && j.Crv == "P-384" && (j.Alg == "" || j.Alg == AlgES384):
			k, err = ecJWK(j, elliptic.P384())
		case j.Kty == "OKP" && j.Crv == "Ed25519" && (j.Alg == "" || j.Alg == AlgEdDSA || j.Alg == "Ed25519"):
			k, err = ed25519JWK(j)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, j.Kid, err)
		}
		keys = append(keys, k)
	}
	return newKeySet(keys)
}

func b64(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not base64url without padding: %w", field, err)
	}
	return b, nil
}

func rsaJWK(j jwk) (PublicKey, error) {
	n, err := b64("n", j.N)
	if err != nil {
		return PublicKey{}, err
	}
	e, err := b64("e", j.E)
	if err != nil {
		return PublicKey{}, err
	}
	if len(e) == 0 || len(e) > 4 {
		return PublicKey{}, errors.New(`"e" must be 1 to 4 bytes`)
	}
	exp := int(new(big.Int).SetBytes(e).Int64())
	if exp < 3 || exp%2 == 0 {
		return PublicKey{}, fmt.Errorf(`"e" = %d is not a valid RSA exponent`, exp)
	}
	return publicKey(j.Kid, &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp})
}

func ed25519JWK(j jwk) (PublicKey, error) {
	x, err := b64("x", j.X)
	if err != nil {
		return PublicKey{}, err
	}
	if len(x) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf(`"x" is %d bytes, an Ed25519 key is %d`, len(x), ed25519.PublicKeySize)
	}
	return publicKey(j.Kid, ed25519.PublicKey(x))
}

// ecJWK reads an EC key: "x" and "y" are each exactly the curve's size (RFC 7518 §6.2.1), and the point
// must be on the curve.
func ecJWK(j jwk, curve elliptic.Curve) (PublicKey, error) {
	x, err := b64("x", j.X)
	if err != nil {
		return PublicKey{}, err
	}
	y, err := b64("y", j.Y)
	if err != nil {
		return PublicKey{}, err
	}
	size := (curve.Params().BitSize + 7) / 8
	if len(x) != size || len(y) != size {
		return PublicKey{}, fmt.Errorf(`"x" and "y" must be %d bytes each on %s`, size, j.Crv)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
	if err != nil {
		return PublicKey{}, fmt.Errorf("EC key: %w", err)
	}
	return publicKey(j.Kid, pub)
}
