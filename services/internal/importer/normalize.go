package importer

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// ErrIncomplete is wrapped by Normalize for an entry without an artist or a title.
var ErrIncomplete = errors.New("incomplete track")

// MaxDurationSec is the longest duration kept; longer (or negative) durations are read as unknown (0).
const MaxDurationSec = 1_000_000

// Normalize cleans every text field of e: invalid UTF-8 becomes U+FFFD, whitespace of any kind
// (newlines and tabs included) becomes one space between words and none at the ends, other control
// characters and invisible formatting characters (bidi overrides, zero-width spaces, byte order marks)
// are removed, and the result is in Unicode NFC. A duration outside 0..MaxDurationSec becomes 0.
// It returns an error wrapping ErrIncomplete when artist or title is empty after cleaning.
// Normalize is idempotent.
func Normalize(e Entry) (Entry, error) {
	e.Artist = cleanField(e.Artist)
	e.Title = cleanField(e.Title)
	e.Album = cleanField(e.Album)
	if e.DurationSec < 0 || e.DurationSec > MaxDurationSec {
		e.DurationSec = 0
	}
	switch {
	case e.Artist == "" && e.Title == "":
		return e, fmt.Errorf("%w: missing artist and title", ErrIncomplete)
	case e.Artist == "":
		return e, fmt.Errorf("%w: missing artist", ErrIncomplete)
	case e.Title == "":
		return e, fmt.Errorf("%w: missing title", ErrIncomplete)
	}
	return e, nil
}

// fold is Unicode full case folding; it is stateless and safe for concurrent use.
var fold = cases.Fold()

// Identity is the dedupe key of an entry: its case-folded artist, "\x1f" and its case-folded title,
// in NFC. Album and duration are ignored, so "The Beatles - Yesterday" and
// "the beatles  -  YESTERDAY" are the same track. The fields are cleaned as by Normalize first, so
// Identity(e) == Identity(Normalize(e)).
func Identity(e Entry) string {
	return foldField(e.Artist) + "\x1f" + foldField(e.Title)
}

func foldField(s string) string {
	s = cleanField(s)
	if isASCII(s) {
		return strings.ToLower(s) // what full case folding does to ASCII
	}
	// Folding may leave a string that is not in NFC ("Case folding does not normalize the input and
	// may not preserve a normal form"), so normalise again after it.
	return norm.NFC.String(fold.String(s))
}

// cleanField is the text normalisation of Normalize for one field.
func cleanField(s string) string {
	if isCleanASCII(s) {
		return s // the common case, which cleanFieldFull would return unchanged
	}
	return cleanFieldFull(s)
}

// isCleanASCII reports whether s is printable ASCII with single spaces between words and none at
// the ends.
func isCleanASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' ') {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// cleanFieldFull is cleanField without its fast path.
func cleanFieldFull(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r), isInvisible(r):
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	return norm.NFC.String(s)
}

// isInvisible reports whether r is a formatting character that has no place in a track name and can
// be used to disguise one: bidi embeddings, overrides, isolates and marks, zero-width space and word
// joiner, the byte order mark and the noncharacters U+FFFE and U+FFFF. Joiners (U+200C, U+200D) stay:
// scripts and emoji need them.
func isInvisible(r rune) bool {
	switch {
	case r == 0x200B, r == 0x200E, r == 0x200F, r == 0x2060, r == 0xFEFF, r == 0xFFFE, r == 0xFFFF:
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
