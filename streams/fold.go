package streams

import (
	"time"

	"github.com/jobwire/jobwire/api"
)

// Apply folds one event into s and reports whether s changed. It is pure and deterministic, so the live
// projection and a replay of JOB_EVENTS produce the same state. Rules:
//   - an event whose Seq is not after s.EventSeq is ignored (redelivery);
//   - once s is terminal only job.requeued changes it (a late progress never overwrites a final state);
//   - events of an older attempt than the current one are ignored.
func Apply(s *api.JobState, e Event) bool {
	if e.Seq != 0 && e.Seq <= s.EventSeq {
		return false
	}
	if s.ID == "" && e.Type != EventSubmitted {
		// The submitted event is missing (expired from the log): start from what this event knows.
		s.ID, s.Type, s.State, s.CreatedAt = e.JobID, e.JobType, api.StateQueued, JobIDTime(e.JobID)
	}
	if s.State.Terminal() && e.Type != EventRequeued {
		return false
	}
	// An earlier attempt's events are stale, except its end: a terminal event whose publish outlived a
	// leader election may be stored after the next attempt started, and then it ends the job, as every
	// worker's claim (which decides on the last event, whatever its attempt) already takes it to.
	if e.Attempt != 0 && e.Attempt < s.Attempt && !e.Terminal() {
		return false
	}
	switch e.Type {
	case EventSubmitted:
		if s.ID != "" && s.EventSeq != 0 {
			return false
		}
		*s = api.JobState{ID: e.JobID, Type: e.JobType, Name: e.Name, State: api.StateQueued, CreatedAt: e.At, RunAt: e.RunAt, Priority: e.Priority}
	case EventStarted:
		s.State = api.StateActive
		s.Attempt = e.Attempt
		s.StartedAt = timePtr(e.At)
		s.Progress = api.Progress{}
	case EventProgress:
		if s.State == api.StateQueued {
			s.State = api.StateActive
		}
		if e.Progress != nil {
			s.Progress = *e.Progress
		}
	case EventCompleted:
		s.State = api.StateCompleted
		finishInto(s, e)
		s.Error = nil
	case EventCancelled:
		s.State = api.StateCancelled
		finishInto(s, e)
	case EventFailed:
		s.Error = e.Error
		if e.Attempt > s.Attempt {
			s.Attempt = e.Attempt
		}
		if e.Final {
			s.State = api.StateFailed
			finishInto(s, e)
		} else {
			s.State = api.StateQueued
			s.RunAt = e.RetryAt
		}
	case EventRequeued:
		if !s.State.Terminal() {
			return false
		}
		s.State, s.Error, s.Result, s.FinishedAt, s.Progress = api.StateQueued, nil, nil, nil, api.Progress{}
		s.Attempt = 0
	default:
		return false
	}
	if e.Seq != 0 {
		s.EventSeq = e.Seq
	}
	s.UpdatedAt = e.At
	return true
}

func finishInto(s *api.JobState, e Event) {
	if e.Progress != nil {
		s.Progress = *e.Progress
	}
	if len(e.Result) > 0 {
		s.Result = e.Result
	}
	if e.Error != nil {
		s.Error = e.Error
	}
	s.FinishedAt = timePtr(e.At)
}

// Fold returns the state that the given events, in stream order, produce.
func Fold(events []Event) api.JobState {
	var s api.JobState
	for _, e := range events {
		Apply(&s, e)
	}
	return s
}

func timePtr(t time.Time) *time.Time { return &t }
