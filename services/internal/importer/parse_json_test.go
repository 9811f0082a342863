package importer

import (
	"errors"
	"strings"
	"testing"
)

func TestParseJSON(t *testing.T) {
	runParseCases(t, "json", []parseCase{
		{
			name:    "basic",
			content: `[{"artist":"Queen","title":"Bohemian Rhapsody","album":"A Night at the Opera","durationSec":354},{"artist":"Daft Punk","title":"Get Lucky"}]`,
			entries: []Entry{e(1, "Queen", "Bohemian Rhapsody", "A Night at the Opera", 354), e(2, "Daft Punk", "Get Lucky", "", 0)},
		},
		{
			name:    "unknown fields, key case, BOM, pretty printed",
			content: "\uFEFF[\r\n  {\"Artist\": \"A\", \"TITLE\": \"B\", \"rating\": 5, \"tags\": [1, {\"x\": null}]},\r\n  {\"artist\": \"C\", \"title\": \"D\", \"album\": null}\r\n]\r\n",
			entries: []Entry{e(1, "A", "B", "", 0), e(2, "C", "D", "", 0)},
		},
		{
			name:    "durations",
			content: `[{"artist":"A","title":"B","durationSec":225.6},{"artist":"C","title":"D","durationSec":"3:45"},{"artist":"E","title":"F","durationSec":-1},{"artist":"G","title":"H","durationSec":1e300},{"artist":"I","title":"J","durationSec":1e999},{"artist":"K","title":"L","durationSec":true}]`,
			entries: []Entry{e(1, "A", "B", "", 226), e(2, "C", "D", "", 225), e(3, "E", "F", "", 0), e(4, "G", "H", "", 0), e(5, "I", "J", "", 0), e(6, "K", "L", "", 0)},
		},
		{
			name:    "broken elements are invalid",
			content: `[1, "A - B", null, [], {"artist":"A"}, {"title":"T"}, {"artist":42,"title":"x"}, {"artist":"x","title":{}}, {"artist":"x","title":"y","album":[]}, {"artist":"ok","title":"fine"}]`,
			entries: []Entry{e(10, "ok", "fine", "", 0)},
			invalid: []badLine{
				{1, "not an object", "1"}, {2, "not an object", `"A - B"`}, {3, "not an object", "null"}, {4, "not an object", "[]"},
				{5, "missing title", `{"artist":"A"}`}, {6, "missing artist", ""}, {7, "artist is not a string", "42"},
				{8, "title is not a string", ""}, {9, "album is not a string", ""},
			},
		},
		{
			name:    "hostile strings",
			content: `[{"artist":"Line\nBreak\u0000\u001b[2J","title":"\u202eevil\u200b\ttab"}, {"artist":"\ud800","title":"lone surrogate"}, {"artist":"\u0000\n\t ","title":"x"}]`,
			entries: []Entry{e(1, "Line Break[2J", "evil tab", "", 0), e(2, "\uFFFD", "lone surrogate", "", 0)},
			invalid: []badLine{{3, "missing artist", ""}},
		},
		{name: "empty array", content: " [ ] "},
		{
			name:    "object, not array",
			content: "\n{\"tracks\": []}",
			err:     ErrMalformed, errText: "malformed json: line 2: the document is an object, want an array of tracks",
		},
		{name: "string document", content: `"x"`, err: ErrMalformed, errText: "the document is a string"},
		{name: "number document", content: `42`, err: ErrMalformed, errText: "the document is a number"},
		{name: "null document", content: `null`, err: ErrMalformed, errText: "the document is null"},
		{
			name:    "syntax error names the line",
			content: "[\n  {\"artist\":\"A\",\"title\":\"B\"},\n  {\"artist\" \"C\"}\n]",
			err:     ErrMalformed, errText: "malformed json: line 3: invalid character '\"' after object key",
		},
		{
			name:    "missing comma",
			content: "[\n1\n2\n]",
			err:     ErrMalformed, errText: "malformed json: line 3:",
		},
		{
			name:    "truncated",
			content: "[\n{\"artist\":\"A\",\"title\":\"B\"},\n",
			err:     ErrMalformed, errText: "malformed json: line 3: unexpected end of the document",
		},
		{
			name:    "unterminated element",
			content: "[\n{\"artist\":\"A\",\n\"title\":\"B",
			err:     ErrMalformed, errText: "malformed json: line 3: unexpected end",
		},
		{
			name:    "data after the array",
			content: "[]\n[]",
			err:     ErrMalformed, errText: "malformed json: line 2: data after the array",
		},
		{name: "empty", content: "  \n", err: ErrMalformed, errText: "malformed json: line 1: empty document"},
		{name: "not json", content: "#EXTM3U\n", err: ErrMalformed, errText: "malformed json: line 1: invalid character '#'"},
		{
			name:    "too many tracks",
			content: `[` + strings.Repeat(`{"artist":"A","title":"B"},`, 3) + `1]`,
			lim:     Limits{MaxTracks: 3},
			err:     ErrTooLarge, errText: "more than 3 tracks",
		},
		{
			name:    "huge field",
			content: `[{"artist":"A","title":"B"},{"artist":"` + strings.Repeat("a", 5000) + `","title":"B"}]`,
			err:     ErrTooLarge, errText: "element 2: artist is 5000 bytes",
		},
		{
			name:    "long minified documents are fine",
			content: "[" + strings.TrimSuffix(strings.Repeat(`{"artist":"A","title":"B"},`, 300), ",") + "]",
			entries: func() []Entry {
				out := make([]Entry, 300)
				for i := range out {
					out[i] = e(i+1, "A", "B", "", 0)
				}
				return out
			}(),
		},
	})
}

func TestParseJSONDeepNesting(t *testing.T) {
	doc := "[" + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "]"
	_, _, err := Parse("json", doc, Limits{})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "max depth") {
		t.Fatalf("err = %v, want malformed (max depth)", err)
	}
}
