package importer

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/jobwire/jobwire/api"
)

// fuzzLimits are small, so the fuzzer reaches the limits too.
var fuzzLimits = Limits{MaxBytes: 64 << 10, MaxLines: 200, MaxLineLen: 512, MaxTracks: 100}

// checkParsed asserts the invariants of any Parse result: only our errors, nothing returned with an
// error, every entry normalises to a non-empty artist and title, line numbers within 1..maxLine,
// invalid lines with clean short text and a reason, and the track limit held.
func checkParsed(t *testing.T, format, content string, maxLine int) {
	t.Helper()
	entries, invalid, err := Parse(format, content, fuzzLimits)
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error of an unknown kind: %v", err)
		}
		if entries != nil || invalid != nil {
			t.Fatalf("results returned with error %v", err)
		}
		if !strings.HasPrefix(err.Error(), "malformed "+format+": line ") && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("malformed error does not name the line: %v", err)
		}
		return
	}
	if n := len(entries) + len(invalid); n > fuzzLimits.MaxTracks {
		t.Fatalf("%d records, over MaxTracks", n)
	}
	for _, e := range entries {
		n, err := Normalize(e)
		if err != nil || n.Artist == "" || n.Title == "" {
			t.Fatalf("entry %+v normalises to %+v, %v", e, n, err)
		}
		if e.Line < 1 || e.Line > maxLine {
			t.Fatalf("entry line %d not in 1..%d", e.Line, maxLine)
		}
		checkIdentity(t, n)
	}
	for _, il := range invalid {
		if il.Line < 1 || il.Line > maxLine {
			t.Fatalf("invalid line %d not in 1..%d", il.Line, maxLine)
		}
		if len(il.Text) > MaxInvalidText || !utf8.ValidString(il.Text) || strings.ContainsFunc(il.Text, unicode.IsControl) {
			t.Fatalf("invalid text %q not clean", il.Text)
		}
		if il.Reason == "" {
			t.Fatalf("invalid line without a reason: %+v", il)
		}
	}
}

// checkIdentity asserts the identity of a normalised entry is stable and has one separator.
func checkIdentity(t *testing.T, n Entry) {
	t.Helper()
	id := Identity(n)
	if strings.Count(id, "\x1f") != 1 {
		t.Fatalf("identity %q of %+v holds %d separators", id, n, strings.Count(id, "\x1f"))
	}
	again, _ := Normalize(n)
	if Identity(again) != id {
		t.Fatalf("identity changed by normalising again: %q then %q", id, Identity(again))
	}
}

// lineCount is the number of lines of s as a parser numbers them (at least 1).
func lineCount(s string, crBreaks bool) int {
	n := 0
	_ = eachLine(strings.TrimPrefix(s, bom), crBreaks, func(int, string) error { n++; return nil })
	return max(n, 1)
}

func FuzzParseM3U(f *testing.F) {
	for _, s := range []string{
		sampleM3U, "", "\uFEFF#EXTM3U\r\n#EXTINF:-1 a=\"x,y\",A - B\r\nhttp://x/y%20z.mp3\r\n",
		"#EXTALB:Al\n#EXTINF:1,T\n/m/A - B.flac\n#EXTINF:\n", "C:\\m\\A_-_B.mp3\rfile:///A%20-%20B.ogg\r",
		"#EXTINF:1e400,\xff - \x00\n", " - \n - x\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkParsed(t, api.FormatM3U, s, lineCount(s, true))
	})
}

func FuzzParseXSPF(f *testing.F) {
	for _, s := range []string{
		xspfDoc(`<track><creator>A</creator><title>B</title><duration>1000</duration></track>`),
		`<playlist><trackList><track><location>file:///A%20-%20B.mp3</location></track></trackList></playlist>`,
		"<playlist>\n<trackList>\n<track><creator>&amp;</creator><title><![CDATA[x]]></title></track>",
		`<!DOCTYPE x><playlist/>`, `<?xml version="1.0" encoding="latin1"?><playlist/>`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkParsed(t, api.FormatXSPF, s, strings.Count(s, "\n")+1)
	})
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"artist,title,album,duration\nA,B,C,3:45\n", "Artist;Title\n\"a;b\";c\n", "artist\ttitle\nA\tB\n",
		"artist,title\n\"A\nB\",C\nx\"y,z\n\"open,\n", "Track Name,Artist Name(s),Duration (ms)\nT,A,1000\n", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkParsed(t, api.FormatCSV, s, lineCount(s, false))
	})
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`[{"artist":"A","title":"B","album":"C","durationSec":1}]`, `[1,null,"x",{"artist":2}]`,
		"[\n{\"artist\":\"\\u0000\\n\",\"title\":\"\\ud800\"}\n]", `{"a":1}`, `[`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Entry lines of json are array indexes: bounded by the number of elements, hence by the
		// length of the document.
		checkParsed(t, api.FormatJSON, s, max(len(s), 1))
	})
}

func FuzzNormalize(f *testing.F) {
	f.Add("  The   Beatles ", "Yesterday\n", "Help!", 125)
	f.Add("Beyonce\u0301", "\u202eHalo\u200b", "", -1)
	f.Add("\xff\x00", "\t", "a\u2028b", 1<<40)
	f.Add("Straße", "ΣΊΣΥΦΟΣ", "ǅ", 0)
	f.Fuzz(func(t *testing.T, artist, title, album string, dur int) {
		for _, s := range []string{artist, title, album} {
			if cleanField(s) != cleanFieldFull(s) {
				t.Fatalf("fast path: cleanField(%q) = %q, full %q", s, cleanField(s), cleanFieldFull(s))
			}
			if got, want := foldField(s), norm.NFC.String(fold.String(cleanFieldFull(s))); got != want {
				t.Fatalf("fast path: foldField(%q) = %q, want %q", s, got, want)
			}
		}
		n, err := Normalize(Entry{Line: 1, Artist: artist, Title: title, Album: album, DurationSec: dur})
		for _, field := range []string{n.Artist, n.Title, n.Album} {
			if !utf8.ValidString(field) || !norm.NFC.IsNormalString(field) {
				t.Fatalf("field %q is not valid NFC", field)
			}
			if strings.TrimSpace(field) != field || strings.Contains(field, "  ") {
				t.Fatalf("field %q has extra space", field)
			}
			if strings.ContainsFunc(field, func(r rune) bool { return unicode.IsControl(r) || isInvisible(r) }) {
				t.Fatalf("field %q has control or invisible characters", field)
			}
		}
		if n.DurationSec < 0 || n.DurationSec > MaxDurationSec {
			t.Fatalf("duration %d", n.DurationSec)
		}
		again, err2 := Normalize(n)
		if again != n || (err == nil) != (err2 == nil) {
			t.Fatalf("not idempotent: %+v (%v) then %+v (%v)", n, err, again, err2)
		}
		if err != nil {
			if !errors.Is(err, ErrIncomplete) || n.Artist != "" && n.Title != "" {
				t.Fatalf("err %v for %+v", err, n)
			}
			return
		}
		if n.Artist == "" || n.Title == "" {
			t.Fatalf("no error for %+v", n)
		}
		checkIdentity(t, n)
		if Identity(Entry{Artist: artist, Title: title}) != Identity(n) {
			t.Fatalf("Identity of the raw entry differs from that of the normalised one")
		}
	})
}
