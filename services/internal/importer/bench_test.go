package importer

import (
	"fmt"
	"strings"
	"testing"
)

// bigPlaylists returns a playlist of n tracks in each format.
func bigPlaylists(n int) map[string]string {
	var m3u, csv, js, xspf strings.Builder
	m3u.WriteString("#EXTM3U\n")
	csv.WriteString("artist,title,album,duration\n")
	js.WriteString("[")
	xspf.WriteString(xspfHead)
	for i := range n {
		artist, title := fmt.Sprintf("Artist Number %d", i), fmt.Sprintf("Some Fairly Long Title %d (Remastered)", i)
		fmt.Fprintf(&m3u, "#EXTINF:%d,%s - %s\n/music/%s/%d.mp3\n", 200+i%100, artist, title, artist, i)
		fmt.Fprintf(&csv, "%s,%s,Album,%d\n", artist, title, 200+i%100)
		if i > 0 {
			js.WriteString(",")
		}
		fmt.Fprintf(&js, `{"artist":%q,"title":%q,"album":"Album","durationSec":%d}`, artist, title, 200+i%100)
		fmt.Fprintf(&xspf, "<track><creator>%s</creator><title>%s</title><duration>%d</duration></track>\n", artist, title, 1000*(200+i%100))
	}
	js.WriteString("]")
	xspf.WriteString("</trackList></playlist>\n")
	return map[string]string{
		"m3u": m3u.String(), "csv": csv.String(), "json": js.String(), "xspf": xspf.String(),
		// Old Mac line ends: no '\n' at all.
		"m3u-cr": strings.ReplaceAll(m3u.String(), "\n", "\r"),
	}
}

// BenchmarkParse parses a playlist of 10,000 tracks (the default MaxTracks) in each format.
func BenchmarkParse(b *testing.B) {
	playlists := bigPlaylists(10000)
	for _, name := range []string{"m3u", "m3u-cr", "xspf", "csv", "json"} {
		content, format := playlists[name], strings.TrimSuffix(name, "-cr")
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(content)))
			b.ReportAllocs()
			for b.Loop() {
				entries, _, err := Parse(format, content, Limits{MaxBytes: 4 << 20, MaxLines: 30000})
				if err != nil || len(entries) != 10000 {
					b.Fatalf("%d entries, %v", len(entries), err)
				}
			}
		})
	}
}

// BenchmarkNormalizeIdentity normalises an entry and computes its identity, as Run does per track.
func BenchmarkNormalizeIdentity(b *testing.B) {
	en := Entry{Artist: "  Sigur Ro\u0301s ", Title: "Hoppípolla\t(Live)", Album: "Takk...", DurationSec: 268}
	b.ReportAllocs()
	for b.Loop() {
		n, err := Normalize(en)
		if err != nil {
			b.Fatal(err)
		}
		_ = Identity(n)
	}
}
