package api

import (
	"encoding/json"
	"time"
)

// State is where a job is in its life. Queued and active jobs may still change; the other three are
// terminal: once a job reaches one, nothing but an explicit re-queue changes it again.
type State string

// The states of a job.
const (
	StateQueued    State = "queued"
	StateActive    State = "active"
	StateCompleted State = "completed"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// Terminal reports whether s is a final state (completed, failed or cancelled).
func (s State) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Progress is how far a running job has come. Percent is derived from Done and Total (0..100).
type Progress struct {
	Done    int    `json:"done"`
	Total   int    `json:"total"`
	Percent int    `json:"percent"`
	Message string `json:"message,omitempty"`
}

// NewProgress returns a Progress with Percent computed from done and total and clamped to 0..100.
func NewProgress(done, total int, message string) Progress {
	p := Progress{Done: done, Total: total, Message: message}
	if total > 0 {
		p.Percent = min(max(done*100/total, 0), 100)
	}
	return p
}

// JobError says why a job failed. Code is stable and machine-readable; Message is for people.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// JobState is the latest state of one job, as stored in the JOB_STATE bucket and sent to clients.
// Revision is the KV revision of this value; it increases across the whole bucket and is the SSE event id.
type JobState struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Name       string          `json:"name,omitempty"`
	State      State           `json:"state"`
	Progress   Progress        `json:"progress"`
	Result     json.RawMessage `json:"result"`
	Error      *JobError       `json:"error"`
	Attempt    int             `json:"attempt"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
	StartedAt  *time.Time      `json:"startedAt,omitempty"`
	FinishedAt *time.Time      `json:"finishedAt,omitempty"`
	RunAt      *time.Time      `json:"runAt,omitempty"`
	// Priority is the job's priority level; absent: normal.
	Priority Priority `json:"priority,omitempty"`
	Revision uint64   `json:"revision"`
	// EventSeq is the JOB_EVENTS stream sequence of the last event folded into this state. The projector
	// uses it to skip redelivered events.
	EventSeq uint64 `json:"eventSeq"`
}

// Priority orders the waiting jobs of a type: its workers take high ones first, then normal, then
// low. So that no level starves, of every ten fetches a worker makes, one takes normal jobs first
// and one takes low jobs first (docs/protocol.md, "Priorities").
type Priority string

// The priority levels. The empty Priority is normal.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// Valid reports whether p is a level (or empty: normal).
func (p Priority) Valid() bool {
	return p == "" || p == PriorityHigh || p == PriorityNormal || p == PriorityLow
}

// MaxJobTimeout bounds a job's own timeout (SubmitRequest.Timeout).
const MaxJobTimeout = 24 * time.Hour

// SubmitRequest is the body of POST /v1/jobs.
type SubmitRequest struct {
	Type  string          `json:"type"`
	Input json.RawMessage `json:"input"`
	// RunAt, when set and in the future, delays the job's start until then.
	RunAt *time.Time `json:"runAt,omitempty"`
	// Timeout, when set, bounds each attempt of this job instead of its type's timeout: a Go duration
	// such as "90s", from 1s to MaxJobTimeout.
	Timeout string `json:"timeout,omitempty"`
	// MaxAttempts, when set, is this job's attempt limit: 1 to its type's.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Priority, when set, is the job's level: "high", "normal" (the default) or "low".
	Priority Priority `json:"priority,omitempty"`
	// UniqueKey, when set, makes the job unique among the caller's jobs of its type: while a job
	// submitted with the same key is queued, scheduled or running (and for at most UniqueFor after it was
	// submitted), a submit answers 200 with that job instead of making another. Up to MaxUniqueKey bytes.
	UniqueKey string `json:"uniqueKey,omitempty"`
	// UniqueFor bounds how long a UniqueKey holds: a Go duration from 1s to MaxUniqueFor, default
	// DefaultUniqueFor.
	UniqueFor string `json:"uniqueFor,omitempty"`
}

// Unique jobs: how long a SubmitRequest.UniqueKey holds by default and at most, and its longest form.
const (
	DefaultUniqueFor = time.Hour
	MaxUniqueFor     = 24 * time.Hour
	MaxUniqueKey     = 255
)

// MaxBatchJobs is the most jobs one POST /v1/jobs/batch may carry.
const MaxBatchJobs = 1000

// SubmitBatchRequest is the body of POST /v1/jobs/batch: up to MaxBatchJobs submissions, each as
// POST /v1/jobs would take it, answered one by one and in order.
type SubmitBatchRequest struct {
	Jobs []BatchItem `json:"jobs"`
}

// BatchItem is one submission of a batch. IdempotencyKey plays the Idempotency-Key header's part for
// this item alone.
type BatchItem struct {
	SubmitRequest
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// SubmitBatchResponse answers a batch: one result per item, in the order of the request.
type SubmitBatchResponse struct {
	Jobs []BatchResult `json:"jobs"`
}

// BatchResult is what became of one item: Status 202 (queued) or 200 (its idempotency key matched an
// earlier job) with the job's state, or the status and error POST /v1/jobs would have answered.
type BatchResult struct {
	Status int       `json:"status"`
	Job    *JobState `json:"job,omitempty"`
	Error  *Error    `json:"error,omitempty"`
}

// JobList is a page of jobs, newest first. NextCursor is empty on the last page.
type JobList struct {
	Jobs       []JobState `json:"jobs"`
	NextCursor string     `json:"nextCursor,omitempty"`
}

// History is a page of a job's events, oldest first, as stored in JOB_EVENTS. NextCursor, when set,
// is the ?cursor= of the next page.
type History struct {
	Events     []json.RawMessage `json:"events"`
	NextCursor string            `json:"nextCursor,omitempty"`
}

// PlaylistImport is the input of a playlist.import job.
type PlaylistImport struct {
	Name    string `json:"name"`
	Format  string `json:"format"`
	Content string `json:"content"`
}

// The playlist formats the importer reads.
const (
	FormatM3U  = "m3u"
	FormatXSPF = "xspf"
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// JobTypePlaylistImport is the job type that imports a playlist into the caller's library.
const JobTypePlaylistImport = "playlist.import"

// ImportResult is the result of a completed (or cancelled) playlist.import job.
type ImportResult struct {
	// Added counts tracks this job put into the library.
	Added int `json:"added"`
	// Duplicates counts entries that repeat a track earlier in the same playlist.
	Duplicates int `json:"duplicates"`
	// Existing counts tracks that were already in the library from an earlier import.
	Existing int `json:"existing"`
	// Invalid counts lines or entries that could not be read as a track.
	Invalid int `json:"invalid"`
	// InvalidLines lists the first invalid entries (at most 100) with their line number and reason.
	InvalidLines []InvalidLine `json:"invalidLines"`
}

// InvalidLine is one playlist entry the importer skipped, and why.
type InvalidLine struct {
	Line   int    `json:"line"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
}

