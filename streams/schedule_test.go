package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

func TestParseCron(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		expr, at, prev, next string
	}{
		{"* * * * * *", "2026-03-01T10:00:00.5Z", "2026-03-01T10:00:00Z", "2026-03-01T10:00:01Z"},
		{"* * * * * *", "2026-03-01T10:00:00Z", "2026-03-01T09:59:59Z", "2026-03-01T10:00:01Z"},
		{"*/15 * * * * *", "2026-03-01T10:00:16Z", "2026-03-01T10:00:15Z", "2026-03-01T10:00:30Z"},
		{"0 30 9 * * mon-fri", "2026-03-02T12:00:00Z", "2026-03-02T09:30:00Z", "2026-03-03T09:30:00Z"}, // a Monday
		{"0 30 9 * * MON-FRI", "2026-03-02T09:00:00Z", "2026-02-27T09:30:00Z", "2026-03-02T09:30:00Z"}, // back to Friday
		{"@daily", "2026-03-01T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"},
		{"@hourly", "2026-03-01T10:00:00Z", "2026-03-01T09:00:00Z", "2026-03-01T11:00:00Z"},
		{"@weekly", "2026-03-04T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z"},
		{"@monthly", "2026-03-04T10:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{"@yearly", "2026-03-04T10:00:00Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"0 0 0 29 feb ?", "2026-03-04T10:00:00Z", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z"},
		// Both day fields restricted: either day runs (the 1st, or a Sunday).
		{"0 0 12 1 * 0", "2026-03-02T00:00:00Z", "2026-03-01T12:00:00Z", "2026-03-08T12:00:00Z"},
		{"5,10-12/2 0 0 * * *", "2026-03-01T00:00:11Z", "2026-03-01T00:00:10Z", "2026-03-01T00:00:12Z"},
	} {
		c, err := streams.ParseCron(tc.expr)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		at := utc(tc.at)
		if p, ok := c.Prev(at, time.UTC); !ok || !p.Equal(utc(tc.prev)) {
			t.Errorf("%q: Prev(%s) = %s %v, want %s", tc.expr, tc.at, p, ok, tc.prev)
		}
		if n, ok := c.Next(at, time.UTC); !ok || !n.Equal(utc(tc.next)) {
			t.Errorf("%q: Next(%s) = %s %v, want %s", tc.expr, tc.at, n, ok, tc.next)
		}
	}
	// In a zone: 09:30 in New York is 14:30 UTC in winter, 13:30 in summer.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tz database: %v", err)
	}
	c, _ := streams.ParseCron("0 30 9 * * *")
	if n, _ := c.Next(utc("2026-01-10T00:00:00Z"), ny); !n.Equal(utc("2026-01-10T14:30:00Z")) {
		t.Errorf("winter: %s", n.UTC())
	}
	if p, _ := c.Prev(utc("2026-07-10T20:00:00Z"), ny); !p.Equal(utc("2026-07-10T13:30:00Z")) {
		t.Errorf("summer: %s", p.UTC())
	}
	for _, bad := range []string{"", "* * * * *", "* * * * * * *", "60 * * * * *", "* * 24 * * *", "* * * 0 * *",
		"* * * * 13 *", "* * * * * 7", "*/0 * * * * *", "5-1 * * * * *", "a * * * * *", "0 0 0 30 2 *",
		"@every 1s", "@reboot", "1,,2 * * * * *", strings.Repeat("1,", 200) + "1 * * * * *"} {
		if _, err := streams.ParseCron(bad); !errors.Is(err, streams.ErrInvalidSchedule) {
			t.Errorf("ParseCron(%q) = %v, want ErrInvalidSchedule", bad, err)
		}
	}
}

func TestTickTimeAndJobID(t *testing.T) {
	created := time.Date(2026, 3, 1, 10, 0, 0, 123, time.UTC)
	every := streams.Schedule{ID: "nightly", Every: "90s", CreatedAt: created}
	next := time.Date(2026, 3, 1, 10, 3, 0, 0, time.UTC)
	tick, err := every.TickTime(next)
	if err != nil || !tick.Equal(next.Add(-90*time.Second)) {
		t.Fatalf("every: %s %v", tick, err)
	}
	cron := streams.Schedule{ID: "nightly", Cron: "0 0 2 * * *", Timezone: "UTC", CreatedAt: created}
	if tick, err := cron.TickTime(time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)); err != nil || !tick.Equal(time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("cron: %s %v", tick, err)
	}
	id := every.TickJobID(tick)
	if !streams.ValidJobID(id) || !streams.JobIDTime(id).Equal(tick.Truncate(time.Millisecond)) {
		t.Fatalf("job id %s: time %s, want %s", id, streams.JobIDTime(id), tick)
	}
	if again := every.TickJobID(tick); again != id {
		t.Fatalf("the same tick made %s and %s", id, again)
	}
	other := every
	other.CreatedAt = created.Add(time.Nanosecond) // the schedule deleted and made again
	for _, d := range []string{every.TickJobID(tick.Add(time.Second)), other.TickJobID(tick), (&streams.Schedule{ID: "other", CreatedAt: created}).TickJobID(tick)} {
		if d == id {
			t.Fatalf("another tick or schedule made the same id %s", id)
		}
	}
}

