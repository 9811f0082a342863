package importer

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jobwire/jobwire/api"
)

// xspfTrack is the part of an XSPF <track> the importer reads. Elements are matched by local name, so
// documents with or without the XSPF namespace both work.
type xspfTrack struct {
	Creator  string   `xml:"creator"`
	Title    string   `xml:"title"`
	Album    string   `xml:"album"`
	Duration string   `xml:"duration"`
	Location []string `xml:"location"`
}

// parseXSPF reads an XSPF playlist: <playlist><trackList><track> with <creator>, <title>, <album> and
// <duration> (milliseconds). When creator or title is missing, the file name of the first <location>
// ("Artist - Title.mp3") fills it. The document must be well-formed XML with a <playlist> root; the
// decoder is strict, expands only the predefined and numeric entities and never loads anything: a
// DOCTYPE is refused. The encoding a declaration names is ignored: content is already text.
func parseXSPF(s string, c *collector) error {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = true
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	lines := newLineCounter(s)

	var (
		depth    int
		path     [2]string // local names of the root and of its child being read
		rootSeen bool
	)
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return xmlError(err, lines.at(int(d.InputOffset())))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case depth == 0 && rootSeen:
				return malformed(api.FormatXSPF, lines.at(int(start)), "element <%s> after the root element", clip(t.Name.Local))
			case depth == 0 && t.Name.Local != "playlist":
				return malformed(api.FormatXSPF, lines.at(int(start)), "root element is <%s>, want <playlist>", clip(t.Name.Local))
			case depth == 2 && path[1] == "trackList" && t.Name.Local == "track":
				line := lines.at(int(start))
				var tr xspfTrack
				if err := d.DecodeElement(&tr, &t); err != nil {
					return xmlError(err, lines.at(int(d.InputOffset())))
				}
				if err := addXSPFTrack(c, line, tr, s[start:d.InputOffset()]); err != nil {
					return err
				}
				continue
			}
			if depth < len(path) {
				path[depth] = t.Name.Local
			}
			depth++
			rootSeen = true
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth > 0 {
				break
			}
			// Find the text in the source: the decoder has turned "\r\n" into "\n".
			if i := strings.IndexFunc(s[start:d.InputOffset()], notXMLSpace); i >= 0 {
				return malformed(api.FormatXSPF, lines.at(int(start)+i), "text outside the <playlist> element")
			}
		case xml.Directive:
			if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(string(t))), "DOCTYPE") {
				return malformed(api.FormatXSPF, lines.at(int(start)), "DOCTYPE is not allowed")
			}
		}
	}
	if !rootSeen {
		return malformed(api.FormatXSPF, lines.at(len(s)), "no <playlist> element")
	}
	return nil
}

func notXMLSpace(r rune) bool { return r != ' ' && r != '\t' && r != '\r' && r != '\n' }

// addXSPFTrack checks the fields of one <track> and hands it to the collector.
func addXSPFTrack(c *collector, line int, tr xspfTrack, text string) error {
	where := fmt.Sprintf("line %d", line)
	for _, f := range []struct{ name, value string }{
		{"creator", tr.Creator}, {"title", tr.Title}, {"album", tr.Album}, {"duration", tr.Duration},
	} {
		if err := c.checkField(where, f.name, f.value); err != nil {
			return err
		}
	}
	e := Entry{Line: line, Artist: tr.Creator, Title: tr.Title, Album: tr.Album, DurationSec: parseMillis(tr.Duration)}
	if (cleanField(e.Artist) == "" || cleanField(e.Title) == "") && len(tr.Location) > 0 {
		loc := tr.Location[0]
		if err := c.checkField(where, "location", loc); err != nil {
			return err
		}
		if artist, title, ok := splitArtistTitle(nameFromPath(loc)); ok {
			if cleanField(e.Artist) == "" {
				e.Artist = artist
			}
			if cleanField(e.Title) == "" {
				e.Title = title
			}
		}
	}
	return c.add(e, text)
}

// xmlError turns a decoder error into ErrMalformed, with the line the decoder reported for a syntax
// error and line otherwise.
func xmlError(err error, line int) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return malformed(api.FormatXSPF, se.Line, "%s", clip(se.Msg))
	}
	return malformed(api.FormatXSPF, line, "%s", clip(err.Error()))
}

// lineCounter maps byte offsets of s to 1-based line numbers. Offsets must not decrease between
// calls, so a whole document costs one pass.
type lineCounter struct {
	s      string
	offset int
	line   int
}

func newLineCounter(s string) *lineCounter { return &lineCounter{s: s, line: 1} }

func (lc *lineCounter) at(offset int) int {
	offset = min(max(offset, lc.offset), len(lc.s))
	lc.line += strings.Count(lc.s[lc.offset:offset], "\n")
	lc.offset = offset
	return lc.line
}
