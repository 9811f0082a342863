// Package web serves jobwire's web page: a small page embedded in the binary that imports playlists and
// shows every job's live progress over one stream of /v1/events.
//
// The page is plain HTML, CSS and JavaScript modules with no build step of their own and no external
// resources. Its stream, resume and backoff logic is @jobwire/client's, bundled by that package's
// `npm run build` into static/jobwire-client.js, which is committed (a test checks it is current). Everything
// is served from the binary under a strict Content-Security-Policy: no inline script or style, no other
// origin, no framing.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is sent with the page and its assets: only this origin, nothing inline, no
// framing, no <base>, forms post only here.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Cache lifetimes. The page is revalidated on every load (it is small, and names the assets by
// content hash); the assets are cached briefly.
const (
	pageCacheControl  = "no-cache"
	assetCacheControl = "public, max-age=300"
)

// contentTypes are the types of the files the page may ship; an embedded file of another kind fails
// loudly at start-up rather than being served with a guessed type.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// site is the page and its assets, read once from the embedded files.
type site struct {
	page   file
	assets map[string]file // by name below /static/
}

var embedded = mustLoad(static)

// mustLoad reads the files below static/. The references to /static/<name> in index.html and in the
// scripts get a ?v=<hash> suffix, so a new binary's page never runs with a cached old script or module.
func mustLoad(fsys fs.FS) *site {
	s, err := load(fsys)
	if err != nil {
		panic(fmt.Sprintf("web: %v", err))
	}
	return s
}

func load(fsys fs.FS) (*site, error) {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	s := &site{assets: map[string]file{}}
	var index []byte
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		if name == "index.html" {
			index = body
			return nil
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("static/%s: no content type for %q", name, path.Ext(name))
		}
		s.assets[name] = newFile(body, ct)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if index == nil {
		return nil, fmt.Errorf("static/index.html is missing")
	}
	// A script's imports of other assets (app.js imports /static/jobwire-client.js) are versioned by
	// those assets' own content, then the page names every asset by its final content.
	leaves := maps.Clone(s.assets)
	for name, f := range leaves {
		if path.Ext(name) == ".js" {
			s.assets[name] = newFile(versionRefs(f.body, leaves, name), f.contentType)
		}
	}
	s.page = newFile(versionRefs(index, s.assets, ""), contentTypes[".html"])
	return s, nil
}

// versionRefs adds ?v=<hash> to every quoted reference /static/<name> in body (in ” or "") to an asset
// other than self.
func versionRefs(body []byte, assets map[string]file, self string) []byte {
	for name, f := range assets {
		if name == self {
			continue
		}
		for _, q := range []string{`"`, `'`} {
			ref := []byte(q + "/static/" + name + q)
			versioned := []byte(q + "/static/" + name + "?v=" + strings.Trim(f.etag, `"`) + q)
			body = bytes.ReplaceAll(body, ref, versioned)
		}
	}
	return body
}

func newFile(body []byte, contentType string) file {
	sum := sha256.Sum256(body)
	return file{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// Register adds the page's routes to r: GET / (the page) and GET /static/<name> (its assets). Unknown
// assets are a plain 404. Every answer carries the security headers.
func Register(r fiber.Router) {
	r.Get("/", func(c *fiber.Ctx) error {
		return serve(c, embedded.page, pageCacheControl)
	})
	r.Get("/static/*", func(c *fiber.Ctx) error {
		f, ok := embedded.assets[c.Params("*")]
		if !ok {
			securityHeaders(c)
			c.Set(fiber.HeaderCacheControl, "no-store")
			c.Type("txt", "utf-8")
			return c.Status(fiber.StatusNotFound).SendString("not found\n")
		}
		return serve(c, f, assetCacheControl)
	})
}

// securityHeaders sets the headers every answer of the page carries.
func securityHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentSecurityPolicy, ContentSecurityPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
}

// serve answers with f, or 304 when the client's copy is current.
func serve(c *fiber.Ctx, f file, cacheControl string) error {
	securityHeaders(c)
	c.Set(fiber.HeaderCacheControl, cacheControl)
	c.Set(fiber.HeaderETag, f.etag)
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), f.etag) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	c.Set(fiber.HeaderContentType, f.contentType)
	return c.Send(f.body)
}

// etagMatches reports whether an If-None-Match header names etag (or is "*").
func etagMatches(header, etag string) bool {
	for candidate := range strings.SplitSeq(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == etag || candidate == "*" {
			return true
		}
	}
	return false
}
