package importer

import "testing"

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, filename, content, want string
		ok                            bool
	}{
		{"m3u ext", "mix.M3U", "", "m3u", true},
		{"m3u8 ext", "dir.v2/mix.m3u8", "[1]", "m3u", true},
		{"xspf ext", "a.xspf", "", "xspf", true},
		{"csv ext", "a.csv", "", "csv", true},
		{"tsv ext", `C:\x\a.tsv`, "", "csv", true},
		{"json ext", "a.json", "#EXTM3U", "json", true},
		{"json content", "", "\uFEFF \n [{\"artist\":\"A\"}]", "json", true},
		{"xspf content", "playlist.txt", "<?xml version=\"1.0\"?>\n<playlist xmlns=\"http://xspf.org/ns/0/\">", "xspf", true},
		{"other xml", "", "<html></html>", "", false},
		{"extm3u", "", "#EXTM3U\nfoo", "m3u", true},
		{"extinf", "", "#extinf:1,A - B\nx", "m3u", true},
		{"csv header", "", "Artist,Title,Album\nA,B,C", "csv", true},
		{"csv semicolons", "", "\"title\";\"artist\"\n", "csv", true},
		{"csv export", "", "Track Name,Artist Name(s)\n", "csv", true},
		{"m3u paths", "list", "# comment\n/music/A - B.mp3\n", "m3u", true},
		{"m3u url", "", "http://example.com/stream\n", "m3u", true},
		{"m3u file name", "", "A - B.flac\n", "m3u", true},
		{"plain text", "notes.txt", "hello world\n", "", false},
		{"empty", "", "", "", false},
		{"blank", "x", " \n\t ", "", false},
	}
	for _, tc := range cases {
		got, ok := DetectFormat(tc.filename, tc.content)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: DetectFormat(%q, %q) = %q, %v; want %q, %v", tc.name, tc.filename, tc.content, got, ok, tc.want, tc.ok)
		}
	}
}
