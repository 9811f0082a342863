package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
)

// maxCookieToken bounds a token kept in the cookie: browsers drop cookies past about 4 KiB.
const maxCookieToken = 3800

type sessionRequest struct {
	Token string `json:"token"`
}

// createSession serves POST /v1/session: it verifies the token of the body and keeps it in the
// jobwire_token cookie (HttpOnly, SameSite=Strict, Path=/, Secure on https or when configured, living
// as long as the token), so the page's requests and EventSource carry it without script access.
func (g *Gateway) createSession(c *fiber.Ctx) error {
	if err := g.checkOrigin(c); err != nil {
		return err
	}
	var req sessionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return api.Errorf(api.CodeInvalidInput, "token is required")
	}
	if len(req.Token) > maxCookieToken {
		return api.Errorf(api.CodeInvalidInput, "token longer than %d bytes does not fit a cookie; send it as a Bearer header", maxCookieToken)
	}
	id, err := g.deps.Verifier.Verify(req.Token)
	if err != nil {
		return api.Errorf(api.CodeUnauthorized, "invalid or expired token")
	}
	if id.Scope == auth.ScopeStream {
		return api.Errorf(api.CodeForbidden, "a stream token cannot start a session")
	}
	maxAge := int(time.Until(id.ExpiresAt) / time.Second)
	if maxAge < 1 {
		return api.Errorf(api.CodeUnauthorized, "invalid or expired token")
	}
	c.Cookie(&fiber.Cookie{Name: CookieName, Value: req.Token, Path: "/", MaxAge: maxAge,
		Secure: g.cookieSecure(c), HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode})
	return c.SendStatus(fiber.StatusNoContent)
}

// getSession serves GET /v1/session: who the caller's token speaks for, so the page (which cannot read
// its HttpOnly cookie) knows whom it shows and whether to offer the operators' console.
func (g *Gateway) getSession(c *fiber.Ctx) error {
	id := identity(c)
	return c.JSON(api.Session{User: id.Subject, Operator: id.Operator, ExpiresAt: id.ExpiresAt.UTC()})
}

// deleteSession serves DELETE /v1/session: it clears the cookie (Max-Age=0, and an Expires in the past
// for old browsers), whether or not one was set.
func (g *Gateway) deleteSession(c *fiber.Ctx) error {
	if err := g.checkOrigin(c); err != nil {
		return err
	}
	v := CookieName + "=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict"
	if g.cookieSecure(c) {
		v += "; Secure"
	}
	c.Append(fiber.HeaderSetCookie, v)
	return c.SendStatus(fiber.StatusNoContent)
}

func (g *Gateway) cookieSecure(c *fiber.Ctx) bool {
	return g.cfg.CookieSecure || c.Protocol() == "https"
}

// errNoStreamTokens answers POST /v1/stream-tokens on a gateway without an HS256 secret.
var errNoStreamTokens = api.Errorf(api.CodeForbidden, "this gateway issues no stream tokens (no JOBWIRE_JWT_SECRET): use the session cookie (POST /v1/session) for EventSource")
