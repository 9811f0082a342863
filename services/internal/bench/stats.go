package bench

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Quantiles summarises latencies in milliseconds.
type Quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

// quantilesMicros merges per-client samples in microseconds.
func quantilesMicros(parts ...[]uint32) Quantiles {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n == 0 {
		return Quantiles{}
	}
	all := make([]uint32, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.Sort(all)
	at := func(q float64) float64 { return float64(all[min(len(all)-1, int(q*float64(len(all))))]) / 1000 }
	return Quantiles{N: n, P50: at(0.50), P99: at(0.99), Max: float64(all[len(all)-1]) / 1000}
}

// quantilesDur summarises durations.
func quantilesDur(d []time.Duration) Quantiles {
	us := make([]uint32, len(d))
	for i, v := range d {
		us[i] = uint32(min(max(v.Microseconds(), 0), 1<<32-1))
	}
	return quantilesMicros(us)
}

// cpuSeconds returns the user+system CPU time a process used so far, from /proc/<pid>/stat.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	// The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// selfCPUSeconds is cpuSeconds of the bench process itself.
func selfCPUSeconds() float64 { return cpuSeconds(os.Getpid()) }

// threadCPUSeconds is the CPU time the live threads of a process have run so far, to the nanosecond:
// the sum of the first field of /proc/<pid>/task/*/schedstat (cpuSeconds counts 10 ms ticks, too coarse
// for a second of a lightly loaded server). Threads that have exited are not in it, which for the Go
// servers measured here (their threads live as long as they do) changes nothing. 0 without /proc.
func threadCPUSeconds(pid int) float64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var ns int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f, _, _ := strings.Cut(string(b), " ")
		v, _ := strconv.ParseInt(f, 10, 64)
		ns += v
	}
	return float64(ns) / 1e9
}
