package testkit

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child when this process dies, so that a test killed by its
// timeout (or a killed bench) leaves no servers running on a shared machine.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
