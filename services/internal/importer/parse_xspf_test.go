package importer

import (
	"fmt"
	"strings"
	"testing"
)

const xspfHead = `<?xml version="1.0" encoding="UTF-8"?>
<playlist version="1" xmlns="http://xspf.org/ns/0/">
  <trackList>
`

func xspfDoc(tracks ...string) string {
	return xspfHead + strings.Join(tracks, "\n") + "\n  </trackList>\n</playlist>\n"
}

func TestParseXSPF(t *testing.T) {
	runParseCases(t, "xspf", []parseCase{
		{
			name: "basic",
			content: xspfDoc(
				`    <track><creator>Queen</creator><title>Bohemian Rhapsody</title><album>A Night at the Opera</album><duration>354320</duration></track>`,
				`    <track>
      <location>file:///x.mp3</location>
      <title>Roads</title>
      <creator>Portishead</creator>
    </track>`),
			entries: []Entry{e(4, "Queen", "Bohemian Rhapsody", "A Night at the Opera", 354), e(5, "Portishead", "Roads", "", 0)},
		},
		{
			name:    "no namespace, CDATA, entities, BOM and CRLF",
			content: "\uFEFF<playlist>\r\n<trackList>\r\n<track><creator><![CDATA[Simon & Garfunkel]]></creator><title>Cecilia &amp; &#x263A;</title></track>\r\n</trackList>\r\n</playlist>",
			entries: []Entry{e(3, "Simon & Garfunkel", "Cecilia & ☺", "", 0)},
		},
		{
			name:    "declared encoding is ignored",
			content: `<?xml version="1.0" encoding="ISO-8859-1"?><playlist><trackList><track><creator>Björk</creator><title>Jóga</title></track></trackList></playlist>`,
			entries: []Entry{e(1, "Björk", "Jóga", "", 0)},
		},
		{
			name: "location fills what is missing",
			content: xspfDoc(
				`<track><location>file:///m/Daft%20Punk%20-%20Da%20Funk.mp3</location></track>`,
				`<track><title>Only Title</title><location>/m/Some Artist - Other.mp3</location></track>`,
				`<track><creator>Only Creator</creator></track>`),
			entries: []Entry{e(4, "Daft Punk", "Da Funk", "", 0), e(5, "Some Artist", "Only Title", "", 0)},
			invalid: []badLine{{6, "missing title", "<track><creator>Only Creator</creator></track>"}},
		},
		{
			name: "bad durations are unknown",
			content: xspfDoc(`<track><creator>A</creator><title>B</title><duration>-5</duration></track>`,
				`<track><creator>C</creator><title>D</title><duration>abc</duration></track>`,
				`<track><creator>E</creator><title>F</title><duration>1e30</duration></track>`),
			entries: []Entry{e(4, "A", "B", "", 0), e(5, "C", "D", "", 0), e(6, "E", "F", "", 0)},
		},
		{
			name: "hostile text",
			content: xspfDoc("<track><creator>  A\u202e\u200b  </creator><title>Multi\n\tLine\r\n Title</title></track>",
				"<track><creator>&#x200B; </creator><title>x</title></track>"),
			entries: []Entry{e(4, "A", "Multi Line Title", "", 0)},
			invalid: []badLine{{7, "missing artist", ""}},
		},
		{
			name:    "tracks outside trackList are ignored",
			content: `<playlist><title>Mix</title><track><creator>A</creator><title>B</title></track><extension><trackList><track><creator>C</creator><title>D</title></track></trackList></extension><trackList/></playlist>`,
		},
		{name: "empty playlist", content: `<playlist/>`},
		{
			name:    "unclosed element",
			content: xspfDoc(`<track><creator>A</creator><title>B</title>`),
			err:     ErrMalformed, errText: "malformed xspf: line 5: element <track> closed by </trackList>",
		},
		{
			name:    "unexpected end",
			content: "<playlist>\n<trackList>\n<track>",
			err:     ErrMalformed, errText: "malformed xspf: line 3: unexpected EOF",
		},
		{
			name:    "syntax error inside a track",
			content: "<playlist><trackList>\n\n<track><title a=>x</title></track></trackList></playlist>",
			err:     ErrMalformed, errText: "malformed xspf: line 3:",
		},
		{
			name:    "wrong root",
			content: "<?xml version=\"1.0\"?>\n<html><body/></html>",
			err:     ErrMalformed, errText: "malformed xspf: line 2: root element is <html>, want <playlist>",
		},
		{
			name:    "second root",
			content: "<playlist/>\n<playlist/>",
			err:     ErrMalformed, errText: "line 2: element <playlist> after the root element",
		},
		{
			name:    "text outside root",
			content: "<playlist/>\r\n\r\ntrailing",
			err:     ErrMalformed, errText: "line 3: text outside the <playlist> element",
		},
		{
			name:    "doctype with entities",
			content: "<?xml version=\"1.0\"?>\n<!DOCTYPE playlist [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<playlist><trackList><track><creator>&xxe;</creator><title>x</title></track></trackList></playlist>",
			err:     ErrMalformed, errText: "line 2: DOCTYPE is not allowed",
		},
		{
			name:    "undefined entity",
			content: "<playlist><trackList>\n<track><creator>&foo;</creator><title>x</title></track></trackList></playlist>",
			err:     ErrMalformed, errText: "line 2: invalid character entity &foo;",
		},
		{
			name:    "invalid UTF-8",
			content: "<playlist>\n<trackList><track><creator>\xff</creator><title>x</title></track></trackList></playlist>",
			err:     ErrMalformed, errText: "line 2: invalid UTF-8",
		},
		{name: "empty", content: "", err: ErrMalformed, errText: "line 1: no <playlist> element"},
		{name: "not xml", content: "A - B.mp3\n", err: ErrMalformed, errText: "malformed xspf"},
		{
			name:    "too many tracks",
			content: xspfDoc(strings.Repeat("<track><creator>A</creator><title>B</title></track>", 3)),
			lim:     Limits{MaxTracks: 2},
			err:     ErrTooLarge, errText: "more than 2 tracks",
		},
		{
			name:    "huge field",
			content: xspfDoc("<track><creator>A</creator><title>" + strings.Repeat("x", 5000) + "</title></track>"),
			err:     ErrTooLarge, errText: "line 4: title is 5000 bytes",
		},
		{
			name:    "one-line documents may be long",
			content: "<playlist><trackList>" + strings.Repeat("<track><creator>A</creator><title>B</title></track>", 200) + "</trackList></playlist>",
			entries: repeatEntry(e(1, "A", "B", "", 0), 200),
		},
	})
}

func repeatEntry(en Entry, n int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		out[i] = en
	}
	return out
}

func TestParseXSPFDeepNesting(t *testing.T) {
	// Deep nesting must not crash or blow the stack: outside a track it is ignored, inside one it
	// is skipped and the track has no artist and title.
	deep := strings.Repeat("<a>", 100000) + strings.Repeat("</a>", 100000)
	entries, invalid, err := Parse("xspf", "<playlist>"+deep+"</playlist>", Limits{})
	if err != nil || len(entries) != 0 || len(invalid) != 0 {
		t.Fatalf("entries %v, invalid %v, err %v", entries, invalid, err)
	}
	doc := fmt.Sprintf("<playlist><trackList><track>%s</track></trackList></playlist>", deep)
	entries, invalid, err = Parse("xspf", doc, Limits{})
	if err != nil || len(entries) != 0 || len(invalid) != 1 || invalid[0].Reason != "incomplete track: missing artist and title" {
		t.Fatalf("entries %v, invalid %v, err %v", entries, invalid, err)
	}
}
