package gateway

import (
	"strings"
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
