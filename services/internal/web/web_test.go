package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gofiber/fiber/v2"
)

func setup(t *testing.T) *fiber.App {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	Register(app)
	return app
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, app *fiber.App, method, target string, header map[string]string) answer {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func checkSecurityHeaders(t *testing.T, target string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", target, k, got, v)
		}
	}
}

func TestPageAndAssets(t *testing.T) {
	app := setup(t)
	page := get(t, app, http.MethodGet, "/", nil)
	if page.status != http.StatusOK {
		t.Fatalf("GET /: status %d", page.status)
	}
	checkSecurityHeaders(t, "/", page.header)
	if ct := page.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET /: Content-Type %q", ct)
	}
	if cc := page.header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("GET /: Cache-Control %q, want no-cache", cc)
	}

	// Every asset the page names is served, with its type, a short cache and the security headers.
	refs := regexp.MustCompile(`(?:src|href)="(/static/([^"?]+)\?v=[0-9a-f]{16})"`).FindAllStringSubmatch(page.body, -1)
	wantTypes := map[string]string{
		"app.js":      "text/javascript; charset=utf-8",
		"app.css":     "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		url, name := ref[1], ref[2]
		seen[name] = true
		a := get(t, app, http.MethodGet, url, nil)
		if a.status != http.StatusOK {
			t.Errorf("GET %s: status %d", url, a.status)
			continue
		}
		checkSecurityHeaders(t, url, a.header)
		if want, ok := wantTypes[name]; !ok {
			t.Errorf("the page references unexpected asset %s", name)
		} else if ct := a.header.Get("Content-Type"); ct != want {
			t.Errorf("GET %s: Content-Type %q, want %q", url, ct, want)
		}
		if cc := a.header.Get("Cache-Control"); cc != "public, max-age=300" {
			t.Errorf("GET %s: Cache-Control %q", url, cc)
		}
		if a.header.Get("ETag") == "" || a.body == "" {
			t.Errorf("GET %s: no ETag or empty body", url)
		}
	}
	for name := range wantTypes {
		if !seen[name] {
			t.Errorf("the page does not reference /static/%s with a version", name)
		}
	}
}

