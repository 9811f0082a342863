package mirror

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// writeMode is what a write does to the job's set entries, besides setting its hash fields.
type writeMode string

const (
	// modeUpdate writes a queued or active job: its hash only, never a list or set.
	modeUpdate writeMode = "update"
	// modeCompleted and modeFailed write a finished job: hash plus an entry in that set, scored by
	// finishedOn, and trim the set to MaxCount.
	modeCompleted writeMode = "completed"
	modeFailed    writeMode = "failed"
	// modeDrop is for a job that finished longer ago than MaxAge (the mirror is catching up): its hash
	// and set entries are removed instead of written, and only the event is appended.
	modeDrop writeMode = "drop"
)

const (
	// unfinishedTTL bounds the life of the hash of a job that never finishes in Redis (its terminal
	// event is older than the consumer, say). Every write renews it.
	unfinishedTTL = 24 * time.Hour
	// finishedGrace is how much longer than MaxAge a finished hash lives. The sweeper removes hash and
	// set entry together at MaxAge; the TTL is only the backstop for a mirror that is no longer running,
	// and it must not fire first, or a set entry would point at a missing hash.
	finishedGrace = time.Minute
	// seqField is the one field the mirror adds to BullMQ's layout: the JOB_EVENTS sequence of the
	// state in the hash. The write script skips a write whose sequence is not newer, so a redelivered
	// event never moves a job back in time. BullMQ ignores fields it does not know.
	seqField = "jwseq"
)

// write is one job's writes, done by writeScript in one atomic step.
type write struct {
	jobID      string
	key        string
	seq        uint64
	mode       writeMode
	fresh      bool          // remove the job's hash and set entries first (it was requeued)
	finishedOn int64         // ms; finished modes only
	ttl        time.Duration // of the hash; not used by modeDrop
	fields     []any         // hash field, value, ...
	event      []any         // events stream entry field, value, ...; empty for none
	percent    int           // progress percent the write stores
}

// buildWrite returns the write that makes Redis show e's state. now decides whether a finished job is
// still within MaxAge.
func buildWrite(e *entry, k keys, maxAge time.Duration, now time.Time) (write, error) {
	s := &e.state
	key, err := k.job(s.ID)
	if err != nil {
		return write{}, err
	}
	w := write{jobID: s.ID, key: key, seq: s.EventSeq, fresh: e.fresh, percent: s.Progress.Percent}
	w.fields, err = hashFields(s, e.named)
	if err != nil {
		return write{}, fmt.Errorf("job %s: %w", s.ID, err)
	}
	switch {
	case s.State.Terminal():
		fin := finishedAt(s)
		w.finishedOn = fin.UnixMilli()
		w.mode = modeFailed
		w.event = []any{"event", "failed", "jobId", s.ID, "failedReason", failedReason(s), "prev", "active"}
		if s.State == api.StateCompleted {
			w.mode = modeCompleted
			w.event = []any{"event", "completed", "jobId", s.ID, "returnvalue", returnValue(s.Result), "prev", "active"}
		}
		expires := fin.Add(maxAge)
		if !expires.After(now) {
			w.mode = modeDrop
			break
		}
		w.ttl = expires.Add(finishedGrace).Sub(now)
	default:
		w.mode, w.ttl = modeUpdate, unfinishedTTL
		if s.State == api.StateActive && (s.Progress.Percent != e.writtenPercent || e.fresh) && s.Progress.Percent > 0 {
			w.event = []any{"event", "progress", "jobId", s.ID, "data", strconv.Itoa(s.Progress.Percent)}
		}
	}
	return w, nil
}

// hashFields returns the BullMQ job hash fields for s. Every value BullMQ parses as JSON (data, opts,
// progress, returnvalue) is valid JSON: invalid JSON there makes getJob throw. Fields the mirror does
// not know are left out rather than written empty, so a write after a restart (which may have lost
// the job.submitted event) never erases what an earlier write stored.
func hashFields(s *api.JobState, named bool) ([]any, error) {
	created := s.CreatedAt
	if created.IsZero() {
		created = streams.JobIDTime(s.ID)
	}
	made, started := s.Attempt, s.Attempt
	if s.State == api.StateActive && made > 0 {
		made-- // the running attempt is started, not yet made
	}
	opts, err := json.Marshal(struct {
		Attempts int `json:"attempts"`
	}{max(s.Attempt, 1)})
	if err != nil {
		return nil, fmt.Errorf("encode opts: %w", err)
	}
	f := []any{
		"name", s.Type,
		"opts", string(opts),
		"timestamp", strconv.FormatInt(created.UnixMilli(), 10),
		"progress", strconv.Itoa(s.Progress.Percent),
		"atm", strconv.Itoa(made),
		"ats", strconv.Itoa(started),
	}
	if named {
		data, err := json.Marshal(struct {
			Name string `json:"name"`
		}{s.Name})
		if err != nil {
			return nil, fmt.Errorf("encode data: %w", err)
		}
		f = append(f, "data", string(data))
	}
	if s.StartedAt != nil {
		f = append(f, "processedOn", strconv.FormatInt(s.StartedAt.UnixMilli(), 10))
	}
	if s.State.Terminal() {
		f = append(f, "finishedOn", strconv.FormatInt(finishedAt(s).UnixMilli(), 10))
		if s.State == api.StateCompleted || len(s.Result) > 0 {
			f = append(f, "returnvalue", returnValue(s.Result))
		}
	}
	if r := failedReason(s); r != "" {
		f = append(f, "failedReason", r)
	}
	return f, nil
}

// finishedAt is when a finished job finished.
func finishedAt(s *api.JobState) time.Time {
	switch {
	case s.FinishedAt != nil:
		return *s.FinishedAt
	case !s.UpdatedAt.IsZero():
		return s.UpdatedAt
	}
	return streams.JobIDTime(s.ID)
}

// returnValue is the result as compact JSON, "null" when there is none or it is not valid JSON.
func returnValue(result json.RawMessage) string {
	var b bytes.Buffer
	if len(result) == 0 || json.Compact(&b, result) != nil {
		return "null"
	}
	return b.String()
}

// failedReason is BullMQ's failedReason for s: the error message of a failed job (also kept while a
// failed attempt waits for its retry), "cancelled: <why>" for a cancelled one, empty otherwise.
func failedReason(s *api.JobState) string {
	why := ""
	if s.Error != nil {
		why = s.Error.Message
		if why == "" {
			why = s.Error.Code
		}
	}
	switch {
	case s.State == api.StateCancelled:
		if why == "" {
			why = "job was cancelled"
		}
		return "cancelled: " + why
	case s.State == api.StateFailed && why == "":
		return "job failed"
	}
	return why
}