// Track is one entry of a user's library.
type Track struct {
	Key         string    `json:"key"`
	Artist      string    `json:"artist"`
	Title       string    `json:"title"`
	Album       string    `json:"album,omitempty"`
	DurationSec int       `json:"durationSec,omitempty"`
	JobID       string    `json:"jobId"`
	AddedAt     time.Time `json:"addedAt"`
}

// TrackList is a page of a user's library, ordered by key. NextCursor is empty on the last page.
type TrackList struct {
	Tracks     []Track `json:"tracks"`
	NextCursor string  `json:"nextCursor,omitempty"`
}

// LegacyProgress is the message of the legacy routes GET /library/sync/{jobId} and
// GET /library/sync/{jobId}/progress, byte-compatible with the BullMQ-era frontend: the field order is
// part of the contract, progress is a percent number and state uses BullMQ's names.
type LegacyProgress struct {
	Error    *string         `json:"error"`
	JobID    string          `json:"jobId"`
	Progress int             `json:"progress"`
	Result   json.RawMessage `json:"result"`
	State    string          `json:"state"`
}

// Legacy returns the legacy view of s: queued becomes "waiting", cancelled becomes "failed".
func (s *JobState) Legacy() LegacyProgress {
	lp := LegacyProgress{JobID: s.ID, Progress: s.Progress.Percent, Result: s.Result}
	if len(lp.Result) == 0 {
		lp.Result = json.RawMessage("null")
	}
	switch s.State {
	case StateQueued:
		lp.State = "waiting"
	case StateCancelled:
		lp.State = "failed"
	default:
		lp.State = string(s.State)
	}
	if s.Error != nil {
		msg := s.Error.Message
		lp.Error = &msg
	}
	return lp
}