func TestPageHasNothingInlineOrExternal(t *testing.T) {
	body := get(t, setup(t), http.MethodGet, "/", nil).body
	for _, m := range regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(m[1], `src="/static/`) || strings.TrimSpace(m[2]) != "" {
			t.Errorf("index.html has an inline script: %q", m[0])
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`), // inline event handlers
		regexp.MustCompile(`(?:src|href|action)="(?:[a-z]+:)?//`),
	} {
		if m := bad.FindString(body); m != "" {
			t.Errorf("index.html contains %q, which the CSP forbids or which loads another origin", m)
		}
	}
	for _, name := range []string{"static/app.js", "static/app.css"} {
		data, err := static.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`).Find(data); m != nil {
			t.Errorf("%s refers to another origin: %s", name, m)
		}
		if strings.Contains(string(data), "innerHTML") || strings.Contains(string(data), "eval(") {
			t.Errorf("%s uses innerHTML or eval", name)
		}
	}
}

func TestNotFoundAndHead(t *testing.T) {
	app := setup(t)
	for _, target := range []string{
		"/static/nope.js",
		"/static/",
		"/static",
		"/static/index.html", // the page is only served at /
		"/static/../web.go",
		"/static/%2e%2e/web.go",
		"/static/APP.JS",
	} {
		a := get(t, app, http.MethodGet, target, nil)
		if a.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, a.status)
			continue
		}
		checkSecurityHeaders(t, target, a.header)
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("GET %s: Content-Type %q", target, ct)
		}
	}

	head := get(t, app, http.MethodHead, "/static/app.css", nil)
	if head.status != http.StatusOK || head.body != "" || head.header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("HEAD /static/app.css: status %d, type %q, body %d bytes", head.status, head.header.Get("Content-Type"), len(head.body))
	}
}

func TestConditionalRequests(t *testing.T) {
	app := setup(t)
	for _, target := range []string{"/", "/static/app.js"} {
		first := get(t, app, http.MethodGet, target, nil)
		etag := first.header.Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", target)
		}
		for _, inm := range []string{etag, `"x", ` + etag, "W/" + etag} {
			again := get(t, app, http.MethodGet, target, map[string]string{"If-None-Match": inm})
			if again.status != http.StatusNotModified || again.body != "" {
				t.Errorf("GET %s with If-None-Match %s: status %d, %d bytes", target, inm, again.status, len(again.body))
			}
			checkSecurityHeaders(t, target, again.header)
		}
		stale := get(t, app, http.MethodGet, target, map[string]string{"If-None-Match": `"0000000000000000"`})
		if stale.status != http.StatusOK || stale.body != first.body {
			t.Errorf("GET %s with a stale ETag: status %d", target, stale.status)
		}
	}
}

func TestLoad(t *testing.T) {
	s, err := load(fstest.MapFS{
		"static/index.html": {Data: []byte(`<script src="/static/a.js"></script><link href="/static/a.css">`)},
		"static/a.js":       {Data: []byte(`1`)},
		"static/a.css":      {Data: []byte(`b{}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	js := strings.Trim(s.assets["a.js"].etag, `"`)
	if want := `<script src="/static/a.js?v=` + js + `"></script>`; !strings.Contains(string(s.page.body), want) {
		t.Errorf("page %s does not contain %s", s.page.body, want)
	}
	if len(s.assets) != 2 {
		t.Errorf("assets: %v", s.assets)
	}

	for name, fsys := range map[string]fstest.MapFS{
		"no page":       {"static/a.js": {Data: []byte(`1`)}},
		"unknown type":  {"static/index.html": {Data: []byte(`x`)}, "static/a.exe": {Data: []byte(`x`)}},
		"no static dir": {"other/index.html": {Data: []byte(`x`)}},
	} {
		if _, err := load(fsys); err == nil {
			t.Errorf("%s: load succeeded", name)
		}
	}
}

// TestLoadVersionsModuleImports: a module's import of another asset names it by content, and the page
// names the module by its content after that rewrite, so a new leaf changes every name above it.
func TestLoadVersionsModuleImports(t *testing.T) {
	fsys := func(lib string) fstest.MapFS {
		return fstest.MapFS{
			"static/index.html": {Data: []byte(`<script type="module" src="/static/app.js"></script>`)},
			"static/app.js":     {Data: []byte(`import { x } from '/static/lib.js';`)},
			"static/lib.js":     {Data: []byte(lib)},
		}
	}
	s1, err := load(fsys(`export const x = 1;`))
	if err != nil {
		t.Fatal(err)
	}
	lib := strings.Trim(s1.assets["lib.js"].etag, `"`)
	if want := `from '/static/lib.js?v=` + lib + `';`; !strings.Contains(string(s1.assets["app.js"].body), want) {
		t.Errorf("app.js is %s, want it to contain %s", s1.assets["app.js"].body, want)
	}
	app := strings.Trim(s1.assets["app.js"].etag, `"`)
	if want := `src="/static/app.js?v=` + app + `"`; !strings.Contains(string(s1.page.body), want) {
		t.Errorf("page %s does not contain %s", s1.page.body, want)
	}
	s2, err := load(fsys(`export const x = 2;`))
	if err != nil {
		t.Fatal(err)
	}
	if s2.assets["app.js"].etag == s1.assets["app.js"].etag || string(s2.page.body) == string(s1.page.body) {
		t.Error("a changed module left the name of the script importing it (or the page) unchanged")
	}
}

// TestScriptLeavesTheCookieToTheServer: the token's cookie is HttpOnly, set and cleared by the gateway
// (POST and DELETE /v1/session); the page never writes or reads a cookie, nor keeps the token.
func TestScriptLeavesTheCookieToTheServer(t *testing.T) {
	data, err := static.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	js := string(data)
	if strings.Contains(js, "document.cookie") {
		t.Error("app.js touches document.cookie: the session cookie is HttpOnly and the gateway's business")
	}
	for _, want := range []string{`'POST', '/v1/session'`, `'DELETE', '/v1/session'`} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js does not call %s", want)
		}
	}
	if regexp.MustCompile(`\.setItem\([^)]*\btoken\b`).MatchString(js) {
		t.Error("app.js keeps the token in web storage")
	}
}
