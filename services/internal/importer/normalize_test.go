package importer

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   Entry
		want Entry
		err  string
	}{
		{"trims and collapses", e(3, "  The   Beatles ", "\tYesterday\n", " Help! ", 125), e(3, "The Beatles", "Yesterday", "Help!", 125), ""},
		{"NFC", e(1, "Beyonce\u0301", "Cafe\u0301 del Mar", "", 0), e(1, "Beyoncé", "Café del Mar", "", 0), ""},
		{"control characters", e(1, "A\x00B\x1b[0m\x7f\u0085C", "T\u0080i\u009ftle", "", 0), e(1, "AB[0m C", "Title", "", 0), ""},
		{"line breaks become spaces", e(1, "A\r\nB\u2028C", "x\u00a0y\u3000z", "", 0), e(1, "A B C", "x y z", "", 0), ""},
		{"invisible formatting", e(1, "\uFEFFev\u202eil\u2066", "zero\u200bwidth\u200e", "", 0), e(1, "evil", "zerowidth", "", 0), ""},
		{"joiners kept", e(1, "👩\u200d💻", "ﻻ\u200c", "", 0), e(1, "👩\u200d💻", "ﻻ\u200c", "", 0), ""},
		{"invalid UTF-8", e(1, "a\xffb", "t", "", 0), e(1, "a\uFFFDb", "t", "", 0), ""},
		{"negative duration", e(1, "a", "t", "", -1), e(1, "a", "t", "", 0), ""},
		{"huge duration", e(1, "a", "t", "", MaxDurationSec+1), e(1, "a", "t", "", 0), ""},
		{"missing artist", e(1, " \u200b\x00 ", "t", "", 0), Entry{}, "incomplete track: missing artist"},
		{"missing title", e(1, "a", "\n\t", "", 0), Entry{}, "incomplete track: missing title"},
		{"missing both", e(1, "", "", "album", 0), Entry{}, "incomplete track: missing artist and title"},
	}
	for _, tc := range cases {
		got, err := Normalize(tc.in)
		if tc.err != "" {
			if !errors.Is(err, ErrIncomplete) || err.Error() != tc.err {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: Normalize = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
		if again, _ := Normalize(got); again != got {
			t.Errorf("%s: not idempotent: %+v then %+v", tc.name, got, again)
		}
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	same := []struct{ a, b Entry }{
		{e(1, "The Beatles", "Yesterday", "Help!", 125), e(9, "the beatles ", " YESTERDAY", "", 0)},
		{e(1, "The Beatles", "Yesterday", "", 0), e(1, "the  beatles", "yesterday", "", 0)},
		{e(1, "Beyoncé", "Halo", "", 0), e(1, "BEYONCE\u0301", "halo", "", 0)},
		{e(1, "Die Ärzte", "Straße", "", 0), e(1, "DIE ÄRZTE", "STRASSE", "", 0)},
		{e(1, "ΣΊΣΥΦΟΣ", "x", "", 0), e(1, "σίσυφος", "X", "", 0)},
		{e(1, "A\u202e", "B", "", 0), e(1, "a", "b\u200b", "", 0)},
	}
	for _, tc := range same {
		if Identity(tc.a) != Identity(tc.b) {
			t.Errorf("Identity(%+v) = %q != Identity(%+v) = %q", tc.a, Identity(tc.a), tc.b, Identity(tc.b))
		}
	}
	different := []struct{ a, b Entry }{
		{e(1, "A", "B C", "", 0), e(1, "A B", "C", "", 0)},
		{e(1, "The Beatles", "Yesterday", "", 0), e(1, "Beatles", "Yesterday", "", 0)},
		{e(1, "Beyoncé", "Halo", "", 0), e(1, "Beyonce", "Halo", "", 0)},
		{e(1, "A", "B", "", 0), e(1, "B", "A", "", 0)},
	}
	for _, tc := range different {
		if Identity(tc.a) == Identity(tc.b) {
			t.Errorf("Identity(%+v) == Identity(%+v) = %q", tc.a, tc.b, Identity(tc.a))
		}
	}
	if id := Identity(e(1, "The Beatles", "Yesterday", "", 0)); id != "the beatles\x1fyesterday" {
		t.Errorf("Identity = %q", id)
	}
	if n := strings.Count(Identity(e(1, "a\x1fb", "c\x1f", "", 0)), "\x1f"); n != 1 {
		t.Errorf("identity holds %d separators", n)
	}
}
