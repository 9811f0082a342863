package streams

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed cron expression in the form JetStream message schedules take: six fields, seconds
// first (second minute hour day-of-month month day-of-week), each a list of values, ranges (a-b) and
// steps (*/n, a/n, a-b/n), '*' or '?' for any; months and weekdays also by English three-letter names,
// weekdays 0 (Sunday) to 6. When both day fields are restricted a day matching either runs (as in Vixie
// cron); when either is '*', both must match. Macros: @yearly (@annually), @monthly, @weekly, @daily
// (@midnight), @hourly.
//
// jobwire parses expressions itself to refuse bad ones with a clear message and to know a tick's due
// time (Prev); the server still decides when ticks fire, and refuses what it does not take.
type Cron struct {
	sec, min, hour, dom, month, dow uint64
	domAny, dowAny                  bool
}

var cronMacros = map[string]string{
	"@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
	"@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *", "@hourly": "0 0 * * * *",
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is the value min+i
}

var cronFields = [6]cronField{
	{name: "second", max: 59},
	{name: "minute", max: 59},
	{name: "hour", max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{name: "day of week", max: 6, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// MaxCronLen bounds a cron expression.
const MaxCronLen = 200

// cronHorizon is how far Prev and Next look, as the server does.
const cronHorizon = 5

// ParseCron parses expr (see Cron). It also refuses an expression that names no time at all (such as
// the 30th of February).
func ParseCron(expr string) (Cron, error) {
	if len(expr) > MaxCronLen {
		return Cron{}, fmt.Errorf("%w: cron longer than %d bytes", ErrInvalidSchedule, MaxCronLen)
	}
	if m, ok := cronMacros[expr]; ok {
		expr = m
	}
	fields := strings.Fields(expr)
	if len(fields) != 6 {
		return Cron{}, fmt.Errorf("%w: cron needs 6 fields (second minute hour day-of-month month day-of-week) or a macro such as @daily, got %d fields", ErrInvalidSchedule, len(fields))
	}
	var c Cron
	sets := [6]*uint64{&c.sec, &c.min, &c.hour, &c.dom, &c.month, &c.dow}
	for i, f := range fields {
		bits, any, err := cronFields[i].parse(f)
		if err != nil {
			return Cron{}, fmt.Errorf("%w: cron %s %.32q: %s", ErrInvalidSchedule, cronFields[i].name, f, err)
		}
		*sets[i] = bits
		switch i {
		case 3:
			c.domAny = any
		case 5:
			c.dowAny = any
		}
	}
	if _, ok := c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC); !ok {
		return Cron{}, fmt.Errorf("%w: cron %q names no time", ErrInvalidSchedule, expr)
	}
	return c, nil
}

// parse reads one field: the set of values it names, and whether it is '*' (or '?') without a step.
func (f cronField) parse(s string) (bits uint64, any bool, err error) {
	for _, item := range strings.Split(s, ",") {
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			if step, err = strconv.Atoi(stepStr); err != nil || step < 1 {
				return 0, false, fmt.Errorf("step %q is not a positive number", stepStr)
			}
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*" || rng == "?":
			any = any || step == 1
		default:
			a, b, isRange := strings.Cut(rng, "-")
			if lo, err = f.value(a); err != nil {
				return 0, false, err
			}
			switch {
			case isRange:
				if hi, err = f.value(b); err != nil {
					return 0, false, err
				}
			case !hasStep:
				hi = lo
			}
			if lo > hi {
				return 0, false, fmt.Errorf("range %s starts after it ends", rng)
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, any, nil
}

func (f cronField) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("%q is not a value from %d to %d", s, f.min, f.max)
	}
	return v, nil
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// day reports whether the expression runs on the day of t.
func (c Cron) day(t time.Time) bool {
	if !has(c.month, int(t.Month())) {
		return false
	}
	dom, dow := has(c.dom, t.Day()), has(c.dow, int(t.Weekday()))
	if c.domAny || c.dowAny {
		return dom && dow
	}
	return dom || dow
}

// Prev returns the latest whole second strictly before t that the expression names, in loc.
func (c Cron) Prev(t time.Time, loc *time.Location) (time.Time, bool) {
	t = t.In(loc)
	limit := t.AddDate(-cronHorizon, 0, 0)
	// Start from the last whole second before t.
	cur := t.Truncate(time.Second)
	if !cur.Before(t) {
		cur = cur.Add(-time.Second)
	}
	for day := 0; ; day++ {
		d := time.Date(cur.Year(), cur.Month(), cur.Day()-day, 0, 0, 0, 0, loc)
		if d.Before(limit) {
			return time.Time{}, false
		}
		if !c.day(d) {
			continue
		}
		hh, mm, ss := 23, 59, 59
		if day == 0 {
			hh, mm, ss = cur.Hour(), cur.Minute(), cur.Second()
		}
		if r, ok := c.lastIn(d, hh, mm, ss, t, loc); ok {
			return r, true
		}
	}
}

// lastIn returns the latest time of day d, at or before hh:mm:ss, that the expression names and that
// is before t (a local time a clock change skipped can normalise past it).
func (c Cron) lastIn(d time.Time, hh, mm, ss int, t time.Time, loc *time.Location) (time.Time, bool) {
	for h := hh; h >= 0; h-- {
		if !has(c.hour, h) {
			continue
		}
		m0 := 59
		if h == hh {
			m0 = mm
		}
		for m := m0; m >= 0; m-- {
			if !has(c.min, m) {
				continue
			}
			s0 := 59
			if h == hh && m == mm {
				s0 = ss
			}
			for s := s0; s >= 0; s-- {
				if has(c.sec, s) {
					if r := time.Date(d.Year(), d.Month(), d.Day(), h, m, s, 0, loc); r.Before(t) {
						return r, true
					}
				}
			}
		}
	}
	return time.Time{}, false
}

// Next returns the earliest whole second strictly after t that the expression names, in loc.
func (c Cron) Next(t time.Time, loc *time.Location) (time.Time, bool) {
	t = t.In(loc)
	limit := t.AddDate(cronHorizon, 0, 0)
	cur := t.Truncate(time.Second).Add(time.Second)
	for day := 0; ; day++ {
		d := time.Date(cur.Year(), cur.Month(), cur.Day()+day, 0, 0, 0, 0, loc)
		if d.After(limit) {
			return time.Time{}, false
		}
		if !c.day(d) {
			continue
		}
		h0, m0, s0 := 0, 0, 0
		if day == 0 {
			h0, m0, s0 = cur.Hour(), cur.Minute(), cur.Second()
		}
		for h := h0; h < 24; h++ {
			if !has(c.hour, h) {
				continue
			}
			mStart := 0
			if h == h0 {
				mStart = m0
			}
			for m := mStart; m < 60; m++ {
				if !has(c.min, m) {
					continue
				}
				sStart := 0
				if h == h0 && m == m0 {
					sStart = s0
				}
				for s := sStart; s < 60; s++ {
					if has(c.sec, s) {
						if r := time.Date(d.Year(), d.Month(), d.Day(), h, m, s, 0, loc); r.After(t) {
							return r, true
						}
					}
				}
			}
		}
	}
}
