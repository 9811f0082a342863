// Package progressbar draws the progress of one job for a person. On a terminal the bar redraws in
// place (carriage return and ANSI "erase line"), never wider than the terminal so it never wraps; on
// anything else (a pipe, a file, a CI log) every change is one plain line and nothing is redrawn.
package progressbar

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ANSI sequences the bar writes on a terminal.
const (
	eraseLine = "\r\x1b[2K"
	dimOn     = "\x1b[2m"
	dimOff    = "\x1b[0m"
)

// Bar geometry, in columns.
const (
	// DefaultWidth is the terminal width assumed when Options.Width is not set.
	DefaultWidth = 80
	// maxBarCells caps the bar itself, so a wide terminal does not get a 300-column bar.
	maxBarCells = 40
	// minBarCells is the narrowest bar worth drawing; below it only the text is shown.
	minBarCells = 10
)

// Frame is what one update shows.
type Frame struct {
	// Percent is 0..100 (clamped when drawn).
	Percent int
	// Done and Total count units of work; Total 0 means not known yet.
	Done, Total int
	// Label says where the job is, e.g. its state.
	Label string
}

// Options choose how the bar is drawn.
type Options struct {
	// TTY redraws one line in place. Without it every change is printed as its own line.
	TTY bool
	// Width is the terminal's width in columns (TTY only; 0 means DefaultWidth). The drawn line stays
	// at least one column short of it, so the terminal never wraps it and \r redraws cleanly.
	Width int
	// Color dims notes with ANSI escapes (TTY only).
	Color bool
}

// Bar draws the frames of one job to a writer. It is not safe for concurrent use.
type Bar struct {
	w     io.Writer
	o     Options
	line  string // the line last drawn (TTY) or printed (plain)
	shown bool   // a TTY line is on screen and not yet ended by a newline
}

// New returns a bar that writes to w.
func New(w io.Writer, o Options) *Bar {
	if o.Width <= 0 {
		o.Width = DefaultWidth
	}
	return &Bar{w: w, o: o}
}

// Update shows f. In plain mode a frame that prints the same line as the previous one is skipped.
func (b *Bar) Update(f Frame) error {
	if !b.o.TTY {
		line := Text(f)
		if line == b.line {
			return nil
		}
		b.line = line
		return b.write(line + "\n")
	}
	b.line = Render(f, b.o.Width)
	b.shown = true
	return b.write(eraseLine + b.line)
}

// Note prints msg on its own line. On a terminal it goes above the bar (dimmed when Color is set)
// and the bar is drawn again below it.
func (b *Bar) Note(msg string) error {
	if !b.o.TTY {
		return b.write(msg + "\n")
	}
	if b.o.Color {
		msg = dimOn + msg + dimOff
	}
	out := eraseLine + msg + "\n"
	if b.shown {
		out += b.line
	}
	return b.write(out)
}

// Finish leaves the last frame on screen and prints summary below it.
func (b *Bar) Finish(summary string) error {
	out := summary + "\n"
	if b.o.TTY && b.shown {
		out = "\n" + out
		b.shown = false
	}
	return b.write(out)
}

func (b *Bar) write(s string) error {
	if _, err := io.WriteString(b.w, s); err != nil {
		return fmt.Errorf("progressbar: write: %w", err)
	}
	return nil
}

// Text is the plain form of f: percent, done/total and label, e.g. " 40%   40/100  active".
func Text(f Frame) string {
	total := "?"
	if f.Total > 0 {
		total = fmt.Sprint(f.Total)
	}
	count := fmt.Sprintf("%d/%s", f.Done, total)
	return strings.TrimRight(fmt.Sprintf("%3d%%  %*s  %s", clampPercent(f.Percent), 2*len(total)+1, count, f.Label), " ")
}

// Render is the terminal form of f for a terminal width columns wide: "[=====>    ]" followed by the
// text of f. The bar takes what the text leaves (at most 40 cells); when fewer than 10 cells are left
// the bar is dropped, and the text is cut to fit. The result is always shorter than width.
func Render(f Frame, width int) string {
	if width <= 0 {
		width = DefaultWidth
	}
	avail := width - 1
	text := Text(f)
	cells := min(avail-utf8.RuneCountInString(text)-3, maxBarCells) // "[" + bar + "] "
	if cells < minBarCells {
		return clip(text, avail)
	}
	filled := clampPercent(f.Percent) * cells / 100
	bar := strings.Repeat("=", filled)
	if filled < cells {
		if filled > 0 {
			bar = bar[:filled-1] + ">"
		}
		bar += strings.Repeat(" ", cells-filled)
	}
	return "[" + bar + "] " + text
}

func clampPercent(p int) int { return min(max(p, 0), 100) }

// clip cuts s to at most n runes.
func clip(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
