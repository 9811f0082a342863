package importer

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jobwire/jobwire/api"
)

// extinf is an #EXTINF line waiting for the path line it describes.
type extinf struct {
	line     int
	text     string
	duration int
	display  string
}

// parseM3U reads m3u and extended m3u. The #EXTM3U header is optional. "#EXTINF:<seconds>,<Artist> -
// <Title>" describes the path or URL on the next line; attributes between duration and comma
// (tvg-id="..." and the like) are skipped. "#EXTALB:<album>" sets the album of the entries that
// follow, until the next #EXTALB. Other lines starting with '#' are comments. A path line without an
// #EXTINF gives "Artist - Title" from its file name. An entry's line is that of its #EXTINF, or of the
// path when it has none. An #EXTINF without a path line still makes an entry.
func parseM3U(s string, c *collector) error {
	if err := checkLines(api.FormatM3U, s, true, c.lim); err != nil {
		return err
	}
	var (
		pending *extinf
		album   string
	)
	// emit makes the entry of a path line (path, at pathLine) and of the #EXTINF before it, if any.
	emit := func(path string, pathLine int, pathText string) error {
		x := pending
		pending = nil
		e := Entry{Line: pathLine, Album: album}
		text, ok := pathText, false
		if x != nil {
			e.Line, e.DurationSec, text = x.line, x.duration, x.text
			e.Artist, e.Title, ok = splitArtistTitle(x.display)
		}
		if !ok && path != "" {
			e.Artist, e.Title, ok = splitArtistTitle(nameFromPath(path))
		}
		switch {
		case ok:
			return c.add(e, text)
		case x != nil:
			return c.reject(e.Line, text, `no "Artist - Title" in #EXTINF or the file name`)
		default:
			return c.reject(e.Line, text, `no "Artist - Title" in the file name`)
		}
	}
	err := eachLine(s, true, func(n int, raw string) error {
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
			return nil
		case line[0] == '#':
			if rest, ok := cutPrefixFold(line, "#EXTINF:"); ok {
				var err error
				if pending != nil {
					err = emit("", 0, "")
				}
				pending = parseExtinf(n, line, rest)
				return err
			}
			if rest, ok := cutPrefixFold(line, "#EXTALB:"); ok {
				album = strings.TrimSpace(rest)
			}
			return nil
		case !utf8.ValidString(line):
			if pending != nil {
				return emit("", n, line)
			}
			return c.reject(n, line, "not valid UTF-8")
		}
		return emit(line, n, line)
	})
	if err != nil {
		return err
	}
	if pending != nil {
		return emit("", 0, "")
	}
	return nil
}

// parseExtinf reads the part of an #EXTINF line after the colon: a duration in seconds (-1 or
// anything unreadable is unknown), optional attributes, a comma outside quotes, the display title.
func parseExtinf(n int, line, rest string) *extinf {
	x := &extinf{line: n, text: line}
	head, display := rest, ""
	inQuote := false
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				head, display = rest[:i], rest[i+1:]
				i = len(rest)
			}
		}
	}
	if f := strings.Fields(head); len(f) > 0 {
		if d, err := strconv.ParseFloat(f[0], 64); err == nil {
			x.duration = secondsFrom(d)
		}
	}
	x.display = strings.TrimSpace(display)
	return x
}

// cutPrefixFold is strings.CutPrefix with an ASCII case-insensitive prefix.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
