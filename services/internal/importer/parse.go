package importer

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jobwire/jobwire/api"
)

// Entry is one track read from a playlist, before normalisation. Line is the 1-based line it came
// from; for json it is the 1-based index in the array, for xspf the line of the <track> element.
type Entry struct {
	Line        int
	Artist      string
	Title       string
	Album       string
	DurationSec int
}

// MaxInvalidText bounds the Text of an InvalidLine, in bytes.
const MaxInvalidText = 200

// bom is the UTF-8 byte order mark, dropped from the start of any content.
const bom = "\uFEFF"

// Parse reads content in the given format (api.FormatM3U, FormatXSPF, FormatCSV or FormatJSON; case
// and surrounding space are ignored, "m3u8" means m3u). A leading UTF-8 byte order mark is ignored.
//
// Single broken entries do not fail the parse: they come back as invalid lines (line number, the
// text cleaned of control characters and cut to MaxInvalidText bytes, and the reason). Every returned
// entry passes Normalize. The error wraps ErrMalformed when the playlist as a whole cannot be read
// (its message names the line) or the format is unknown, and ErrTooLarge when content breaks a limit
// of lim (zero fields take their defaults); entries and invalid lines are nil then.
func Parse(format, content string, lim Limits) (entries []Entry, invalid []api.InvalidLine, err error) {
	lim.SetDefaults()
	format = canonicalFormat(format)
	if len(content) > lim.MaxBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(content), lim.MaxBytes)
	}
	content = strings.TrimPrefix(content, bom)
	c := &collector{format: format, lim: lim}
	switch format {
	case api.FormatM3U:
		err = parseM3U(content, c)
	case api.FormatXSPF:
		err = parseXSPF(content, c)
	case api.FormatCSV:
		err = parseCSV(content, c)
	case api.FormatJSON:
		err = parseJSON(content, c)
	default:
		return nil, nil, fmt.Errorf("%w: unknown playlist format %q", ErrMalformed, clip(format))
	}
	if err != nil {
		return nil, nil, err
	}
	return c.entries, c.invalid, nil
}

// canonicalFormat lower-cases and trims a format name and maps aliases to the api constants.
func canonicalFormat(format string) string {
	f := strings.ToLower(strings.TrimSpace(format))
	if f == "m3u8" {
		return api.FormatM3U
	}
	return f
}

// collector gathers what a parser reads and enforces MaxTracks.
type collector struct {
	format  string
	lim     Limits
	records int
	entries []Entry
	invalid []api.InvalidLine
}

// count counts one track record and fails once there are more than MaxTracks.
func (c *collector) count() error {
	c.records++
	if c.records > c.lim.MaxTracks {
		return tooLarge(c.format, "more than %d tracks", c.lim.MaxTracks)
	}
	return nil
}

// add counts a record and keeps e if it normalises, else records it as invalid with text.
func (c *collector) add(e Entry, text string) error {
	if err := c.count(); err != nil {
		return err
	}
	if _, err := Normalize(e); err != nil {
		c.invalid = append(c.invalid, invalidLine(e.Line, text, err.Error()))
		return nil
	}
	c.entries = append(c.entries, e)
	return nil
}

// reject counts a record and records it as invalid.
func (c *collector) reject(line int, text, reason string) error {
	if err := c.count(); err != nil {
		return err
	}
	c.invalid = append(c.invalid, invalidLine(line, text, reason))
	return nil
}

// checkField fails with ErrTooLarge when a text field of a json or xspf entry is over MaxLineLen.
func (c *collector) checkField(where, name, value string) error {
	if len(value) > c.lim.MaxLineLen {
		return tooLarge(c.format, "%s: %s is %d bytes, the limit is %d", where, name, len(value), c.lim.MaxLineLen)
	}
	return nil
}

func invalidLine(line int, text, reason string) api.InvalidLine {
	return api.InvalidLine{Line: line, Text: clip(text), Reason: reason}
}

// clip makes text safe to show: valid UTF-8, every control character a space, surrounding space
// trimmed, at most MaxInvalidText bytes without cutting a character.
func clip(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isInvisible(r) {
			return ' '
		}
		return r
	}, text)
	text = strings.TrimSpace(text)
	if len(text) <= MaxInvalidText {
		return text
	}
	cut := MaxInvalidText
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut]
}
