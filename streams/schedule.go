package streams

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/jobwire/jobwire/api"
)

// Periodic jobs are JetStream message schedules (nats-server 2.12+; what follows was read in the
// v2.15.2 source jobwire embeds, server/scheduler.go, cron.go, stream.go and filestore.go):
//
//   - A schedule is a message with a Nats-Schedule header ("@every <Go duration>", at least 1s; a
//     6-field cron expression, seconds first, or @hourly, @daily, @weekly, @monthly, @yearly) and a
//     Nats-Schedule-Target subject in the same stream. Nats-Schedule-Time-Zone (an IANA name) is
//     taken by cron only; with @every or @at it is refused. The server adds a subject rollup, so a
//     subject holds one schedule; a pattern, target or zone it cannot use is refused at publish
//     (400, "message schedules pattern is invalid" and the like).
//   - At each due time the stream leader publishes into the target a copy of the schedule's body and
//     headers, less Nats-Schedule*, Nats-Expected-*, Nats-Msg-Id, Nats-TTL and Nats-Rollup, plus
//     Nats-Scheduler (the schedule's subject) and Nats-Schedule-Next (RFC 3339, when the schedule
//     fires next). A tick has no Nats-Msg-Id and does not carry its own due time: jobwire derives that
//     from Nats-Schedule-Next (TickTime), so every copy of one tick names the same time.
//   - @every ticks fall on the schedule's store time rounded to the second, plus whole intervals (each
//     next time is the last one rounded to the second plus the interval);
//     cron ticks on the expression's seconds in the zone (UTC by default).
//   - Missed ticks: when a tick is due long past (the stream was down or had no leader) the server
//     fires once, late, and goes on from now ("skip ahead and only fire once"): it never catches up
//     tick by tick. A stream leader change clears what the old leader had in flight, so a tick it
//     proposed just before may rarely be produced twice; both copies name the same time.
//   - Deleting or purging the schedule's message ends the schedule.

// ScheduleVersion is the version of Schedule.
const ScheduleVersion = 1

