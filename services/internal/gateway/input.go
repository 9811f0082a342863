package gateway

import (
	"strings"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/importer"
)

// MaxJSONDepth is the deepest nesting of arrays and objects a request body may have; a deeper body is
// refused (400) before it is decoded.
const MaxJSONDepth = 32

// jsonTooDeep reports whether data nests arrays and objects more than limit levels deep. It only
// scans bytes (skipping strings), so it is linear and allocation-free; whether data is valid JSON is
// the decoder's business.
func jsonTooDeep(data []byte, limit int) bool {
	depth, inString, escaped := 0, false, false
	for _, b := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
			continue
		}
		switch b {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// checkPlaylist enforces at the gateway the playlist limits that are cheap to check: content bytes,
// and for the line formats (m3u, csv) the line count and line length (413) and text-ness (422), the
// way the importer counts them. The worker checks the rest (tracks, fields of json and xspf).
func checkPlaylist(in api.PlaylistImport, lim importer.Limits) error {
	lim.SetDefaults()
	if len(in.Content) > lim.MaxBytes {
		return api.Errorf(api.CodeBodyTooLarge, "input.content is %d bytes, the limit is %d", len(in.Content), lim.MaxBytes)
	}
	var crBreaks bool
	switch strings.ToLower(strings.TrimSpace(in.Format)) {
	case api.FormatM3U, "m3u8":
		crBreaks = true // m3u files from old Macs end lines with a lone CR
	case api.FormatCSV:
	default:
		return nil
	}
	s := strings.TrimPrefix(in.Content, "\uFEFF")
	for n := 1; len(s) > 0; n++ {
		var i int
		if crBreaks {
			i = strings.IndexAny(s, "\r\n")
		} else {
			i = strings.IndexByte(s, '\n')
		}
		line, rest := s, ""
		if i >= 0 {
			line, rest = s[:i], s[i+1:]
			if s[i] == '\r' && strings.HasPrefix(rest, "\n") {
				rest = rest[1:]
			}
		}
		line = strings.TrimSuffix(line, "\r")
		switch {
		case n > lim.MaxLines:
			return api.Errorf(api.CodeBodyTooLarge, "input.content has more than %d lines", lim.MaxLines)
		case len(line) > lim.MaxLineLen:
			return api.Errorf(api.CodeBodyTooLarge, "input.content line %d is %d bytes, the limit is %d", n, len(line), lim.MaxLineLen)
		case strings.IndexByte(line, 0) >= 0:
			return api.Errorf(api.CodeInvalidInput, "input.content line %d: not a text file (NUL byte)", n)
		}
		s = rest
	}
	return nil
}

// validTrackCursor reports whether cursor is a LIBRARY key of owner: the owner token, a dot and the
// 32 lower-case hex digits of streams.TrackKey. Anything else, another owner's key included, is refused
// before the library is read.
func validTrackCursor(owner, cursor string) bool {
	rest, ok := strings.CutPrefix(cursor, owner+".")
	if !ok || len(rest) != 32 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
