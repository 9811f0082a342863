package gateway

import (
	"fmt"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"10/s": {10, time.Second}, "600/m": {600, time.Minute}, "5/h": {5, time.Hour}, "3": {3, time.Second},
		" 2/500ms ": {2, 500 * time.Millisecond}, "off": {N: -1}, "OFF": {N: -1},
	} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1/s", "ten/s", "10/fortnight", "10/-1s", "1/0s", "10/s/s"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, got)
		}
	}
}

func TestSubmitLimiterBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newSubmitLimiter(Rate{N: 2, Per: time.Second}, 3, nil)
	l.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("alice", 1); !ok {
			t.Fatalf("submit %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("alice", 1)
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("past the burst: %v, wait %s", ok, wait)
	}
	if ok, _ := l.allow("bob", 1); !ok {
		t.Fatal("bob pays for alice")
	}
	now = now.Add(500 * time.Millisecond) // one token back
	if ok, _ := l.allow("alice", 1); !ok {
		t.Fatal("refill")
	}
	if ok, _ := l.allow("alice", 1); ok {
		t.Fatal("refilled more than the rate")
	}
	now = now.Add(time.Hour) // never more than the burst
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("alice", 1); !ok {
			t.Fatalf("after a rest, submit %d refused", i)
		}
	}
	if ok, _ := l.allow("alice", 1); ok {
		t.Fatal("burst grew while idle")
	}
	if newSubmitLimiter(Rate{N: -1}, 3, nil) != nil {
		t.Fatal("off is not off")
	}
}

func TestSubmitLimiterMemoryIsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newSubmitLimiter(Rate{N: 1, Per: time.Minute}, 2, nil)
	l.now = func() time.Time { return now }
	l.max = 1000
	// Users who stay within their rate are forgotten first; a busy user is remembered.
	l.allow("busy", 1)
	l.allow("busy", 1)
	for i := 0; i < 5000; i++ {
		now = now.Add(time.Millisecond)
		l.allow(fmt.Sprintf("user-%d", i), 1)
		if n := l.size(); n > l.max {
			t.Fatalf("%d users remembered, max %d", n, l.max)
		}
	}
	// Every user made one submit: none has a full bucket, so eviction had to pick arbitrary ones,
	// and the map still stayed bounded.
	if l.size() > l.max {
		t.Fatalf("size %d", l.size())
	}
}
