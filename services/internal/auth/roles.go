package auth

import (
	"encoding/json"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Roles: a token whose roles claim holds the operator role speaks for an operator, who may use the
// queue controls (pause, dead letters, the console). Operators still see only their own jobs through
// the user routes.
const (
	// DefaultRolesClaim is the claim that holds a token's roles: a JSON array of strings, or one
	// string of space-separated roles.
	DefaultRolesClaim = "roles"
	// DefaultOperatorRole is the role that makes a token's subject an operator.
	DefaultOperatorRole = "jobwire:operator"
)

// WithOperatorRole sets where the Verifier looks for the operator role (default DefaultRolesClaim and
// DefaultOperatorRole). claim is a top-level claim name ("roles", "https://example.com/roles") or,
// when no such claim exists, a dotted path into nested objects ("realm_access.roles"). An empty role
// makes no token an operator.
func WithOperatorRole(claim, role string) VerifierOption {
	return func(v *Verifier) { v.rolesClaim, v.operatorRole = claim, role }
}

// OperatorRole is the role that makes a token an operator's ("" when no token is): the gateway puts
// it into the stream tokens it issues to operators, so that they open the console stream.
func (v *Verifier) OperatorRole() string { return v.operatorRole }

// hasRole reports whether the verified token's payload (its second segment) names role in claim.
// Anything malformed there, or of another shape, is no role.
func hasRole(token, claim, role string) bool {
	if role == "" || claim == "" {
		return false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		return false
	}
	raw, ok := lookupClaim(payload, claim)
	if !ok {
		return false
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return false
		}
		list = strings.Fields(one)
	}
	for _, r := range list {
		if r == role {
			return true
		}
	}
	return false
}

// lookupClaim finds claim in the JSON object payload: as a top-level name first, then as a dotted
// path into nested objects.
func lookupClaim(payload []byte, claim string) (json.RawMessage, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(payload, &top) != nil {
		return nil, false
	}
	if raw, ok := top[claim]; ok {
		return raw, true
	}
	path := strings.Split(claim, ".")
	obj := top
	for i, name := range path {
		raw, ok := obj[name]
		if !ok {
			return nil, false
		}
		if i == len(path)-1 {
			return raw, true
		}
		obj = nil
		if json.Unmarshal(raw, &obj) != nil {
			return nil, false
		}
	}
	return nil, false
}
