// Package web serves jobwire's web page: a small page embedded in the binary that imports playlists and
// shows every job's live progress over one EventSource on /v1/events.
package web

import (
	"embed"

	"github.com/gofiber/fiber/v2"
)

//go:embed static
var static embed.FS

// Register adds the page's routes (GET / and its assets) to r.
func Register(r fiber.Router) {
	r.Get("/", func(c *fiber.Ctx) error {
		data, err := static.ReadFile("static/index.html")
		if err != nil {
			return err
		}
		c.Type("html")
		return c.Send(data)
	})
}
