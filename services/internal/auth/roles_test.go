package auth_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobwire/jobwire/services/internal/auth"
)

// A token is an operator's when its roles claim holds the operator role, wherever the identity
// provider puts it; a roles claim of any other shape makes no operator and does not spoil the token.
func TestOperatorRole(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	token := func(extra map[string]any) string {
		c := jwt.MapClaims{"sub": "alice", "exp": exp}
		for k, v := range extra {
			c[k] = v
		}
		return sign(t, jwt.SigningMethodHS256, []byte(secret), "", c)
	}
	nested := auth.WithOperatorRole("realm_access.roles", "admin")
	namespaced := auth.WithOperatorRole("https://app.example/roles", "ops")
	cases := []struct {
		name     string
		opt      auth.VerifierOption
		claims   map[string]any
		operator bool
	}{
		{"default claim, array", nil, map[string]any{"roles": []string{"viewer", auth.DefaultOperatorRole}}, true},
		{"default claim, space-separated", nil, map[string]any{"roles": "viewer " + auth.DefaultOperatorRole}, true},
		{"other roles only", nil, map[string]any{"roles": []string{"viewer"}}, false},
		{"no roles", nil, nil, false},
		{"role as a prefix is not the role", nil, map[string]any{"roles": auth.DefaultOperatorRole + "x"}, false},
		{"roles of another shape", nil, map[string]any{"roles": map[string]any{"a": 1}}, false},
		{"roles a number", nil, map[string]any{"roles": 7}, false},
		{"nested path", nested, map[string]any{"realm_access": map[string]any{"roles": []string{"admin"}}}, true},
		{"nested path, not an object", nested, map[string]any{"realm_access": "admin"}, false},
		{"namespaced claim with dots", namespaced, map[string]any{"https://app.example/roles": []string{"ops"}}, true},
		{"disabled", auth.WithOperatorRole("roles", ""), map[string]any{"roles": []string{""}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []auth.VerifierOption
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			v, err := auth.NewVerifier([]byte(secret), opts...)
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.Verify(token(tc.claims))
			if err != nil {
				t.Fatalf("the token is refused: %v", err)
			}
			if id.Operator != tc.operator {
				t.Fatalf("operator %v, want %v", id.Operator, tc.operator)
			}
		})
	}
}

// Sign writes roles into the claim the signer is told, and only a Verifier looking there finds them.
func TestSignRoles(t *testing.T) {
	v, _ := auth.NewVerifier([]byte(secret))
	for _, tc := range []struct {
		signer   *auth.Signer
		roles    []string
		operator bool
	}{
		{auth.NewSigner([]byte(secret), ""), []string{auth.DefaultOperatorRole}, true},
		{auth.NewSigner([]byte(secret), ""), nil, false},
		{auth.NewSigner([]byte(secret), "", auth.SignRolesClaim("groups")), []string{auth.DefaultOperatorRole}, false},
	} {
		tok, err := tc.signer.Sign("alice", time.Minute, "", "", tc.roles...)
		if err != nil {
			t.Fatal(err)
		}
		id, err := v.Verify(tok)
		if err != nil || id.Subject != "alice" || id.Operator != tc.operator {
			t.Fatalf("roles %v: %+v %v, want operator %v", tc.roles, id, err, tc.operator)
		}
	}
}
