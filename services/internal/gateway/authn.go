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
// scoped to streams are refused everywhere else. A cookie-authenticated request that changes state must
// come from this gateway's origin or an allowed CORS origin (checkOrigin).
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
			// The browser sends the cookie by itself: a state-changing request must come from this
			// gateway's page or an allowed origin (SameSite=Strict already keeps other sites out).
			if m := c.Method(); m != fiber.MethodGet && m != fiber.MethodHead && m != fiber.MethodOptions {
				if err := g.checkOrigin(c); err != nil {
					return err
				}
			}
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
			return errStreamTokenHere
		}
		c.Locals(identityKey, id)
		return c.Next()
	}
}

var errStreamTokenHere = api.Errorf(api.CodeForbidden, "a stream token only opens event streams")

func identity(c *fiber.Ctx) auth.Identity {
	id, _ := c.Locals(identityKey).(auth.Identity)
	return id
}
