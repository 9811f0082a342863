//go:build !linux

package testkit

import "os/exec"

// dieWithParent does nothing: only Linux has Pdeathsig.
func dieWithParent(*exec.Cmd) {}
