//go:build !linux

package bench

import "errors"

var errPinLinux = errors.New("CPU pinning needs Linux (sched_setaffinity)")

func allowedCPUs() ([]int, error) { return nil, errPinLinux }

func pinProcess(int, int) error { return errPinLinux }
