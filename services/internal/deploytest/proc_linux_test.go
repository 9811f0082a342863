//go:build linux

package deploytest

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill the child when the test process dies, so that a test killed by
// its timeout does not leave nats-servers and services running on a shared machine.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
