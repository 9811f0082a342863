package importer

// Default limits (see Limits).
const (
	DefaultMaxBytes   = 1 << 20
	DefaultMaxLines   = 20000
	DefaultMaxLineLen = 4096
	DefaultMaxTracks  = 10000
)

// Limits bound what one playlist may contain. A zero field takes its default (SetDefaults); breaking
// any limit fails the parse with ErrTooLarge, and parsing stops as soon as a limit is broken.
//
// MaxLines and MaxLineLen apply to the line-oriented formats (m3u, csv). XSPF and JSON are often
// written on one line or spread over many, so for them MaxLineLen bounds each text field instead and
// only MaxBytes and MaxTracks bound the whole. MaxTracks counts track records, valid or not (m3u path
// or #EXTINF entries, csv rows, xspf <track> elements, json array elements).
type Limits struct {
	// MaxBytes bounds the content (default 1 MiB).
	MaxBytes int
	// MaxLines bounds the number of lines of m3u and csv content (default 20000).
	MaxLines int
	// MaxLineLen bounds a line of m3u and csv content, or a text field of xspf and json, in bytes
	// (default 4096).
	MaxLineLen int
	// MaxTracks bounds the number of track records (default 10000).
	MaxTracks int
}

// SetDefaults fills every zero or negative field with its default.
func (l *Limits) SetDefaults() {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxLines <= 0 {
		l.MaxLines = DefaultMaxLines
	}
	if l.MaxLineLen <= 0 {
		l.MaxLineLen = DefaultMaxLineLen
	}
	if l.MaxTracks <= 0 {
		l.MaxTracks = DefaultMaxTracks
	}
}
