//go:build !unix

package bench

import "math"

// raiseNoFile reports no limit: outside Unix there is no RLIMIT_NOFILE.
func raiseNoFile() uint64 { return math.MaxUint64 }
