package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// BullMQRun is one run of bench.mjs.
type BullMQRun struct {
	Mode           string    `json:"mode"`
	Version        string    `json:"bullmq"`
	Jobs           int       `json:"jobs"`
	Completed      int       `json:"completed,omitempty"`
	Seconds        float64   `json:"seconds"`
	JobsPerSec     float64   `json:"jobsPerSec,omitempty"`
	TargetPerSec   float64   `json:"targetPerSec,omitempty"`
	OfferedPerSec  float64   `json:"offeredPerSec,omitempty"`
	Latency        Quantiles `json:"latency"`
	WorkerLatency  Quantiles `json:"workerLatency"`
	RedisCommands  int64     `json:"redisCommands"`
	CommandsPerJob float64   `json:"redisCommandsPerJob"`
	Error          string    `json:"error,omitempty"`
	// CPU is the cores node and redis-server used during the run (node: its whole life, start-up included).
	CPU map[string]float64 `json:"cpuCores"`
}

// nodeQuantiles is how bench.mjs reports latencies.
type nodeQuantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func (q nodeQuantiles) ms() Quantiles { return Quantiles{N: q.N, P50: q.P50, P99: q.P99, Max: q.Max} }

// bullmqDir finds testdata/bullmq-bench: the flag, then next to this source file (go run, go test),
// then below the working directory.
func bullmqDir(flag string) string {
	if flag != "" {
		return flag
	}
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "testdata", "bullmq-bench"))
	}
	candidates = append(candidates, "testdata/bullmq-bench", "internal/bench/testdata/bullmq-bench", "services/internal/bench/testdata/bullmq-bench")
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "bench.mjs")); err == nil {
			return c
		}
	}
	return candidates[len(candidates)-1]
}

// bullmqReady reports why the BullMQ side cannot run ("" when it can). With install set, it runs
// `npm ci` once when node_modules is missing.
func bullmqReady(ctx context.Context, s *stack, dir string, install bool, logf func(string, ...any)) string {
	if s.rdb == nil {
		return "redis-server is not installed"
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed"
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "bullmq", "package.json")); err != nil {
		if !install {
			return "run `npm ci` in " + dir
		}
		logf("bullmq: installing the npm packages in %s (npm ci)", dir)
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Sprintf("npm ci in %s failed: %v\n%s", dir, err, out)
		}
	}
	return ""
}

// runBullMQ runs bench.mjs once with env and counts the Redis commands it caused.
func runBullMQ(ctx context.Context, s *stack, dir string, env map[string]string, logf func(string, ...any)) (BullMQRun, error) {
	var res BullMQRun
	before, err := s.redisCommands(ctx)
	if err != nil {
		return res, err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "node", "bench.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDIS_URL="+s.redisURL())
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0, redis0 := time.Now(), cpuSeconds(s.redis.Pid())
	runErr := cmd.Run()
	var node float64
	if ps := cmd.ProcessState; ps != nil {
		node = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	cpu := map[string]float64{"node": node / time.Since(t0).Seconds(), "redis": (cpuSeconds(s.redis.Pid()) - redis0) / time.Since(t0).Seconds()}
	after, err := s.redisCommands(ctx)
	if err != nil {
		return res, err
	}
	var out struct {
		Mode          string        `json:"mode"`
		Version       string        `json:"bullmq"`
		Jobs          int           `json:"jobs"`
		Completed     int           `json:"completed"`
		Seconds       float64       `json:"seconds"`
		JobsPerSec    float64       `json:"jobsPerSec"`
		OfferedPerSec float64       `json:"offeredPerSec"`
		Latency       nodeQuantiles `json:"latencyMs"`
		WorkerLatency nodeQuantiles `json:"workerLatencyMs"`
		Error         string        `json:"error"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil {
		return res, fmt.Errorf("bench.mjs: %v (exit: %v)\nstdout: %s\nstderr: %s", err, runErr, stdout.String(), stderr.String())
	}
	if out.Error != "" || runErr != nil {
		return res, fmt.Errorf("bench.mjs: %v %s\nstderr: %s", runErr, out.Error, stderr.String())
	}
	res = BullMQRun{Mode: out.Mode, Version: out.Version, Jobs: out.Jobs, Completed: out.Completed, Seconds: out.Seconds,
		JobsPerSec: out.JobsPerSec, OfferedPerSec: out.OfferedPerSec, Latency: out.Latency.ms(), WorkerLatency: out.WorkerLatency.ms()}
	if r, err := strconv.ParseFloat(env["RATE"], 64); err == nil {
		res.TargetPerSec = r
	}
	res.CPU = cpu
	res.RedisCommands = commandDelta(before, after)
	if res.Jobs > 0 {
		res.CommandsPerJob = float64(res.RedisCommands) / float64(res.Jobs)
	}
	if res.Mode == "rate" {
		logf("bullmq %s: %.0f jobs/s offered, add→completed (QueueEvents) p50 %.2f ms p99 %.2f ms; worker saw p50 %.2f ms p99 %.2f ms",
			res.Version, res.OfferedPerSec, res.Latency.P50, res.Latency.P99, res.WorkerLatency.P50, res.WorkerLatency.P99)
	} else {
		logf("bullmq %s %s: %d jobs, %.0f jobs/s, %.1f redis commands per job", res.Version, res.Mode, res.Jobs, res.JobsPerSec, res.CommandsPerJob)
	}
	return res, nil
}
