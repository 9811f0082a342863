package bench

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// Pinning is where --pin put the processes of a run: the gateway, and the floor server in its row, on
// GatewayCPUs; every other process (the nats-server, the projector, redis-server, the bench itself and
// its client processes) on OtherCPUs, so that the gateway's figures are per core of its own. Method is
// how the children were pinned: "taskset" or "sched_setaffinity".
type Pinning struct {
	Enabled     bool   `json:"enabled"`
	GatewayCPUs []int  `json:"gatewayCpus,omitempty"`
	OtherCPUs   []int  `json:"otherCpus,omitempty"`
	Method      string `json:"method,omitempty"`
}

// gatewayCPU is the CPU of the gateway and the floor server, -1 when not pinned.
func (p Pinning) gatewayCPU() int {
	if !p.Enabled {
		return -1
	}
	return p.GatewayCPUs[0]
}

// setupPin pins this process (every thread; threads made later inherit it, and so do the children it
// starts) to the first CPU it may run on, and picks the second for the gateway. It refuses with fewer
// than 2 CPUs and outside Linux.
func setupPin(enabled bool) (Pinning, error) {
	if !enabled {
		return Pinning{}, nil
	}
	cpus, err := allowedCPUs()
	if err != nil {
		return Pinning{}, fmt.Errorf("--pin: %w", err)
	}
	if len(cpus) < 2 {
		return Pinning{}, fmt.Errorf("--pin needs 2 CPUs (one for the gateway, one for the rest), this process may use %d", len(cpus))
	}
	p := Pinning{Enabled: true, GatewayCPUs: cpus[1:2], OtherCPUs: cpus[:1], Method: "sched_setaffinity"}
	if _, err := exec.LookPath("taskset"); err == nil {
		p.Method = "taskset"
	}
	if err := pinProcess(os.Getpid(), p.OtherCPUs[0]); err != nil {
		return Pinning{}, fmt.Errorf("--pin: %w", err)
	}
	return p, nil
}

// onCPU returns the command that runs path with args on cpu only, and what to call with the started
// process's pid. With taskset: `taskset -c cpu path args...` (taskset execs, so the pid is the
// process's), nothing to call after. Without: path and args, and pinProcess after the start. cpu < 0:
// the command unchanged.
func onCPU(cpu int, path string, args []string) (string, []string, func(pid int) error) {
	none := func(int) error { return nil }
	if cpu < 0 {
		return path, args, none
	}
	if ts, err := exec.LookPath("taskset"); err == nil {
		return ts, append([]string{"-c", strconv.Itoa(cpu), path}, args...), none
	}
	return path, args, func(pid int) error { return pinProcess(pid, cpu) }
}
