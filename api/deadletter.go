package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Dead-letter routes: list, retry and purge what JOBS_DLQ holds. They need an operator's token.
const (
	// MaxDeadLetterPage bounds a page of GET /v1/dead-letters (DefaultDeadLetterPage without a limit).
	MaxDeadLetterPage     = 1000
	DefaultDeadLetterPage = 100
	// MaxDeadLetterSelection bounds how many dead letters one retry or purge acts on.
	MaxDeadLetterSelection = 1000
)

// DeadLetter is one entry of the dead-letter stream: a job that failed for good, or a queued message
// that was not a job message (Malformed).
type DeadLetter struct {
	// Key names it in a retry or purge: <owner>.<jobId>, or _malformed.<queue sequence>.
	Key string `json:"key"`
	// Seq is its sequence in JOBS_DLQ; pages go in its order.
	Seq   uint64 `json:"seq"`
	JobID string `json:"jobId,omitempty"`
	// Owner is the owner token of the job's user (never the raw user id).
	Owner    string    `json:"owner,omitempty"`
	Type     string    `json:"type,omitempty"`
	Error    JobError  `json:"error"`
	Attempts int       `json:"attempts,omitempty"`
	DeadAt   time.Time `json:"deadAt"`
	// Malformed: a message that was never a job; QueueSubject is where it was queued.
	Malformed    bool   `json:"malformed,omitempty"`
	QueueSubject string `json:"queueSubject,omitempty"`
}

// DeadLetterList is a page of dead letters, oldest first. NextCursor is empty on the last page.
type DeadLetterList struct {
	DeadLetters []DeadLetter `json:"deadLetters"`
	NextCursor  string       `json:"nextCursor,omitempty"`
}

// DeadLetterFilter selects dead letters: by job type, by error code, and by when they died
// (Since inclusive, Until exclusive). Empty fields select everything.
type DeadLetterFilter struct {
	Type  string     `json:"type,omitempty"`
	Code  string     `json:"code,omitempty"`
	Since *time.Time `json:"since,omitempty"`
	Until *time.Time `json:"until,omitempty"`
}

// DeadLetterSelection is the body of a retry or purge: the keys of at most MaxDeadLetterSelection
// dead letters, or a filter (then the first MaxDeadLetterSelection that match, oldest first).
type DeadLetterSelection struct {
	Keys   []string          `json:"keys,omitempty"`
	Filter *DeadLetterFilter `json:"filter,omitempty"`
}

// DeadLetterResult is what a retry or purge did to one dead letter: 200 (with the re-queued job for a
// retry), 404 (no such dead letter), 409 (a retry of what is not a failed, dead-lettered job, such as
// a malformed message), 503 (try again).
type DeadLetterResult struct {
	Key    string    `json:"key"`
	Status int       `json:"status"`
	Job    *JobState `json:"job,omitempty"`
	Error  *Error    `json:"error,omitempty"`
}

// DeadLetterResults answers a retry or purge, one result per dead letter selected, in order.
type DeadLetterResults struct {
	Results []DeadLetterResult `json:"results"`
}

// DeadLetters lists a page of dead letters matching f, oldest first, from cursor (empty: the start).
// It needs an operator's token.
func (c *Client) DeadLetters(ctx context.Context, f DeadLetterFilter, cursor string, limit int) (DeadLetterList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"type": f.Type, "code": f.Code, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Since != nil {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.Until != nil {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var list DeadLetterList
	_, err := c.do(ctx, http.MethodGet, "/v1/dead-letters?"+q.Encode(), nil, nil, &list)
	return list, err
}

// RetryDeadLetters re-queues the selected dead letters' jobs (each as POST /v1/jobs/{id}/retry would).
func (c *Client) RetryDeadLetters(ctx context.Context, sel DeadLetterSelection) ([]DeadLetterResult, error) {
	var res DeadLetterResults
	_, err := c.do(ctx, http.MethodPost, "/v1/dead-letters/retry", nil, sel, &res)
	return res.Results, err
}

// PurgeDeadLetters removes the selected dead letters: their jobs stay failed and can no longer be retried.
func (c *Client) PurgeDeadLetters(ctx context.Context, sel DeadLetterSelection) ([]DeadLetterResult, error) {
	var res DeadLetterResults
	_, err := c.do(ctx, http.MethodPost, "/v1/dead-letters/purge", nil, sel, &res)
	return res.Results, err
}
