package mirror

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/streams/streamstest"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{RedisURL: "redis://localhost:6379"}
	c.SetDefaults()
	want := Config{RedisURL: c.RedisURL, Queue: "sync", MaxAge: 300 * time.Second, MaxCount: 10,
		ProgressInterval: time.Second, EventsMaxLen: 10000, WarnCommandsPerSec: 1000, AckWait: 30 * time.Second}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no url", func(c *Config) { c.RedisURL = "" }},
		{"colon in queue", func(c *Config) { c.Queue = "sync:wait" }},
		{"glob in queue", func(c *Config) { c.Queue = "sy*" }},
		{"space in queue", func(c *Config) { c.Queue = "my queue" }},
		{"brace in queue", func(c *Config) { c.Queue = "{sync}" }},
		{"dot first", func(c *Config) { c.Queue = ".sync" }},
		{"long queue", func(c *Config) { c.Queue = strings.Repeat("q", 65) }},
		{"newline in queue", func(c *Config) { c.Queue = "sync\n" }},
		{"short max age", func(c *Config) { c.MaxAge = 10 * time.Millisecond }},
		{"negative count", func(c *Config) { c.MaxCount = -1 }},
		{"tiny interval", func(c *Config) { c.ProgressInterval = time.Millisecond }},
		{"negative events", func(c *Config) { c.EventsMaxLen = -5 }},
		{"negative warn rate", func(c *Config) { c.WarnCommandsPerSec = -1 }},
		{"ack wait below interval", func(c *Config) { c.AckWait = 2 * time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{RedisURL: "redis://localhost:6379"}
			c.SetDefaults()
			tc.edit(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Errorf("Validate() = %v, want ErrConfig", err)
			}
		})
	}
}

func TestNewRejectsBadRedisURL(t *testing.T) {
	t.Parallel()
	ns := streamstest.RunServer(t)
	_, js := ns.Connect(t)
	for _, tc := range []struct{ name, url string }{
		{"no scheme", "localhost:6379"},
		{"wrong scheme", "http://localhost:6379"},
		{"bad port", "redis://:s3cret@localhost:notaport"},
		{"bad db", "redis://:s3cret@localhost:6379/abc"},
		{"unknown option", "redis://localhost:6379?bogus=1"},
		{"control character", "redis://:s3cret@local\x7fhost:6379"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{RedisURL: tc.url}, js, nil, nil)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "REDIS_URL") {
				t.Fatalf("New(%q) = %v, want a REDIS_URL config error", tc.url, err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestNewWithoutRedisURLConnectsNowhere(t *testing.T) {
	t.Parallel()
	ns := streamstest.RunServer(t)
	_, js := ns.Connect(t)
	if _, err := New(Config{}, js, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("New without RedisURL = %v, want ErrConfig", err)
	}
	// A valid URL is parsed, not dialled: New succeeds with nothing listening.
	m, err := New(Config{RedisURL: "redis://127.0.0.1:1/0"}, js, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	m.Stop()
	if n := m.CommandsTotal(); n != 0 {
		t.Errorf("New+Stop sent %d Redis commands", n)
	}
}
