package testkit

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// SubmittedEvents returns the job.submitted events of owner's jobs in JOB_EVENTS, in stream order (the
// log, not the projection: a job submitted twice shows twice).
func SubmittedEvents(t testing.TB, js jetstream.JetStream, owner string) []streams.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []streams.Event
	for from := uint64(1); ; {
		msgs, err := jetstreamext.GetBatch(ctx, js, streams.StreamEvents, 1000, jetstreamext.GetBatchSeq(from),
			jetstreamext.GetBatchSubject(streams.OwnerEventsFilter(owner)))
		if err != nil {
			t.Fatalf("read events of %s: %v", owner, err)
		}
		n := 0
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				t.Fatalf("read events of %s: %v", owner, err)
			}
			n, from = n+1, m.Sequence+1
			if ev, err := streams.DecodeEvent(m.Data, m.Sequence); err == nil && ev.Type == streams.EventSubmitted {
				out = append(out, ev)
			}
		}
		if n < 1000 {
			return out
		}
	}
}

// TickTimes checks the jobs of a periodic job's ticks among events (SubmittedEvents of the schedule's
// owner): each job's id is the one derived from its tick (streams.Schedule.TickJobID), each job was
// submitted once and no tick made two jobs. It returns the ticks' times, in order.
func TickTimes(t testing.TB, events []streams.Event, s api.Schedule) []time.Time {
	t.Helper()
	def := streams.Schedule{ID: s.ID, CreatedAt: s.CreatedAt}
	seen := map[string]bool{}
	var ticks []time.Time
	for _, ev := range events {
		tick := streams.JobIDTime(ev.JobID)
		if want := def.TickJobID(tick); ev.JobID != want {
			continue // not this schedule's
		}
		if seen[ev.JobID] {
			t.Errorf("job %s (tick %s) submitted twice", ev.JobID, tick.Format(time.TimeOnly))
		}
		seen[ev.JobID] = true
		ticks = append(ticks, tick)
	}
	slices.SortFunc(ticks, time.Time.Compare)
	return ticks
}

// TickGaps returns the ticks an interval apart from each other that ticks lacks, between its first
// and its last.
func TickGaps(ticks []time.Time, every time.Duration) []time.Time {
	var gaps []time.Time
	for i := 1; i < len(ticks); i++ {
		for at := ticks[i-1].Add(every); at.Before(ticks[i]); at = at.Add(every) {
			gaps = append(gaps, at)
		}
	}
	return gaps
}
