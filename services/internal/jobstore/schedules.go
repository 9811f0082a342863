package jobstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Errors of the schedules.
var (
	ErrNoSchedule        = errors.New("no such schedule")
	ErrTooManySchedules  = fmt.Errorf("there are %d schedules already, the most there may be", api.MaxSchedules)
	ErrScheduleExists    = streams.ErrScheduleExists
	ErrInvalidScheduleID = streams.ErrInvalidScheduleID
)

// CreateSchedule stores a periodic job's schedule (streams.CreateSchedule), unless MaxSchedules exist.
func (s *Store) CreateSchedule(ctx context.Context, sched streams.Schedule) error {
	n, err := s.ScheduleCount(ctx)
	if err != nil {
		return err
	}
	if n >= api.MaxSchedules {
		return ErrTooManySchedules
	}
	_, err = streams.CreateSchedule(ctx, s.js, sched)
	return err
}

// ScheduleCount is how many schedules there are (one stream info request).
func (s *Store) ScheduleCount(ctx context.Context) (int, error) {
	info, err := s.ticks.Info(ctx, jetstream.WithSubjectFilter(streams.ScheduleDefs))
	if err != nil {
		return 0, fmt.Errorf("count schedules: %w", err)
	}
	return len(info.State.Subjects), nil
}

// Schedules returns every schedule, by id: one batched direct get of the last message of each schedule
// subject. A message that is not a schedule jobwire wrote is skipped.
func (s *Store) Schedules(ctx context.Context) ([]streams.Schedule, error) {
	msgs, err := jetstreamext.GetLastMsgsFor(ctx, s.js, streams.StreamTicks, []string{streams.ScheduleDefs},
		jetstreamext.GetLastMsgsBatchSize(api.MaxSchedules))
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	out := []streams.Schedule{}
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if sched, ok := decodeSchedule(m); ok {
			out = append(out, sched)
		}
	}
	slices.SortFunc(out, func(a, b streams.Schedule) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Schedule returns one schedule (a direct get).
func (s *Store) Schedule(ctx context.Context, id string) (streams.Schedule, error) {
	if !streams.ValidScheduleID(id) {
		return streams.Schedule{}, ErrNoSchedule
	}
	m, err := s.ticks.GetLastMsgForSubject(ctx, streams.ScheduleDefSubject(id))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return streams.Schedule{}, ErrNoSchedule
	case err != nil:
		return streams.Schedule{}, fmt.Errorf("read schedule %s: %w", id, err)
	}
	sched, ok := decodeSchedule(m)
	if !ok {
		return streams.Schedule{}, ErrNoSchedule
	}
	return sched, nil
}

// DeleteSchedule removes a schedule and its ticks not yet taken, with one purge of both subjects: the
// server fires it no more. A tick a gateway is handling at that moment may still make its job.
func (s *Store) DeleteSchedule(ctx context.Context, id string) (streams.Schedule, error) {
	sched, err := s.Schedule(ctx, id)
	if err != nil {
		return streams.Schedule{}, err
	}
	if err := s.ticks.Purge(ctx, jetstream.WithPurgeSubject(streams.ScheduleSubjects(id))); err != nil {
		return streams.Schedule{}, fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return sched, nil
}

func decodeSchedule(m *jetstream.RawStreamMsg) (streams.Schedule, bool) {
	id, ok := streams.ParseScheduleDefSubject(m.Subject)
	if !ok {
		return streams.Schedule{}, false
	}
	sched, err := streams.DecodeSchedule(m.Data)
	return sched, err == nil && sched.ID == id
}
