package importer

import (
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// eachLine calls fn with every line of s and its 1-based number, without the line terminator. A line
// ends at "\n" or "\r\n", and also at a lone "\r" when crBreaks is set (old Mac files). A final
// terminator does not start another line. It stops at the first error fn returns.
func eachLine(s string, crBreaks bool, fn func(n int, line string) error) error {
	n := 0
	for len(s) > 0 {
		n++
		var i int
		if crBreaks {
			i = strings.IndexAny(s, "\r\n") // stops at the first of either: linear over the content
		} else {
			i = strings.IndexByte(s, '\n')
		}
		if i < 0 {
			return fn(n, s)
		}
		line, rest := s[:i], s[i+1:]
		if s[i] == '\r' && strings.HasPrefix(rest, "\n") {
			rest = rest[1:]
		}
		line = strings.TrimSuffix(line, "\r")
		if err := fn(n, line); err != nil {
			return err
		}
		s = rest
	}
	return nil
}

// checkLines enforces MaxLines and MaxLineLen on line-oriented content and rejects binary content
// (a NUL byte) as malformed.
func checkLines(format, s string, crBreaks bool, lim Limits) error {
	return eachLine(s, crBreaks, func(n int, line string) error {
		if n > lim.MaxLines {
			return tooLarge(format, "more than %d lines", lim.MaxLines)
		}
		if len(line) > lim.MaxLineLen {
			return tooLarge(format, "line %d is %d bytes, the limit is %d", n, len(line), lim.MaxLineLen)
		}
		if strings.IndexByte(line, 0) >= 0 {
			return malformed(format, n, "not a text file (NUL byte)")
		}
		return nil
	})
}

// separators split "Artist - Title"; the earliest one in the text wins, so a title may hold more.
var separators = []string{" - ", " – ", " — "}

// splitArtistTitle splits "Artist - Title" at the first separator. ok is false when there is none or
// either side is blank.
func splitArtistTitle(s string) (artist, title string, ok bool) {
	at, sepLen := -1, 0
	for _, sep := range separators {
		if i := strings.Index(s, sep); i >= 0 && (at < 0 || i < at) {
			at, sepLen = i, len(sep)
		}
	}
	if at < 0 {
		return "", "", false
	}
	artist, title = strings.TrimSpace(s[:at]), strings.TrimSpace(s[at+sepLen:])
	return artist, title, artist != "" && title != ""
}

// mediaExt is the set of file extensions nameFromPath strips (lower case, with the dot). Only known
// ones are stripped, so "Mr. Brightside" keeps its title.
var mediaExt = map[string]bool{
	".mp3": true, ".mp2": true, ".mp4": true, ".m4a": true, ".m4b": true, ".m4p": true, ".aac": true,
	".flac": true, ".ogg": true, ".oga": true, ".opus": true, ".wav": true, ".wave": true, ".wma": true,
	".aif": true, ".aiff": true, ".aifc": true, ".alac": true, ".ape": true, ".wv": true, ".mpc": true,
	".mka": true, ".mkv": true, ".webm": true, ".dsf": true, ".dff": true, ".mid": true, ".midi": true,
	".ac3": true, ".dts": true, ".amr": true, ".au": true, ".ra": true, ".rm": true, ".tta": true,
	".spx": true, ".caf": true, ".avi": true, ".mov": true, ".mpg": true, ".mpeg": true, ".3gp": true,
}

// nameFromPath returns the file name of a path or URL without directories, query and known media
// extension: "/music/Queen - Bohemian Rhapsody.flac" gives "Queen - Bohemian Rhapsody", and
// "file:///m/Daft%20Punk%20-%20Da%20Funk.mp3" gives "Daft Punk - Da Funk". A name without spaces has
// its underscores read as spaces ("Daft_Punk_-_Da_Funk.mp3").
func nameFromPath(p string) string {
	p = strings.TrimSpace(p)
	if isURL(p) {
		if u, err := url.Parse(p); err == nil {
			p = u.Path
		} else if i := strings.IndexAny(p, "?#"); i >= 0 {
			p = p[:i]
		}
	}
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		p = p[i+1:]
	}
	if ext := path.Ext(p); mediaExt[strings.ToLower(ext)] {
		p = strings.TrimSuffix(p, ext)
	}
	if !strings.Contains(p, " ") {
		p = strings.ReplaceAll(p, "_", " ")
	}
	return strings.TrimSpace(p)
}

// isURL reports whether p starts with a URL scheme followed by ":/" (http://, file:///, ...). A
// Windows drive ("C:\...") has a one-letter "scheme" and is not a URL.
func isURL(p string) bool {
	i := strings.Index(p, ":/")
	if i < 2 {
		return false
	}
	for j := 0; j < i; j++ {
		c := p[j]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// secondsFrom turns a number of seconds (possibly fractional) into whole seconds, or 0 when it is
// not a finite number in 0..MaxDurationSec.
func secondsFrom(f float64) int {
	if math.IsNaN(f) || f < 0 || f > MaxDurationSec {
		return 0
	}
	return int(math.Round(f))
}

// parseSeconds reads a duration written as seconds ("225", "225.4") or as a clock ("3:45",
// "1:02:03"). Anything else is unknown: 0.
func parseSeconds(s string) int {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if !strings.Contains(s, ":") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0
		}
		return secondsFrom(f)
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return 0
	}
	total := 0.0
	for i, p := range parts {
		isLast := i == len(parts)-1
		var v float64
		if isLast {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || f < 0 || i > 0 && f >= 60 {
				return 0
			}
			v = f
		} else {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || i > 0 && n >= 60 {
				return 0
			}
			v = float64(n)
		}
		total = total*60 + v
	}
	return secondsFrom(total)
}

// parseMillis reads a whole or fractional number of milliseconds as seconds; anything else is 0.
func parseMillis(s string) int {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0
	}
	return secondsFrom(f / 1000)
}
