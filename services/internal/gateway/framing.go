package gateway

import (
	"bytes"

	"github.com/gofiber/fiber/v2"

	"github.com/jobwire/jobwire/api"
)

// errAmbiguousFraming answers a request whose length two parties could read differently.
var errAmbiguousFraming = api.Errorf(api.CodeBadRequest, "ambiguous request framing: refused, and the connection closed")

// refuseAmbiguousFraming refuses, before any handler, a request whose head a proxy in front of the
// gateway could read differently from fasthttp (request smuggling): Content-Length together with
// Transfer-Encoding (RFC 9112 §6.1), more than one Content-Length (RFC 9110 §8.6), and obsolete line
// folding (RFC 9112 §5.2). It answers 400 and closes the connection, so nothing that followed the
// request on it is ever read as another request. fasthttp refuses the other malformed heads itself.
func refuseAmbiguousFraming(c *fiber.Ctx) error {
	if ambiguousFraming(c.Request().Header.RawHeaders()) {
		c.Context().SetConnectionClose()
		return errAmbiguousFraming
	}
	return c.Next()
}

// ambiguousFraming reports whether raw request header lines (CRLF-separated, as received) hold both
// Content-Length and Transfer-Encoding, two Content-Lengths, or a folded line.
func ambiguousFraming(raw []byte) bool {
	lengths, encodings := 0, 0
	for line := range bytes.SplitSeq(raw, []byte("\r\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return true // obs-fold
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		switch {
		case bytes.EqualFold(bytes.TrimSpace(name), []byte(fiber.HeaderContentLength)):
			lengths++
		case bytes.EqualFold(bytes.TrimSpace(name), []byte(fiber.HeaderTransferEncoding)):
			encodings++
		}
	}
	return lengths > 1 || lengths > 0 && encodings > 0
}
