package importer

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/jobwire/jobwire/api"
)

// csvColumn is what a header cell means.
type csvColumn int

const (
	colOther csvColumn = iota
	colArtist
	colTitle
	colAlbum
	colDurationSec
	colDurationMs
)

// csvHeaderNames maps a header cell, lower-cased with everything but letters and digits removed, to
// its column. Besides the documented names (artist, title, album, duration, durationSec,
// duration_sec) it knows the usual export names ("Artist Name(s)", "Track Name", "Duration (ms)").
var csvHeaderNames = map[string]csvColumn{
	"artist": colArtist, "artists": colArtist, "artistname": colArtist, "artistnames": colArtist,
	"creator": colArtist, "performer": colArtist,
	"title": colTitle, "track": colTitle, "trackname": colTitle, "tracktitle": colTitle, "song": colTitle,
	"songname": colTitle, "songtitle": colTitle,
	"album": colAlbum, "albumname": colAlbum, "albumtitle": colAlbum,
	"duration": colDurationSec, "durationsec": colDurationSec, "durationsecs": colDurationSec,
	"durationseconds": colDurationSec, "length": colDurationSec, "time": colDurationSec,
	"durationms": colDurationMs, "durationmillis": colDurationMs, "durationmilliseconds": colDurationMs,
}

// csvLayout is where each known column is in a row; -1 when absent.
type csvLayout struct {
	artist, title, album, duration int
	durationMs                     bool
	width                          int
}

// parseCSV reads CSV with a header row. Header cells are matched case-insensitively, ignoring spaces
// and punctuation; artist and title are required, album and duration (seconds, "m:ss", or
// milliseconds in a "duration (ms)" column) are optional, other columns are ignored. The delimiter
// is ',' unless the header line has more ';' or tabs. A row whose field count differs from the header
// or with a stray quote is an invalid line; a quoted field left open to the end of the content is
// malformed. Repeats of the header row are skipped.
func parseCSV(s string, c *collector) error {
	if err := checkLines(api.FormatCSV, s, false, c.lim); err != nil {
		return err
	}
	r := csv.NewReader(strings.NewReader(s))
	r.Comma = sniffDelimiter(s)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err == io.EOF {
		return malformed(api.FormatCSV, 1, "no header row")
	}
	if err != nil {
		return csvError(err)
	}
	line, _ := r.FieldPos(0)
	layout, err := csvHeader(header, line)
	if err != nil {
		return err
	}
	for {
		start := r.InputOffset()
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		text := s[start:r.InputOffset()]
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) || unclosedQuote(pe, r.InputOffset() == int64(len(s))) {
				return csvError(err)
			}
			if err := c.reject(pe.StartLine, text, pe.Err.Error()); err != nil {
				return err
			}
			continue
		}
		line, _ := r.FieldPos(0)
		switch {
		case len(rec) != layout.width:
			err = c.reject(line, text, fmt.Sprintf("row has %d fields, the header has %d", len(rec), layout.width))
		case sameRow(rec, header):
			continue
		default:
			err = c.add(layout.entry(line, rec), text)
		}
		if err != nil {
			return err
		}
	}
}

// csvHeader finds the columns of a header row at line.
func csvHeader(header []string, line int) (csvLayout, error) {
	l := csvLayout{artist: -1, title: -1, album: -1, duration: -1, width: len(header)}
	for i, cell := range header {
		col := csvHeaderNames[headerKey(cell)]
		switch {
		case col == colArtist && l.artist < 0:
			l.artist = i
		case col == colTitle && l.title < 0:
			l.title = i
		case col == colAlbum && l.album < 0:
			l.album = i
		case (col == colDurationSec || col == colDurationMs) && l.duration < 0:
			l.duration, l.durationMs = i, col == colDurationMs
		}
	}
	var missing []string
	if l.artist < 0 {
		missing = append(missing, "artist")
	}
	if l.title < 0 {
		missing = append(missing, "title")
	}
	if len(missing) > 0 {
		return l, malformed(api.FormatCSV, line, "header has no %s column (header: %s)",
			strings.Join(missing, " or "), clip(strings.Join(header, ",")))
	}
	return l, nil
}

// entry reads one row of the right width.
func (l csvLayout) entry(line int, rec []string) Entry {
	e := Entry{Line: line, Artist: rec[l.artist], Title: rec[l.title]}
	if l.album >= 0 {
		e.Album = rec[l.album]
	}
	if l.duration >= 0 {
		if l.durationMs {
			e.DurationSec = parseMillis(rec[l.duration])
		} else {
			e.DurationSec = parseSeconds(rec[l.duration])
		}
	}
	return e
}

// headerKey lower-cases a header cell and drops everything but letters and digits.
func headerKey(cell string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, cell)
}

// sameRow reports whether rec repeats the header (a concatenated export).
func sameRow(rec, header []string) bool {
	for i := range rec {
		if headerKey(rec[i]) != headerKey(header[i]) {
			return false
		}
	}
	return true
}

// sniffDelimiter picks ',', ';' or tab: whichever occurs most, outside quotes, in the first line that
// is not blank. Ties go to ','.
func sniffDelimiter(s string) rune {
	var first string
	_ = eachLine(s, false, func(_ int, line string) error {
		if strings.TrimSpace(line) != "" {
			first = line
			return io.EOF
		}
		return nil
	})
	counts := map[rune]int{}
	inQuote := false
	for _, r := range first {
		switch {
		case r == '"':
			inQuote = !inQuote
		case !inQuote && (r == ',' || r == ';' || r == '\t'):
			counts[r]++
		}
	}
	best := ','
	for _, r := range []rune{';', '\t'} {
		if counts[r] > counts[best] {
			best = r
		}
	}
	return best
}

// unclosedQuote reports whether pe is a quoted field that ran over several lines to the end of the
// content (atEnd): every row after its start was swallowed, so the file as a whole is unreadable.
func unclosedQuote(pe *csv.ParseError, atEnd bool) bool {
	return atEnd && pe.Line > pe.StartLine && errors.Is(pe.Err, csv.ErrQuote)
}

// csvError turns an error that stops the CSV reader into ErrMalformed at the line where the
// record started.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if unclosedQuote(pe, true) {
			msg = "quoted field not closed before the end"
		}
		return malformed(api.FormatCSV, pe.StartLine, "%s", msg)
	}
	return fmt.Errorf("%w %s: %w", ErrMalformed, api.FormatCSV, err)
}
