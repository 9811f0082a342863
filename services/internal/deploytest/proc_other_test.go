//go:build !linux

package deploytest

import "os/exec"

func dieWithTest(*exec.Cmd) {}