// Schedule is a periodic job's definition: the body of its schedule message in JOBS_TICKS, and so of
// every tick. Exactly one of Cron and Every is set.
type Schedule struct {
	V     int             `json:"v"`
	ID    string          `json:"id"`
	Type  string          `json:"type"`
	Input json.RawMessage `json:"input"`
	// Cron is a 6-field cron expression (seconds first) or a macro such as @hourly; Every a Go duration
	// of at least a second.
	Cron     string `json:"cron,omitempty"`
	Every    string `json:"every,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	// Timeout (nanoseconds) and MaxAttempts are the jobs' own limits (0: the type's).
	Timeout     time.Duration `json:"timeout,omitempty"`
	MaxAttempts int           `json:"maxAttempts,omitempty"`
	// Priority is the jobs' level (empty: normal).
	Priority api.Priority `json:"priority,omitempty"`
	// Owner is the owner token of the operator who made it: the jobs of its ticks are that operator's.
	Owner     string    `json:"owner"`
	CreatedAt time.Time `json:"createdAt"`
}

// Errors of schedule definitions.
var (
	ErrInvalidSchedule = errors.New("invalid schedule")
	ErrScheduleExists  = errors.New("a schedule with this id exists")
)

// Validate checks what reaches a subject or a header, and the pattern.
func (s *Schedule) Validate() error {
	switch {
	case !ValidScheduleID(s.ID):
		return fmt.Errorf("%w: %w", ErrInvalidSchedule, ErrInvalidScheduleID)
	case !ValidJobType(s.Type):
		return fmt.Errorf("%w: %w %q", ErrInvalidSchedule, ErrInvalidJobType, s.Type)
	case !ValidOwnerToken(s.Owner):
		return fmt.Errorf("%w: %w", ErrInvalidSchedule, ErrInvalidOwner)
	case (s.Cron == "") == (s.Every == ""):
		return fmt.Errorf("%w: give either cron or every", ErrInvalidSchedule)
	case !s.Priority.Valid():
		return fmt.Errorf("%w: priority must be high, normal or low", ErrInvalidSchedule)
	case s.Timeout < 0 || s.MaxAttempts < 0:
		return fmt.Errorf("%w: negative timeout or attempts", ErrInvalidSchedule)
	}
	if s.Every != "" {
		if s.Timezone != "" {
			return fmt.Errorf("%w: a timezone goes with cron only", ErrInvalidSchedule)
		}
		_, err := ParseEvery(s.Every)
		return err
	}
	_, err := ParseCron(s.Cron)
	if err == nil && s.Timezone != "" {
		_, err = s.location()
	}
	return err
}

// MinEvery is the shortest interval of a periodic job (the server refuses shorter ones).
const MinEvery = time.Second

// ParseEvery parses an interval: a Go duration of whole seconds, at least MinEvery. (The server rounds
// an @every schedule's times to the second: a fraction would make uneven intervals.)
func ParseEvery(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%w: every must be a duration such as \"30s\" or \"1h\"", ErrInvalidSchedule)
	case d < MinEvery:
		return 0, fmt.Errorf("%w: every must be at least %s", ErrInvalidSchedule, MinEvery)
	case d%time.Second != 0:
		return 0, fmt.Errorf("%w: every must be whole seconds", ErrInvalidSchedule)
	}
	return d, nil
}

func (s *Schedule) location() (*time.Location, error) {
	if s.Timezone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil || s.Timezone == "Local" {
		return nil, fmt.Errorf("%w: unknown timezone %.64q", ErrInvalidSchedule, s.Timezone)
	}
	return loc, nil
}

// TickTime is the due time of the tick whose Nats-Schedule-Next header says next: for @every, next
// less the interval; for cron, the latest time before next that the expression names. It depends on
// next alone, so every copy and every redelivery of a tick gives the same time.
func (s *Schedule) TickTime(next time.Time) (time.Time, error) {
	if s.Every != "" {
		d, err := ParseEvery(s.Every)
		if err != nil {
			return time.Time{}, err
		}
		return next.Add(-d).UTC(), nil
	}
	c, err := ParseCron(s.Cron)
	if err != nil {
		return time.Time{}, err
	}
	loc, err := s.location()
	if err != nil {
		return time.Time{}, err
	}
	t, ok := c.Prev(next, loc)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: cron %q names no time in the 5 years before %s", ErrInvalidSchedule, s.Cron, next)
	}
	return t.UTC(), nil
}

// TickJobID is the id of the job a tick of the schedule makes: a ULID whose time is the tick's and
// whose entropy is a hash of the schedule (its id and creation) and the tick's time. Every gateway
// that handles the tick, once or again, makes the same id, and the submit's deduplication does the rest.
func (s *Schedule) TickJobID(tick time.Time) string {
	h := sha256.New()
	fmt.Fprintf(h, "jobwire-tick\x00%s\x00", s.ID)
	_ = binary.Write(h, binary.BigEndian, s.CreatedAt.UnixNano())
	_ = binary.Write(h, binary.BigEndian, tick.UnixNano())
	sum := h.Sum(nil)
	return ulid.MustNew(ulid.Timestamp(tick), bytes.NewReader(sum[:10])).String()
}

// TickIdempotencyKey is the Idempotency-Key of the job of a tick: one job per tick for 24 h, whatever
// the deduplication window.
func (s *Schedule) TickIdempotencyKey(tick time.Time) string {
	return fmt.Sprintf("jobwire-schedule:%s:%d:%d", s.ID, s.CreatedAt.UnixNano(), tick.UnixNano())
}

// scheduleMsg is the schedule message of s with its publish options: only stored while its subject
// holds none, so of two creates with one id one wins.
func (s *Schedule) scheduleMsg() (*nats.Msg, []jetstream.PublishOpt, error) {
	s.V = ScheduleVersion
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return nil, nil, fmt.Errorf("encode schedule: %w", err)
	}
	opts := []jetstream.PublishOpt{jetstream.WithScheduleTarget(TickSubject(s.ID)), jetstream.WithExpectLastSequencePerSubject(0)}
	if s.Every != "" {
		d, _ := ParseEvery(s.Every)
		opts = append(opts, jetstream.WithScheduleEvery(d))
	} else {
		opts = append(opts, jetstream.WithScheduleCron(s.Cron))
		if s.Timezone != "" {
			opts = append(opts, jetstream.WithScheduleTimeZone(s.Timezone))
		}
	}
	m := nats.NewMsg(ScheduleDefSubject(s.ID))
	m.Data = data
	return m, opts, nil
}

// CreateSchedule stores s as its schedule message, from which the server produces its ticks. An id in
// use is ErrScheduleExists; a definition the server refuses (a pattern or zone it does not take) is
// ErrInvalidSchedule with the server's reason.
func CreateSchedule(ctx context.Context, js jetstream.JetStream, s Schedule) (uint64, error) {
	m, opts, err := s.scheduleMsg()
	if err != nil {
		return 0, err
	}
	ack, err := js.PublishMsg(ctx, m, opts...)
	var apiErr *jetstream.APIError
	switch {
	case IsWrongLastSequence(err):
		return 0, ErrScheduleExists
	case errors.As(err, &apiErr) && apiErr.Code == 400:
		return 0, fmt.Errorf("%w: %s", ErrInvalidSchedule, apiErr.Description)
	case err != nil:
		return 0, fmt.Errorf("store schedule %s: %w", s.ID, err)
	}
	return ack.Sequence, nil
}

// DecodeSchedule parses a schedule message's (or a tick's) body.
func DecodeSchedule(data []byte) (Schedule, error) {
	var s Schedule
	if err := json.Unmarshal(data, &s); err != nil {
		return Schedule{}, fmt.Errorf("%w: %w", ErrInvalidSchedule, err)
	}
	if s.V != ScheduleVersion {
		return Schedule{}, fmt.Errorf("%w: version %d", ErrInvalidSchedule, s.V)
	}
	return s, s.Validate()
}

// Headers the server sets on a tick.
const (
	HeaderScheduler    = jetstream.SchedulerHeader    // the schedule's subject
	HeaderScheduleNext = jetstream.ScheduleNextHeader // when it fires next (RFC 3339), or "purge"
)

// TickNext reads a tick's Nats-Schedule-Next header.
func TickNext(h nats.Header) (time.Time, error) {
	v := h.Get(HeaderScheduleNext)
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("tick: %s %.40q is not a time", HeaderScheduleNext, v)
	}
	return t, nil
}
