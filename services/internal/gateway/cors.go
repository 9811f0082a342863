package gateway

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/jobwire/jobwire/api"
)

// What a preflight allows, and what a cross-origin script may read.
const (
	corsAllowMethods  = "GET, POST, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, traceparent, tracestate"
	corsExposeHeaders = "Location, Retry-After, WWW-Authenticate"
	corsMaxAge        = "600"
)

// parseOrigins checks and normalises the configured origins: each one exact ("https://host[:port]"),
// never "*" (credentials are allowed, and a wildcard with credentials would hand every site the
// user's session), no path, query or user info.
func parseOrigins(list []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, raw := range list {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		o, ok := normalizeOrigin(raw)
		if !ok {
			return nil, fmt.Errorf("CORS origin %q: want an exact origin such as https://app.example.com (no *, path or query)", raw)
		}
		out[o] = true
	}
	return out, nil
}

// normalizeOrigin returns the canonical form of an origin (lower case, default port dropped), or false
// when s is not a plain http(s) origin.
func normalizeOrigin(s string) (string, bool) {
	if strings.ContainsAny(s, "*\r\n\t ") || len(s) > 512 {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
		(u.Path != "" && u.Path != "/") || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			host = h
			if strings.Contains(h, ":") {
				host = "[" + h + "]"
			}
		}
	}
	return scheme + "://" + host, true
}

// allowedOrigin returns the configured origin that equals the request's Origin header, if any.
func (g *Gateway) allowedOrigin(origin string) (string, bool) {
	if origin == "" || len(g.origins) == 0 {
		return "", false
	}
	o, ok := normalizeOrigin(origin)
	if !ok || !g.origins[o] {
		return "", false
	}
	return o, true
}

// cors serves preflights and adds the CORS headers to API answers for the allowed origins only. With
// no origin configured it adds nothing and refuses preflights.
func (g *Gateway) cors(c *fiber.Ctx) error {
	if len(g.origins) > 0 {
		c.Vary(fiber.HeaderOrigin)
	}
	origin, ok := g.allowedOrigin(c.Get(fiber.HeaderOrigin))
	if c.Method() == fiber.MethodOptions && c.Get(fiber.HeaderAccessControlRequestMethod) != "" {
		c.Vary(fiber.HeaderAccessControlRequestMethod, fiber.HeaderAccessControlRequestHeaders)
		if !ok {
			return api.Errorf(api.CodeForbidden, "cross-origin requests from this origin are not allowed")
		}
		c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
		c.Set(fiber.HeaderAccessControlAllowCredentials, "true")
		c.Set(fiber.HeaderAccessControlAllowMethods, corsAllowMethods)
		c.Set(fiber.HeaderAccessControlAllowHeaders, corsAllowHeaders)
		c.Set(fiber.HeaderAccessControlMaxAge, corsMaxAge)
		return c.SendStatus(fiber.StatusNoContent)
	}
	if ok {
		c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
		c.Set(fiber.HeaderAccessControlAllowCredentials, "true")
		c.Set(fiber.HeaderAccessControlExposeHeaders, corsExposeHeaders)
	}
	return c.Next()
}

// streamCORS returns the CORS header lines for a hijacked SSE response head (sse.Header's extra):
// empty unless CORS is configured. Only the configured origin's canonical text is echoed, never the
// request's bytes.
func (g *Gateway) streamCORS(c *fiber.Ctx) string {
	if len(g.origins) == 0 {
		return ""
	}
	origin, ok := g.allowedOrigin(c.Get(fiber.HeaderOrigin))
	if !ok {
		return "Vary: Origin\r\n"
	}
	return "Access-Control-Allow-Origin: " + origin + "\r\n" +
		"Access-Control-Allow-Credentials: true\r\n" +
		"Vary: Origin\r\n"
}

// sameOrigin reports whether a browser's Origin names this gateway: its host equals the Host header
// (or X-Forwarded-Host, which a browser cannot set on a cross-site request without a preflight).
func sameOrigin(c *fiber.Ctx, origin string) bool {
	o, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	_, host, _ := strings.Cut(o, "://")
	for _, h := range []string{c.Get(fiber.HeaderHost), c.Get(fiber.HeaderXForwardedHost)} {
		if h, _, _ = strings.Cut(h, ","); h == "" {
			continue
		}
		h = strings.ToLower(strings.TrimSpace(h))
		if h == host || strings.TrimSuffix(h, ":80") == host || strings.TrimSuffix(h, ":443") == host {
			return true
		}
	}
	return false
}

// checkOrigin refuses (403) a state-changing browser request from another site: an Origin header
// that is neither this gateway nor a configured CORS origin, or, without Origin, Sec-Fetch-Site
// cross-site. Requests from non-browser clients carry neither header and pass.
func (g *Gateway) checkOrigin(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		if c.Get("Sec-Fetch-Site") == "cross-site" {
			return errCrossSite
		}
		return nil
	}
	if _, ok := g.allowedOrigin(origin); ok || sameOrigin(c, origin) {
		return nil
	}
	return errCrossSite
}

var errCrossSite = api.Errorf(api.CodeForbidden, "cross-site request refused: the Origin is not this gateway nor an allowed origin")
