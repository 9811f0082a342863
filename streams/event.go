package streams

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jobwire/jobwire/api"
)

// EventVersion is the version of the event schema written by this code. Readers accept every version up
// to it; a newer version is an error, so an old projector never misreads a new event.
const EventVersion = 1

// EventType names what happened to a job.
type EventType string

// The job events, in the order a job usually meets them.
const (
	EventSubmitted EventType = "job.submitted"
	EventStarted   EventType = "job.started"
	EventProgress  EventType = "job.progress"
	EventCompleted EventType = "job.completed"
	EventFailed    EventType = "job.failed"
	EventCancelled EventType = "job.cancelled"
	// EventRequeued puts a failed or cancelled job back into the queue (jobwire jobs retry).
	EventRequeued EventType = "job.requeued"
)

// HeaderEventType carries the event type on every JOB_EVENTS message, so consumers and operators can
// see it without parsing the body.
const HeaderEventType = "Jobwire-Event"

// Event is one entry of JOB_EVENTS. The envelope is flat: fields that do not apply to a type are
// omitted. Seq is the stream sequence, filled in by readers, never written.
type Event struct {
	V       int       `json:"v"`
	Type    EventType `json:"type"`
	JobID   string    `json:"jobId"`
	JobType string    `json:"jobType"`
	Owner   string    `json:"owner"`
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt,omitempty"`

	// job.submitted
	Name  string     `json:"name,omitempty"`
	RunAt *time.Time `json:"runAt,omitempty"`
	// Priority is the job's level; empty: normal.
	Priority api.Priority `json:"priority,omitempty"`
	// QueueSeq is the JOBS sequence of the job's message, which is stored before this event: a
	// submitted event without one was not written by jobwire and its job has no message (an orphan).
	QueueSeq uint64 `json:"queueSeq,omitempty"`
	// job.started
	Worker string `json:"worker,omitempty"`
	// job.progress (and the last progress of completed/cancelled)
	Progress *api.Progress `json:"progress,omitempty"`
	// job.completed, job.cancelled
	Result json.RawMessage `json:"result,omitempty"`
	// job.failed, job.cancelled
	Error *api.JobError `json:"error,omitempty"`
	// Final is set on job.failed when no retry follows; a non-final failure puts the job back to queued.
	Final bool `json:"final,omitempty"`
	// RetryAt is when a non-final failure will be retried.
	RetryAt *time.Time `json:"retryAt,omitempty"`

	Seq uint64 `json:"-"`
}

// Terminal reports whether the event ends the job.
func (e *Event) Terminal() bool {
	switch e.Type {
	case EventCompleted, EventCancelled:
		return true
	case EventFailed:
		return e.Final
	}
	return false
}

// MsgID is the Nats-Msg-Id of the event: the same logical event published twice (a retried publish)
// is stored once. n distinguishes repeated events of one type within an attempt (progress); generation
// counts how often the job was re-queued from the dead letters, whose attempts start again at 1.
func (e *Event) MsgID(generation, n int) string {
	return e.JobID + ":" + string(e.Type) + ":" + strconv.Itoa(generation) + ":" + strconv.Itoa(e.Attempt) + ":" + strconv.Itoa(n)
}

// Subject is the JOB_EVENTS subject of the event.
func (e *Event) Subject() string { return EventSubject(e.Owner, e.JobID) }

// Validate checks the fields every event needs, so nothing unvalidated reaches a subject.
func (e *Event) Validate() error {
	switch {
	case e.V < 1 || e.V > EventVersion:
		return fmt.Errorf("event version %d not supported (max %d)", e.V, EventVersion)
	case !ValidJobID(e.JobID):
		return fmt.Errorf("event %s: %w %q", e.Type, ErrInvalidJobID, e.JobID)
	case !ValidOwnerToken(e.Owner):
		return fmt.Errorf("event %s: %w %q", e.Type, ErrInvalidOwner, e.Owner)
	case !ValidJobType(e.JobType):
		return fmt.Errorf("event %s: %w %q", e.Type, ErrInvalidJobType, e.JobType)
	}
	switch e.Type {
	case EventSubmitted, EventStarted, EventProgress, EventCompleted, EventFailed, EventCancelled, EventRequeued:
		return nil
	}
	return fmt.Errorf("unknown event type %q", e.Type)
}

// DecodeEvent parses and validates a JOB_EVENTS message body.
func DecodeEvent(data []byte, seq uint64) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("decode event %d: %w", seq, err)
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("decode event %d: %w", seq, err)
	}
	e.Seq = seq
	return e, nil
}

// JobMessage is the body of a JOBS message: what a worker needs to run the job.
type JobMessage struct {
	V         int             `json:"v"`
	JobID     string          `json:"jobId"`
	Type      string          `json:"type"`
	Owner     string          `json:"owner"`
	Input     json.RawMessage `json:"input"`
	CreatedAt time.Time       `json:"createdAt"`
	RunAt     *time.Time      `json:"runAt,omitempty"`
	// Name is the job's display name (so a worker can write the job.submitted event if it is missing).
	Name string `json:"name,omitempty"`
	// Requeued counts how often an operator put the job back from the dead-letter stream, and SinceSeq
	// is the JOB_EVENTS sequence of the job.requeued event that began this run of it: cancel requests
	// decided before it concern an earlier run.
	Requeued int    `json:"requeued,omitempty"`
	SinceSeq uint64 `json:"sinceSeq,omitempty"`
	// Attempts counts the attempts made before this message: a retry is a new message (scheduled for
	// its retry time), so a worker numbers its attempt Attempts + the message's delivery count.
	Attempts int `json:"attempts,omitempty"`
	// MaxAttempts and Timeout, when set, are this job's own limits (at most the type's attempts).
	MaxAttempts int           `json:"maxAttempts,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`
	// Priority is the job's level, which says its queue subject (QueueSubjectAt); empty: normal.
	Priority api.Priority `json:"priority,omitempty"`
}

// SubmittedEvent is the job.submitted event of the job m describes, queued at JOBS sequence queueSeq.
// The gateway writes it after the job message; a worker writes the same event (same message id) when a
// job message arrives without one.
func (m *JobMessage) SubmittedEvent(queueSeq uint64) Event {
	return Event{V: EventVersion, Type: EventSubmitted, JobID: m.JobID, JobType: m.Type, Owner: m.Owner,
		At: m.CreatedAt, Name: m.Name, RunAt: m.RunAt, Priority: m.Priority, QueueSeq: queueSeq}
}

// Validate checks the fields that reach subjects and keys.
func (m *JobMessage) Validate() error {
	switch {
	case !ValidJobID(m.JobID):
		return fmt.Errorf("job message: %w %q", ErrInvalidJobID, m.JobID)
	case !ValidOwnerToken(m.Owner):
		return fmt.Errorf("job message: %w %q", ErrInvalidOwner, m.Owner)
	case !ValidJobType(m.Type):
		return fmt.Errorf("job message: %w %q", ErrInvalidJobType, m.Type)
	case m.Attempts < 0 || m.MaxAttempts < 0 || m.Timeout < 0:
		return fmt.Errorf("job message %s: negative attempts or timeout", m.JobID)
	case !m.Priority.Valid():
		return fmt.Errorf("job message %s: invalid priority %.20q", m.JobID, m.Priority)
	}
	return nil
}
