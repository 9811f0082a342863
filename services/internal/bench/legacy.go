package bench

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// LegacyResult is the old design re-created against the same redis-server: every open progress
// stream polls Redis every 500 ms with getJob (HGETALL) and getState (BullMQ's state script).
type LegacyResult struct {
	Watchers        int       `json:"watchers"`
	Seconds         float64   `json:"seconds"`
	Polls           int64     `json:"polls"`
	PollsPerSec     float64   `json:"pollsPerSec"`
	ExpectedPerSec  float64   `json:"expectedPollsPerSec"`
	Commands        int64     `json:"redisCommands"`
	CommandsPerSec  float64   `json:"redisCommandsPerSec"`
	PerWatcherSec   float64   `json:"redisCommandsPerWatcherPerSec"`
	CommandsPerPoll float64   `json:"redisCommandsPerPoll"`
	Updates         int       `json:"updates"`
	Latency         Quantiles `json:"latency"`
	RedisCPU        float64   `json:"redisCpuCores"`
	BenchCPU        float64   `json:"benchCpuCores"`
}

// legacyPollInterval is the old server's poll period per connection.
const legacyPollInterval = 500 * time.Millisecond

// getStateScript does what BullMQ's getState script does for a job that is active: ZSCORE in
// completed, failed, delayed and prioritized, then LPOS in active (then wait, paused,
// waiting-children), so a poll of an active job costs HGETALL + EVALSHA + 4 ZSCORE + 1 LPOS = 7 counted
// commands, as measured with the real BullMQ 5.81.
var getStateScript = redis.NewScript(`
if redis.call("ZSCORE", KEYS[1], ARGV[1]) then return "completed" end
if redis.call("ZSCORE", KEYS[2], ARGV[1]) then return "failed" end
if redis.call("ZSCORE", KEYS[3], ARGV[1]) then return "delayed" end
if redis.call("ZSCORE", KEYS[4], ARGV[1]) then return "prioritized" end
if redis.call("LPOS", KEYS[5], ARGV[1]) then return "active" end
if redis.call("LPOS", KEYS[6], ARGV[1]) then return "waiting" end
if redis.call("LPOS", KEYS[7], ARGV[1]) then return "waiting" end
if redis.call("ZSCORE", KEYS[8], ARGV[1]) then return "waiting-children" end
return "unknown"`)

