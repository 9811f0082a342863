package e2e_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/mirror"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// redisCommands is the number of commands Redis has executed (INFO commandstats, Lua's included), less
// the INFO calls this helper makes itself.
func redisCommands(t *testing.T, url string) int {
	t.Helper()
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || name == "cmdstat_info" || name == "cmdstat_hello" || name == "cmdstat_client|setinfo" || name == "cmdstat_ping" {
			continue
		}
		n, _ := strconv.Atoi(strings.Split(rest, ",")[0])
		total += n
	}
	return total
}

// TestWatchersCostNoRedisCommands runs jobs with the legacy mirror on, then opens 1,000 SSE streams on
// them for two heartbeats: Redis executes exactly zero commands for the watchers.
func TestWatchersCostNoRedisCommands(t *testing.T) {
	url := testkit.StartRedis(t).URL()
	s := stacktest.Start(t, stacktest.Options{Gateway: func(c *gateway.Config) {
		c.MaxStreamsPerUser = 2000
		c.SSE.Heartbeat = 300 * time.Millisecond
	}})
	m, err := mirror.New(mirror.Config{RedisURL: url}, s.JS, nil, stacktest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	c := s.Client(t, "alice")
	var ids []string
	for i := 0; i < 20; i++ {
		st, _, err := c.Submit(context.Background(), importRequest(fmt.Sprint("p", i), api.FormatCSV, fmt.Sprintf("artist,title\nA%d,B\nC%d,D", i, i)), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ID)
	}
	for _, id := range ids {
		waitFor(t, c, id, func(st api.JobState) bool { return st.State == api.StateCompleted })
	}
	// Wait until the mirror has written every job, then count.
	opt, _ := redis.ParseURL(url)
	rc := redis.NewClient(opt)
	defer rc.Close()
	streamstest.WaitFor(t, 20*time.Second, func() error {
		n, err := rc.ZCard(context.Background(), "bull:sync:completed").Result()
		if err != nil || n < 10 { // retention keeps at most 10
			return fmt.Errorf("completed set %d %v", n, err)
		}
		return nil
	})
	time.Sleep(1500 * time.Millisecond) // the mirror flushes coalesced progress once a second: let it finish
	before := redisCommands(t, url)
	var streams []*api.EventStream
	for i := 0; i < 1000; i++ {
		es, err := c.OpenStream(context.Background(), "/v1/events", "")
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		streams = append(streams, es)
	}
	time.Sleep(700 * time.Millisecond) // the window measured: two heartbeats with every stream open
	for _, es := range streams {
		es.Close()
	}
	if after := redisCommands(t, url); after != before {
		t.Fatalf("1,000 SSE watchers cost %d Redis commands, want 0", after-before)
	}
}
