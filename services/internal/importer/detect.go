package importer

import (
	"encoding/csv"
	"path"
	"strings"

	"github.com/jobwire/jobwire/api"
)

// sniffBytes bounds how much content DetectFormat looks at.
const sniffBytes = 4096

// DetectFormat guesses the format of a playlist, for the CLI. The file name's extension decides when
// it is known (.m3u and .m3u8: m3u, .xspf: xspf, .csv and .tsv: csv, .json: json, in any case);
// otherwise the start of the content does: '[' is json, an XML document with a <playlist> is xspf,
// #EXTM3U or #EXTINF is m3u, a header row with artist and title columns is csv, and a first entry
// that is a path, URL or media file name is m3u. ok is false when nothing fits.
func DetectFormat(filename, content string) (string, bool) {
	switch strings.ToLower(path.Ext(strings.ReplaceAll(filename, `\`, "/"))) {
	case ".m3u", ".m3u8":
		return api.FormatM3U, true
	case ".xspf":
		return api.FormatXSPF, true
	case ".csv", ".tsv":
		return api.FormatCSV, true
	case ".json":
		return api.FormatJSON, true
	}
	head := strings.TrimLeft(strings.TrimPrefix(content, bom), " \t\r\n")
	if len(head) > sniffBytes {
		head = head[:sniffBytes]
	}
	switch {
	case head == "":
		return "", false
	case head[0] == '[':
		return api.FormatJSON, true
	case head[0] == '<':
		if strings.Contains(head, "<playlist") {
			return api.FormatXSPF, true
		}
		return "", false
	}
	first, _, _ := strings.Cut(head, "\n")
	first = strings.TrimSpace(first)
	if _, ok := cutPrefixFold(first, "#EXTM3U"); ok {
		return api.FormatM3U, true
	}
	if _, ok := cutPrefixFold(first, "#EXTINF:"); ok {
		return api.FormatM3U, true
	}
	if looksLikeCSVHeader(first) {
		return api.FormatCSV, true
	}
	if looksLikeM3UPath(head) {
		return api.FormatM3U, true
	}
	return "", false
}

// looksLikeCSVHeader reports whether line parses as a CSV row with artist and title columns.
func looksLikeCSVHeader(line string) bool {
	r := csv.NewReader(strings.NewReader(line))
	r.Comma = sniffDelimiter(line)
	rec, err := r.Read()
	if err != nil {
		return false
	}
	_, err = csvHeader(rec, 1)
	return err == nil
}

// looksLikeM3UPath reports whether the first line that is not a comment is a path, a URL or a media
// file name.
func looksLikeM3UPath(head string) bool {
	for line := range strings.Lines(head) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		ext := strings.ToLower(path.Ext(line))
		return isURL(line) || strings.ContainsAny(line, `/\`) || mediaExt[ext]
	}
	return false
}
