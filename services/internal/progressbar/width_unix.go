//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package progressbar

import (
	"os"

	"golang.org/x/sys/unix"
)

// termWidth returns the columns of the terminal f, or 0 when it cannot tell.
func termWidth(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}
