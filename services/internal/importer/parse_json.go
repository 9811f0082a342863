package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jobwire/jobwire/api"
)

// jsonTrack is one array element. Fields stay raw so a wrong type is reported, not guessed at; keys
// match case-insensitively and unknown keys are ignored.
type jsonTrack struct {
	Artist      json.RawMessage `json:"artist"`
	Title       json.RawMessage `json:"title"`
	Album       json.RawMessage `json:"album"`
	DurationSec json.RawMessage `json:"durationSec"`
}

// parseJSON reads a JSON array of {"artist","title","album","durationSec"}. An element that is not an
// object, or whose artist, title or album is neither a string nor null, is an invalid entry; its line
// is its 1-based index. durationSec may be a number or a numeric string; anything else is unknown (0).
// A document that is not an array, or is not valid JSON, is malformed.
func parseJSON(s string, c *collector) error {
	d := json.NewDecoder(strings.NewReader(s))
	lines := newLineCounter(s)
	tok, err := d.Token()
	if err != nil {
		return jsonError(s, lines, d, err)
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '[' {
		return malformed(api.FormatJSON, lines.at(int(d.InputOffset())), "the document is %s, want an array of tracks", jsonKind(tok))
	}
	for i := 1; d.More(); i++ {
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return jsonError(s, lines, d, err)
		}
		if err := addJSONTrack(c, i, raw); err != nil {
			return err
		}
	}
	if _, err := d.Token(); err != nil { // the closing ']'
		return jsonError(s, lines, d, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return malformed(api.FormatJSON, lines.at(int(d.InputOffset())), "data after the array")
	}
	return nil
}

// addJSONTrack reads element i of the array and hands it to the collector.
func addJSONTrack(c *collector, i int, raw json.RawMessage) error {
	text := string(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return c.reject(i, text, "not an object")
	}
	var t jsonTrack
	if err := json.Unmarshal(raw, &t); err != nil {
		return c.reject(i, text, "not an object")
	}
	where := fmt.Sprintf("element %d", i)
	e := Entry{Line: i, DurationSec: jsonSeconds(t.DurationSec)}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"artist", t.Artist, &e.Artist}, {"title", t.Title, &e.Title}, {"album", t.Album, &e.Album}} {
		v, ok := jsonString(f.raw)
		if !ok {
			return c.reject(i, text, f.name+" is not a string")
		}
		if err := c.checkField(where, f.name, v); err != nil {
			return err
		}
		*f.dst = v
	}
	return c.add(e, text)
}

// jsonString reads a string field; a missing or null field is "".
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	return v, true
}

// jsonSeconds reads durationSec: a number, or a string as parseSeconds reads it; else 0.
func jsonSeconds(raw json.RawMessage) int {
	if len(raw) == 0 {
		return 0
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return secondsFrom(f)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return parseSeconds(s)
	}
	return 0
}

// jsonKind names the kind of value a first token starts.
func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// jsonError turns a decoder error into ErrMalformed naming the line where it happened.
func jsonError(s string, lines *lineCounter, d *json.Decoder, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return malformed(api.FormatJSON, lineOf(s, int(se.Offset)), "%s", clip(se.Error()))
	case errors.Is(err, io.EOF) && strings.TrimSpace(s) == "":
		return malformed(api.FormatJSON, 1, "empty document")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return malformed(api.FormatJSON, lineOf(s, len(s)), "unexpected end of the document")
	}
	return malformed(api.FormatJSON, lines.at(int(d.InputOffset())), "%s", clip(err.Error()))
}

// lineOf is the 1-based line of byte offset in s.
func lineOf(s string, offset int) int {
	offset = min(max(offset, 0), len(s))
	return 1 + strings.Count(s[:offset], "\n")
}
