package importer

import (
	"strings"
	"testing"
)

func TestParseM3U(t *testing.T) {
	runParseCases(t, "m3u", []parseCase{
		{
			name: "extended",
			content: "#EXTM3U\n#EXTINF:354,Queen - Bohemian Rhapsody\n/music/queen/br.mp3\n" +
				"#EXTINF:215,Daft Punk - Get Lucky\nhttp://example.com/s/1.mp3\n",
			entries: []Entry{e(2, "Queen", "Bohemian Rhapsody", "", 354), e(4, "Daft Punk", "Get Lucky", "", 215)},
		},
		{
			name:    "header optional, CRLF and BOM",
			content: "\uFEFF#EXTINF:10,A - B\r\nb.mp3\r\n\r\n#EXTINF:20,C - D\r\nd.mp3",
			entries: []Entry{e(1, "A", "B", "", 10), e(4, "C", "D", "", 20)},
		},
		{
			name:    "lone CR line ends",
			content: "#EXTM3U\r#EXTINF:1,A - B\ra.mp3\rC - D.flac\r",
			entries: []Entry{e(2, "A", "B", "", 1), e(4, "C", "D", "", 0)},
		},
		{
			name:    "blank lines and comments",
			content: "\n\n# my mix\n   \n#PLAYLIST:Mix\n#EXTGRP:x\n  Muse - Uprising.mp3  \n\n",
			entries: []Entry{e(7, "Muse", "Uprising", "", 0)},
		},
		{
			name: "plain paths",
			content: "/home/u/Music/Radiohead - Creep.mp3\nC:\\Music\\Björk - Jóga.FLAC\n" +
				"file:///m/Daft%20Punk%20-%20Da%20Funk.mp3\nhttps://x.test/a/Air%20-%20La%20Femme%20d'Argent.ogg?token=1#t\n" +
				"Daft_Punk_-_One_More_Time.mp3\nThe Killers - Mr. Brightside\n",
			entries: []Entry{
				e(1, "Radiohead", "Creep", "", 0), e(2, "Björk", "Jóga", "", 0), e(3, "Daft Punk", "Da Funk", "", 0),
				e(4, "Air", "La Femme d'Argent", "", 0), e(5, "Daft Punk", "One More Time", "", 0),
				e(6, "The Killers", "Mr. Brightside", "", 0),
			},
		},
		{
			name: "extinf attributes, durations, separators",
			content: "#EXTINF:-1 tvg-id=\"a,b\" group-title=\"x, y\",Sigur Rós – Hoppípolla\nhttp://s/1\n" +
				"#EXTINF:215.6,Title Only\n/m/Portishead - Roads.mp3\n" +
				"#extinf:abc,  Nina Simone   -   Feeling   Good  \n/m/x.mp3\n" +
				"#EXTINF:30,Artist - Song - 2009 Remaster\nx.mp3\n",
			entries: []Entry{
				e(1, "Sigur Rós", "Hoppípolla", "", 0), e(3, "Portishead", "Roads", "", 216),
				e(5, "Nina Simone", "Feeling Good", "", 0), e(7, "Artist", "Song - 2009 Remaster", "", 30),
			},
		},
		{
			name:    "EXTALB is sticky until the next",
			content: "#EXTALB:Abbey Road\n#EXTINF:1,The Beatles - Something\na.mp3\nThe Beatles - Because.mp3\n#EXTALB:\nX - Y.mp3\n",
			entries: []Entry{
				e(2, "The Beatles", "Something", "Abbey Road", 1), e(4, "The Beatles", "Because", "Abbey Road", 0),
				e(6, "X", "Y", "", 0),
			},
		},
		{
			name:    "extinf without path line",
			content: "#EXTINF:1,A - B\n#EXTINF:2,C - D\n",
			entries: []Entry{e(1, "A", "B", "", 1), e(2, "C", "D", "", 2)},
		},
		{
			name: "lines without artist and title are invalid",
			content: "#EXTM3U\n/music/track01.mp3\n#EXTINF:5,Just A Title\nhttp://radio.test/stream\n" +
				"#EXTINF:5, - Title\n - .mp3\nOK - Fine.mp3\nhttp://radio.test:8000\n#EXTINF:1,nothing\n",
			entries: []Entry{e(7, "OK", "Fine", "", 0)},
			invalid: []badLine{
				{2, `no "Artist - Title" in the file name`, "/music/track01.mp3"},
				{3, `in #EXTINF or the file name`, "#EXTINF:5,Just A Title"},
				{5, `in #EXTINF or the file name`, "#EXTINF:5, - Title"},
				{8, "file name", "http://radio.test:8000"},
				{9, "#EXTINF", "#EXTINF:1,nothing"},
			},
		},
		{
			name:    "invalid UTF-8 path line",
			content: "A - B.mp3\n\xff\xfe - x.mp3\n#EXTINF:1,C - D\n\xffbad\n",
			entries: []Entry{e(1, "A", "B", "", 0), e(3, "C", "D", "", 1)},
			invalid: []badLine{{2, "not valid UTF-8", "\uFFFD - x.mp3"}},
		},
		{
			name:    "hostile text is cleaned",
			content: "#EXTINF:1,Evil\u202e Artist\x1b[31m - Ti\u200btle\x07\nx.mp3\n",
			entries: []Entry{e(1, "Evil Artist[31m", "Title", "", 1)},
		},
		{
			name:    "unicode is NFC",
			content: "Beyonce\u0301 - Halo.mp3\n",
			entries: []Entry{e(1, "Beyoncé", "Halo", "", 0)},
		},
		{name: "empty", content: ""},
		{name: "only header", content: "#EXTM3U\r\n"},
		{
			name:    "binary content",
			content: "A - B.mp3\nID3\x03\x00\x00\x00\x00",
			err:     ErrMalformed, errText: "malformed m3u: line 2: not a text file",
		},
		{
			name:    "huge line",
			content: "A - B.mp3\n" + strings.Repeat("x", 5000) + "\n",
			err:     ErrTooLarge, errText: "line 2 is 5000 bytes, the limit is 4096",
		},
		{
			name:    "too many lines",
			content: strings.Repeat("# comment\n", 11),
			lim:     Limits{MaxLines: 10},
			err:     ErrTooLarge, errText: "more than 10 lines",
		},
		{
			name:    "too many tracks",
			content: strings.Repeat("A - B.mp3\n", 4),
			lim:     Limits{MaxTracks: 3},
			err:     ErrTooLarge, errText: "more than 3 tracks",
		},
		{
			name:    "invalid lines count towards MaxTracks",
			content: strings.Repeat("nothing.mp3\n", 4),
			lim:     Limits{MaxTracks: 3},
			err:     ErrTooLarge, errText: "more than 3 tracks",
		},
		{
			name:    "too many bytes",
			content: strings.Repeat("A - B.mp3\n", 20),
			lim:     Limits{MaxBytes: 100},
			err:     ErrTooLarge, errText: "200 bytes, the limit is 100",
		},
	})
}

func TestParseM3UInvalidTextIsClipped(t *testing.T) {
	long := "#EXTINF:1," + strings.Repeat("é", 150) + "\n"
	_, invalid, err := Parse("m3u", long+"\n", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(invalid) != 1 {
		t.Fatalf("invalid = %+v", invalid)
	}
	text := invalid[0].Text
	if len(text) > MaxInvalidText || !strings.HasPrefix(text, "#EXTINF:1,é") || strings.ContainsRune(text, '\uFFFD') {
		t.Fatalf("text %q (%d bytes) is not a clean cut", text, len(text))
	}
}
