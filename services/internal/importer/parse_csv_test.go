package importer

import (
	"strings"
	"testing"
)

func TestParseCSV(t *testing.T) {
	runParseCases(t, "csv", []parseCase{
		{
			name:    "basic",
			content: "artist,title,album,duration\nQueen,Bohemian Rhapsody,A Night at the Opera,354\nDaft Punk,Get Lucky,,248.6\n",
			entries: []Entry{e(2, "Queen", "Bohemian Rhapsody", "A Night at the Opera", 354), e(3, "Daft Punk", "Get Lucky", "", 249)},
		},
		{
			name:    "header case, order and extra columns",
			content: "Rating, TITLE ,Extra,Artist,durationSec\n5,Roads,x,Portishead,305\n",
			entries: []Entry{e(2, "Portishead", "Roads", "", 305)},
		},
		{
			name:    "duration_sec and clock durations",
			content: "artist,title,duration_sec\nA,B,3:45\nC,D,1:02:03\nE,F,abc\nG,H,-4\nI,J,1:75\n",
			entries: []Entry{e(2, "A", "B", "", 225), e(3, "C", "D", "", 3723), e(4, "E", "F", "", 0), e(5, "G", "H", "", 0), e(6, "I", "J", "", 0)},
		},
		{
			name:    "export header names with milliseconds",
			content: "\"Track URI\",\"Track Name\",\"Artist Name(s)\",\"Album Name\",\"Duration (ms)\"\nspotify:x,\"Get Lucky (feat. Pharrell Williams)\",\"Daft Punk, Pharrell Williams\",Random Access Memories,369626\n",
			entries: []Entry{e(2, "Daft Punk, Pharrell Williams", "Get Lucky (feat. Pharrell Williams)", "Random Access Memories", 370)},
		},
		{
			name:    "quoted fields, embedded quotes and newlines",
			content: "artist,title\n\"Simon, Paul\",\"Mother and Child \"\"Reunion\"\"\"\n\"Multi\nLine\",Title\nLast,One\n",
			entries: []Entry{e(2, "Simon, Paul", `Mother and Child "Reunion"`, "", 0), e(3, "Multi Line", "Title", "", 0), e(5, "Last", "One", "", 0)},
		},
		{
			name:    "BOM, CRLF and blank lines",
			content: "\uFEFF\r\n\r\nArtist,Title\r\n\r\nA,B\r\nC,D",
			entries: []Entry{e(5, "A", "B", "", 0), e(6, "C", "D", "", 0)},
		},
		{
			name:    "semicolons",
			content: "artist;title;album\nAC/DC;Back in Black;Back in Black\nX;\"a;b\";\n",
			entries: []Entry{e(2, "AC/DC", "Back in Black", "Back in Black", 0), e(3, "X", "a;b", "", 0)},
		},
		{
			name:    "tabs",
			content: "artist\ttitle\nA, Jr.\tB\n",
			entries: []Entry{e(2, "A, Jr.", "B", "", 0)},
		},
		{
			name:    "ragged rows and broken rows are invalid",
			content: "artist,title,album\nA,B,C\nonly one\nD,E,F,G\n,NoArtist,\nx\"y,z,w\nH,I,J\n\"a\"b,c,d\n",
			entries: []Entry{e(2, "A", "B", "C", 0), e(7, "H", "I", "J", 0)},
			invalid: []badLine{
				{3, "row has 1 fields, the header has 3", "only one"},
				{4, "row has 4 fields", "D,E,F,G"},
				{5, "missing artist", ",NoArtist,"},
				{6, `bare " in non-quoted-field`, `x"y,z,w`},
				{8, `extraneous or missing " in quoted-field`, `"a"b,c,d`},
			},
		},
		{
			name:    "repeated header is skipped",
			content: "artist,title\nA,B\nArtist,Title\nC,D\n",
			entries: []Entry{e(2, "A", "B", "", 0), e(4, "C", "D", "", 0)},
		},
		{
			name:    "hostile text",
			content: "artist,title\n\"Evil\x1b]0;pwn\x07\u202e\",\"tab\there\r\nnewline\"\n",
			entries: []Entry{e(2, "Evil]0;pwn", "tab here newline", "", 0)},
		},
		{name: "header only", content: "artist,title\n"},
		{
			name:    "header without title",
			content: "artist,name2,album\nA,B,C\n",
			err:     ErrMalformed, errText: "malformed csv: line 1: header has no title column (header: artist,name2,album)",
		},
		{
			name:    "header without artist and title",
			content: "\n\nfoo,bar\n1,2\n",
			err:     ErrMalformed, errText: "malformed csv: line 3: header has no artist or title column",
		},
		{
			name:    "data without header",
			content: "Queen,Bohemian Rhapsody\n",
			err:     ErrMalformed, errText: "header has no artist or title column",
		},
		{name: "empty", content: "", err: ErrMalformed, errText: "malformed csv: line 1: no header row"},
		{name: "blank", content: "\n\n  \n", err: ErrMalformed, errText: "header has no artist or title column"},
		{
			name:    "broken header",
			content: "artist,\"title\n",
			err:     ErrMalformed, errText: "malformed csv: line 1:",
		},
		{
			name:    "quote left open to the end",
			content: "artist,title\nA,B\nC,\"D\nE,F\nG,H\n",
			err:     ErrMalformed, errText: "malformed csv: line 3: quoted field not closed before the end",
		},
		{
			name:    "binary",
			content: "artist,title\nA,B\x00\n",
			err:     ErrMalformed, errText: "line 2: not a text file",
		},
		{
			name:    "huge line",
			content: "artist,title\nA," + strings.Repeat("b", 4097) + "\n",
			err:     ErrTooLarge, errText: "line 2 is 4099 bytes",
		},
		{
			name:    "huge quoted field over many short lines",
			content: "artist,title\nA,\"" + strings.Repeat("b\n", 30) + "\"\n",
			lim:     Limits{MaxLines: 20},
			err:     ErrTooLarge, errText: "more than 20 lines",
		},
		{
			name:    "too many tracks",
			content: "artist,title\n" + strings.Repeat("A,B\n", 4),
			lim:     Limits{MaxTracks: 3},
			err:     ErrTooLarge, errText: "more than 3 tracks",
		},
	})
}
