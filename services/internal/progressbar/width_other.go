//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package progressbar

import "os"

// termWidth returns 0: the width is not known here, so $COLUMNS or the default applies.
func termWidth(*os.File) int { return 0 }