// runLegacy polls one active job from watchers clients for o.LegacyDuration while a writer updates its
// progress UpdatesPerSec times a second (HSET progress <unix ns>). The latency of an update is the time
// until a poll first sees it (or a later value), as a browser on the old route would.
func runLegacy(ctx context.Context, s *stack, o Options, watchers int) (LegacyResult, error) {
	res := LegacyResult{Watchers: watchers, ExpectedPerSec: float64(watchers) / legacyPollInterval.Seconds()}
	if s.rdb == nil {
		return res, errNoRedis
	}
	o.logf("legacy: %d watchers polling redis", watchers)
	id := "legacy-" + strconv.Itoa(watchers) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	pfx := "bull:sync:"
	keys := []string{pfx + "completed", pfx + "failed", pfx + "delayed", pfx + "prioritized", pfx + "active", pfx + "wait", pfx + "paused", pfx + "waiting-children"}
	now := time.Now().UnixMilli()
	if err := s.rdb.HSet(ctx, pfx+id, "name", "sync", "data", `{"playlistId":"p1"}`, "opts", `{"attempts":1}`,
		"timestamp", now, "processedOn", now, "progress", "0", "atm", 1).Err(); err != nil {
		return res, err
	}
	for i := range 10 { // other jobs, so the sets are not empty
		s.rdb.ZAdd(ctx, keys[0], redis.Z{Score: float64(now), Member: "done-" + strconv.Itoa(i)})
		s.rdb.ZAdd(ctx, keys[1], redis.Z{Score: float64(now), Member: "failed-" + strconv.Itoa(i)})
	}
	s.rdb.RPush(ctx, keys[4], "other-active", id)
	if err := getStateScript.Load(ctx, s.rdb).Err(); err != nil {
		return res, err
	}

	// Like the old server, the pollers share a pool of connections to Redis.
	rdb := redis.NewClient(&redis.Options{Addr: s.redisAddr, DisableIdentity: true, PoolSize: 128, MinIdleConns: 64,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	defer rdb.Close()

	var (
		writesMu sync.RWMutex
		writes   []int64 // unix ns of each progress write, ascending
	)
	win := &window{}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var polls atomic.Int64
	lat := make([][]uint32, watchers)
	var wg sync.WaitGroup
	for i := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen int64
			mine := make([]uint32, 0, 64)
			defer func() { lat[i] = mine }()
			offset := time.Duration(rand.Int64N(int64(legacyPollInterval)))
			select {
			case <-time.After(offset):
			case <-pctx.Done():
				return
			}
			t := time.NewTicker(legacyPollInterval)
			defer t.Stop()
			for {
				var h *redis.MapStringStringCmd
				_, err := rdb.Pipelined(pctx, func(p redis.Pipeliner) error {
					h = p.HGetAll(pctx, pfx+id)
					getStateScript.EvalSha(pctx, p, keys, id)
					return nil
				})
				at := time.Now().UnixNano()
				if err == nil {
					if win.contains(at) {
						polls.Add(1)
					}
					v, _ := strconv.ParseInt(h.Val()["progress"], 10, 64)
					if v > seen {
						// Every write since the last value seen reaches this client now.
						writesMu.RLock()
						lo, _ := slices.BinarySearch(writes, seen+1)
						hi, _ := slices.BinarySearch(writes, v+1)
						for _, w := range writes[lo:hi] {
							if win.contains(w) {
								mine = append(mine, uint32(min((at-w)/1000, 1<<32-1)))
							}
						}
						writesMu.RUnlock()
						seen = v
					}
				}
				select {
				case <-t.C:
				case <-pctx.Done():
					return
				}
			}
		}()
	}
	// Writer: the worker's progress updates.
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Duration(float64(time.Second) / o.UpdatesPerSec))
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-pctx.Done():
				return
			}
			ns := time.Now().UnixNano()
			writesMu.Lock()
			writes = append(writes, ns)
			writesMu.Unlock()
			if err := s.rdb.HSet(pctx, pfx+id, "progress", ns).Err(); err == nil && win.contains(ns) {
				res.Updates++
			}
		}
	}()

	time.Sleep(o.Warmup)
	before, err := s.redisCommands(ctx)
	if err != nil {
		return res, err
	}
	cpu0 := [2]float64{cpuSeconds(s.redis.Pid()), selfCPUSeconds()}
	start := time.Now()
	win.start.Store(start.UnixNano())
	time.Sleep(o.LegacyDuration)
	end := time.Now()
	win.end.Store(end.UnixNano())
	after, err := s.redisCommands(ctx)
	if err != nil {
		return res, err
	}
	cpu1 := [2]float64{cpuSeconds(s.redis.Pid()), selfCPUSeconds()}
	time.Sleep(legacyPollInterval + 100*time.Millisecond) // the last writes of the window are seen
	stop()
	wg.Wait()

	res.Seconds = end.Sub(start).Seconds()
	res.RedisCPU, res.BenchCPU = (cpu1[0]-cpu0[0])/res.Seconds, (cpu1[1]-cpu0[1])/res.Seconds
	res.Polls = polls.Load()
	res.PollsPerSec = float64(res.Polls) / res.Seconds
	res.Commands = commandDelta(before, after)
	res.CommandsPerSec = float64(res.Commands) / res.Seconds
	res.PerWatcherSec = res.CommandsPerSec / float64(watchers)
	if res.Polls > 0 {
		res.CommandsPerPoll = float64(res.Commands-int64(res.Updates)) / float64(res.Polls)
	}
	res.Latency = quantilesMicros(lat...)
	o.logf("legacy: %d watchers: %.0f polls/s (expected %.0f), %.0f redis commands/s (%.1f per watcher per s, %.2f per poll), latency p50 %.0f ms p99 %.0f ms",
		watchers, res.PollsPerSec, res.ExpectedPerSec, res.CommandsPerSec, res.PerWatcherSec, res.CommandsPerPoll, res.Latency.P50, res.Latency.P99)
	return res, nil
}
