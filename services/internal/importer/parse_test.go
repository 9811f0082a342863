package importer

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseFormats(t *testing.T) {
	t.Parallel()
	cases := []struct {
		format, content string
		err             error
	}{
		{"m3u", "A - B.mp3", nil},
		{" M3U8 ", "A - B.mp3", nil},
		{"JSON", `[{"artist":"A","title":"B"}]`, nil},
		{"Xspf", `<playlist><trackList><track><creator>A</creator><title>B</title></track></trackList></playlist>`, nil},
		{"csv", "artist,title\nA,B", nil},
		{"mp3", "A - B.mp3", ErrMalformed},
		{"", "A - B.mp3", ErrMalformed},
		{"m3u\x00", "A - B.mp3", ErrMalformed},
	}
	for _, tc := range cases {
		entries, _, err := Parse(tc.format, tc.content, Limits{})
		if !errors.Is(err, tc.err) {
			t.Errorf("Parse(%q) err = %v, want %v", tc.format, err, tc.err)
			continue
		}
		if tc.err == nil && (len(entries) != 1 || entries[0].Artist != "A" || entries[0].Title != "B") {
			t.Errorf("Parse(%q) = %+v", tc.format, entries)
		}
		if tc.err != nil && !strings.Contains(err.Error(), "unknown playlist format") {
			t.Errorf("Parse(%q) err = %v", tc.format, err)
		}
	}
}

func TestParseMaxBytesBeforeReading(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"m3u", "xspf", "csv", "json", "nonsense"} {
		_, _, err := Parse(format, strings.Repeat("x", DefaultMaxBytes+1), Limits{})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err = %v, want ErrTooLarge", format, err)
		}
	}
}

func TestLimitsSetDefaults(t *testing.T) {
	t.Parallel()
	var l Limits
	l.SetDefaults()
	if l != (Limits{MaxBytes: 1 << 20, MaxLines: 20000, MaxLineLen: 4096, MaxTracks: 10000}) {
		t.Fatalf("defaults = %+v", l)
	}
	l = Limits{MaxBytes: 5, MaxLines: -1}
	l.SetDefaults()
	if l.MaxBytes != 5 || l.MaxLines != DefaultMaxLines {
		t.Fatalf("SetDefaults changed a set field or kept a negative one: %+v", l)
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"  plain  ", "plain"},
		{"a\x00b\nc\td\u202ee", "a b c d e"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{strings.Repeat("a", 300), strings.Repeat("a", 200)},
		{strings.Repeat("a", 199) + "é", strings.Repeat("a", 199)},
		{strings.Repeat("€", 100), strings.Repeat("€", 66)},
	}
	for _, tc := range cases {
		got := clip(tc.in)
		if got != tc.want || len(got) > MaxInvalidText || !utf8.ValidString(got) {
			t.Errorf("clip(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNameFromPath(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"/music/Queen - Bohemian Rhapsody.flac", "Queen - Bohemian Rhapsody"},
		{`C:\Music\A - B.MP3`, "A - B"},
		{"file:///m/Daft%20Punk%20-%20Da%20Funk.mp3", "Daft Punk - Da Funk"},
		{"http://x.test/a%2Fb/A%20-%20B.ogg?x=1#frag", "A - B"},
		{"http://x.test", ""},
		{"http://[bad", "[bad"},
		{"A_-_B.opus", "A - B"},
		{"A - B_C.mp3", "A - B_C"},
		{"The Killers - Mr. Brightside", "The Killers - Mr. Brightside"},
		{"Artist - Vol.2", "Artist - Vol.2"},
		{"A - B.mp3.mp3", "A - B.mp3"},
	}
	for _, tc := range cases {
		if got := nameFromPath(tc.in); got != tc.want {
			t.Errorf("nameFromPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	t.Parallel()
	cases := map[string]int{
		"": 0, "225": 225, " 225.5 ": 226, "3:45": 225, "03:05": 185, "1:02:03": 3723, "0:59.6": 60,
		"-3": 0, "1:-5": 0, "1:60": 0, "1:2:3:4": 0, "a:b": 0, "NaN": 0, "Inf": 0, "1e9": 0, "9999999:00": 0,
	}
	for in, want := range cases {
		if got := parseSeconds(in); got != want {
			t.Errorf("parseSeconds(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestEachLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in       string
		crBreaks bool
		want     []string
	}{
		{"", true, nil},
		{"a", true, []string{"a"}},
		{"a\n", true, []string{"a"}},
		{"a\n\nb", false, []string{"a", "", "b"}},
		{"a\r\nb\r\n", false, []string{"a", "b"}},
		{"a\rb\r\nc\n\rd\r", true, []string{"a", "b", "c", "", "d"}},
		{"a\rb\r\nc", false, []string{"a\rb", "c"}},
		{"\r\n\r\n", true, []string{"", ""}},
		{"a\r\rb", true, []string{"a", "", "b"}},
	}
	for _, tc := range cases {
		var got []string
		_ = eachLine(tc.in, tc.crBreaks, func(n int, line string) error {
			if n != len(got)+1 {
				t.Errorf("%q: line number %d, want %d", tc.in, n, len(got)+1)
			}
			got = append(got, line)
			return nil
		})
		if !slices.Equal(got, tc.want) {
			t.Errorf("eachLine(%q, %v) = %q, want %q", tc.in, tc.crBreaks, got, tc.want)
		}
	}
}
