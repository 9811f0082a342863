package progressbar

import (
	"io"
	"os"
	"strconv"

	"github.com/mattn/go-isatty"
)

// Detect reports how to draw on w: TTY when w is a terminal (and TERM is not "dumb"), its width
// from $COLUMNS or the terminal itself, and Color unless $NO_COLOR is set.
func Detect(w io.Writer) Options {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" || !(isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return Options{}
	}
	o := Options{TTY: true, Width: DefaultWidth, Color: os.Getenv("NO_COLOR") == ""}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		o.Width = n
	} else if n := termWidth(f); n > 0 {
		o.Width = n
	}
	return o
}
