package bench

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// allowedCPUs lists the CPUs this process may run on, in order.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cpus []int
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// pinProcess sets the CPU affinity of every thread of process pid to cpu alone. A thread inherits the
// affinity of the thread that creates it, so passes repeat until one finds no thread it has not pinned
// yet: then none is left that could still make an unpinned one.
func pinProcess(pid, cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		fresh := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("sched_setaffinity thread %d of %d to CPU %d: %w", tid, pid, cpu, err)
			}
			done[tid], fresh = true, fresh+1
		}
		if fresh == 0 {
			return nil
		}
	}
}
