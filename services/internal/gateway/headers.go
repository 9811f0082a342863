package gateway

import "github.com/gofiber/fiber/v2"

// securityHeaders go on every answer: no MIME sniffing, and no Referer leaving the page (a URL may
// carry ?access_token=). Handlers that come later (the web page) may set their own values.
func securityHeaders(c *fiber.Ctx) error {
	setSecurityHeaders(c)
	return c.Next()
}

// setSecurityHeaders sets them; the error handler does it too, for answers no middleware saw (a head
// fasthttp could not parse).
func setSecurityHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
}

// apiHeaders go on every API answer: per-user JSON is never stored by a cache, and never read by
// another site's no-cors request (CORS requests from the allowed origins are not affected).
func apiHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderCrossOriginResourcePolicy, "same-origin")
	return c.Next()
}