func TestScheduleValidate(t *testing.T) {
	ok := streams.Schedule{ID: "a", Type: "demo.count", Owner: "ops", Every: "1s"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*streams.Schedule){
		"id with a dot":       func(s *streams.Schedule) { s.ID = "a.b" },
		"id wildcard":         func(s *streams.Schedule) { s.ID = "*" },
		"id too long":         func(s *streams.Schedule) { s.ID = strings.Repeat("a", 65) },
		"both":                func(s *streams.Schedule) { s.Cron = "@daily" },
		"neither":             func(s *streams.Schedule) { s.Every = "" },
		"under a second":      func(s *streams.Schedule) { s.Every = "999ms" },
		"not a duration":      func(s *streams.Schedule) { s.Every = "daily" },
		"zone with every":     func(s *streams.Schedule) { s.Timezone = "UTC" },
		"unknown zone":        func(s *streams.Schedule) { s.Every, s.Cron, s.Timezone = "", "@daily", "Mars/Olympus" },
		"bad type":            func(s *streams.Schedule) { s.Type = "Demo" },
		"bad owner":           func(s *streams.Schedule) { s.Owner = "a b" },
		"negative maxAttempt": func(s *streams.Schedule) { s.MaxAttempts = -1 },
	} {
		s := ok
		mutate(&s)
		if err := s.Validate(); !errors.Is(err, streams.ErrInvalidSchedule) {
			t.Errorf("%s: %v, want ErrInvalidSchedule", name, err)
		}
	}
}

// TestServerSchedules pins what nats-server does with the schedule messages jobwire stores: an
// @every schedule ticks on whole seconds with the definition as body, Nats-Scheduler and
// Nats-Schedule-Next, and no Nats-Msg-Id; a second create with the same id is refused; and after the
// server was down for several ticks it fires once, then goes on (no catching up).
func TestServerSchedules(t *testing.T) {
	srv := streamstest.RunServer(t)
	_, js := srv.Ensure(t)
	ctx := context.Background()
	s := streams.Schedule{ID: "every-second", Type: "demo.count", Input: json.RawMessage(`{"n":1}`), Every: "1s", Owner: "ops", CreatedAt: time.Now().UTC()}
	if _, err := streams.CreateSchedule(ctx, js, s); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.CreateSchedule(ctx, js, s); !errors.Is(err, streams.ErrScheduleExists) {
		t.Fatalf("second create: %v, want ErrScheduleExists", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, streams.StreamTicks, jetstream.ConsumerConfig{Durable: "probe",
		FilterSubject: streams.TickSubject(s.ID), AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	next := func() (tick, next time.Time, stored time.Time) {
		t.Helper()
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("no tick: %v", err)
		}
		_ = msg.Ack()
		h := msg.Headers()
		if got := h.Get(streams.HeaderScheduler); got != streams.ScheduleDefSubject(s.ID) {
			t.Fatalf("Nats-Scheduler %q", got)
		}
		if h.Get("Nats-Msg-Id") != "" || h.Get("Nats-Schedule") != "" || h.Get("Nats-Schedule-Target") != "" {
			t.Fatalf("tick headers %v", h)
		}
		def, err := streams.DecodeSchedule(msg.Data())
		if err != nil || def.ID != s.ID || string(def.Input) != `{"n":1}` {
			t.Fatalf("tick body %s: %v", msg.Data(), err)
		}
		n, err := streams.TickNext(h)
		if err != nil {
			t.Fatal(err)
		}
		tick, err = def.TickTime(n)
		if err != nil {
			t.Fatal(err)
		}
		md, _ := msg.Metadata()
		return tick, n, md.Timestamp
	}
	var last time.Time
	for i := range 3 {
		tick, n, stored := next()
		if tick.Nanosecond() != 0 || n.Sub(tick) != time.Second || stored.Before(tick) {
			t.Fatalf("tick %s, next %s, stored %s", tick, n, stored)
		}
		if i > 0 && !tick.Equal(last.Add(time.Second)) {
			t.Fatalf("tick %s after %s", tick, last)
		}
		last = tick
	}

	// Down for about four ticks: one late tick, then one a second.
	srv.Shutdown()
	down := time.Now()
	time.Sleep(4 * time.Second)
	srv.Restart()
	tick, _, stored := next()
	if !tick.After(last.Add(2*time.Second)) || stored.Before(down.Add(4*time.Second)) {
		t.Fatalf("after the outage: tick %s (the last before %s), stored %s", tick, last, stored)
	}
	t.Logf("last tick before the outage %s, first after %s", last.Format(time.TimeOnly), tick.Format(time.TimeOnly))
	after, _, _ := next()
	if !after.Equal(tick.Add(time.Second)) {
		t.Fatalf("tick %s after the late one %s", after, tick)
	}
}
