package gateway

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
)

// CookieName is the cookie that may carry the token (set by the web page).
const CookieName = "jobwire_token"

const identityKey = "jobwire.identity"

// authenticate verifies the caller's token from the Authorization header, the jobwire_token cookie
// or, on stream routes only (EventSource cannot send headers), the access_token query parameter. Tokens
// scoped to streams are refused everywhere else.
func (g *Gateway) authenticate(streamRoute bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		token := ""
		if h := c.Get(fiber.HeaderAuthorization); h != "" {
			scheme, rest, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return api.Errorf(api.CodeUnauthorized, "Authorization must be a Bearer token")
			}
			token = strings.TrimSpace(rest)
		} else if ck := c.Cookies(CookieName); ck != "" {
			token = ck
		} else if streamRoute {
			token = c.Query("access_token")
		}
		if token == "" {
			return api.Errorf(api.CodeUnauthorized, "missing token")
		}
		id, err := g.deps.Verifier.Verify(token)
		if err != nil {
			return api.Errorf(api.CodeUnauthorized, "invalid or expired token")
		}
		if id.Scope == auth.ScopeStream && !streamRoute {
			return api.Errorf(api.CodeForbidden, "a stream token only opens event streams")
		}
		c.Locals(identityKey, id)
		return c.Next()
	}
}

func identity(c *fiber.Ctx) auth.Identity {
	id, _ := c.Locals(identityKey).(auth.Identity)
	return id
}
