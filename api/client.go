package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls a jobwire gateway. The zero value is not usable: set BaseURL and Token.
type Client struct {
	// BaseURL is the gateway, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Token is the bearer token sent with every request.
	Token string
	// HTTP is the client used for requests (default: a client without an overall timeout, so streams
	// can stay open; requests are bounded by their ctx).
	HTTP *http.Client
}

// NewClient returns a client for baseURL with token.
func NewClient(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{}}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// do sends a request and decodes a 2xx JSON answer into out. Non-2xx answers become *Error.
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, decodeError(resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func decodeError(status int, data []byte) error {
	var body ErrorBody
	if json.Unmarshal(data, &body) == nil && body.Error != nil && body.Error.Code != "" {
		body.Error.Status = status
		return body.Error
	}
	return &Error{Code: CodeInternal, Message: fmt.Sprintf("HTTP %d: %.200s", status, data), Status: status}
}

// Submit submits a job. idempotencyKey may be empty. created is false when the key matched an
// existing job.
func (c *Client) Submit(ctx context.Context, req SubmitRequest, idempotencyKey string) (st JobState, created bool, err error) {
	hdr := http.Header{}
	if idempotencyKey != "" {
		hdr.Set("Idempotency-Key", idempotencyKey)
	}
	status, err := c.do(ctx, http.MethodPost, "/v1/jobs", hdr, req, &st)
	return st, status == http.StatusAccepted, err
}

// SubmitBatch submits up to MaxBatchJobs jobs in one request. Each item is answered on its own, in
// order (see BatchResult); err is set only when the batch as a whole was refused or not answered, and
// then no item can be assumed queued: send the batch again with the same idempotency keys.
func (c *Client) SubmitBatch(ctx context.Context, items []BatchItem) ([]BatchResult, error) {
	var resp SubmitBatchResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/jobs/batch", nil, SubmitBatchRequest{Jobs: items}, &resp)
	return resp.Jobs, err
}

// Get returns a job's state.
func (c *Client) Get(ctx context.Context, id string) (JobState, error) {
	var st JobState
	_, err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, nil, &st)
	return st, err
}

// List returns a page of the caller's jobs, newest first; state filters when not empty.
func (c *Client) List(ctx context.Context, state State, cursor string, limit int) (JobList, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", string(state))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out JobList
	_, err := c.do(ctx, http.MethodGet, "/v1/jobs?"+q.Encode(), nil, nil, &out)
	return out, err
}

// Cancel asks for a job to stop.
func (c *Client) Cancel(ctx context.Context, id string) (JobState, error) {
	var st JobState
	_, err := c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, &st)
	return st, err
}

// Retry asks for a failed, dead-lettered job to run again (POST /v1/jobs/{id}/retry); anything else is
// 409 job_finished.
func (c *Client) Retry(ctx context.Context, id string) (JobState, error) {
	var st JobState
	_, err := c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/retry", nil, nil, &st)
	return st, err
}

// History returns a page of a job's events, oldest first, from cursor (empty: the first page), of at
// most limit events (0: the gateway's default).
func (c *Client) History(ctx context.Context, id, cursor string, limit int) (History, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var h History
	_, err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/history?"+q.Encode(), nil, nil, &h)
	return h, err
}

// HistoryAll returns all of a job's events, oldest first, page by page.
func (c *Client) HistoryAll(ctx context.Context, id string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	cursor := ""
	for {
		h, err := c.History(ctx, id, cursor, 0)
		if err != nil {
			return all, err
		}
		all = append(all, h.Events...)
		if cursor = h.NextCursor; cursor == "" {
			return all, nil
		}
	}
}

// JobTypes lists the registered job types, with their input schemas and the workers serving them now.
func (c *Client) JobTypes(ctx context.Context) (JobTypeList, error) {
	var out JobTypeList
	_, err := c.do(ctx, http.MethodGet, "/v1/job-types", nil, nil, &out)
	return out, err
}

// Library returns a page of the caller's tracks.
func (c *Client) Library(ctx context.Context, cursor string, limit int) (TrackList, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out TrackList
	_, err := c.do(ctx, http.MethodGet, "/v1/library?"+q.Encode(), nil, nil, &out)
	return out, err
}

// Event is one server-sent event.
type Event struct {
	ID    string
	Event string // one of StreamEvents; "" on the legacy stream
	Data  []byte
}

// State decodes the event's data as a JobState.
func (e Event) State() (JobState, error) {
	var st JobState
	err := json.Unmarshal(e.Data, &st)
	return st, err
}

// ErrStreamEnded is returned by EventStream.Next when the server ended the stream (job finished,
// stream expired, gateway shutting down).
var ErrStreamEnded = errors.New("stream ended")

// ErrNoContent is returned by OpenStream when the server answers 204: the client already saw the
// job's terminal state, there is nothing more to stream.
var ErrNoContent = errors.New("nothing more to stream (204)")

// EventStream reads events from one SSE response.
type EventStream struct {
	resp *http.Response
	r    *lineReader
}

// OpenStream opens an SSE stream at path (e.g. /v1/events or /v1/jobs/{id}/events), resuming after
// lastEventID when it is not empty.
func (c *Client) OpenStream(ctx context.Context, path, lastEventID string) (*EventStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if lastEventID != "" {
		req.Header.Set(HeaderLastEventID, lastEventID)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNoContent {
		resp.Body.Close()
		return nil, ErrNoContent
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return nil, decodeError(resp.StatusCode, data)
	}
	return &EventStream{resp: resp, r: newLineReader(resp.Body)}, nil
}

// Header returns the stream's response headers.
func (s *EventStream) Header() http.Header { return s.resp.Header }

// Next returns the next event. Comments (heartbeats) and retry fields are skipped. It returns
// ErrStreamEnded when the server closed the stream cleanly.
func (s *EventStream) Next() (Event, error) {
	var ev Event
	var data [][]byte
	seen := false
	for {
		line, err := s.r.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Event{}, ErrStreamEnded
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if seen {
				ev.Data = bytes.Join(data, []byte("\n"))
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			ev.ID, seen = string(value), true
		case "event":
			ev.Event, seen = string(value), true
		case "data":
			data, seen = append(data, append([]byte(nil), value...)), true
		}
	}
}

// Close closes the stream.
func (s *EventStream) Close() error { return s.resp.Body.Close() }

// WatchJob streams one job's state to fn until the job ends (fn sees the terminal state), ctx ends, or
// fn returns an error. A dropped connection is resumed with Last-Event-ID after a short pause, so fn
// never sees a state twice and misses none. onReconnect, when not nil, is told about each reconnect.
func (c *Client) WatchJob(ctx context.Context, id string, fn func(JobState) error, onReconnect func(error)) error {
	last := ""
	var lastRev uint64 // a reset after a reconnect may resend a state fn has seen: skip it
	path := "/v1/jobs/" + url.PathEscape(id) + "/events"
	backoff := 250 * time.Millisecond
	for {
		s, err := c.OpenStream(ctx, path, last)
		if errors.Is(err, ErrNoContent) {
			return nil
		}
		if err != nil {
			var apiErr *Error
			if errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != http.StatusTooManyRequests {
				return err
			}
		} else {
			backoff = 250 * time.Millisecond
			for {
				ev, nerr := s.Next()
				if nerr != nil {
					err = nerr
					break
				}
				if ev.ID != "" {
					last = ev.ID
				}
				if ev.Event != EventState && ev.Event != "" {
					continue
				}
				st, derr := ev.State()
				if derr != nil {
					s.Close()
					return fmt.Errorf("decode state: %w", derr)
				}
				if st.Revision != 0 && st.Revision <= lastRev && !st.State.Terminal() {
					continue
				}
				lastRev = max(lastRev, st.Revision)
				if ferr := fn(st); ferr != nil {
					s.Close()
					return ferr
				}
				if st.State.Terminal() {
					s.Close()
					return nil
				}
			}
			s.Close()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if onReconnect != nil {
			onReconnect(err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// PauseJobType pauses a job type cluster-wide (operators only): its workers stop fetching at once,
// running jobs finish, submits still queue. Pausing a paused type changes nothing.
func (c *Client) PauseJobType(ctx context.Context, jobType string) (JobType, error) {
	return c.controlJobType(ctx, jobType, "pause")
}

// ResumeJobType lets a paused job type's workers fetch again (operators only).
func (c *Client) ResumeJobType(ctx context.Context, jobType string) (JobType, error) {
	return c.controlJobType(ctx, jobType, "resume")
}

func (c *Client) controlJobType(ctx context.Context, jobType, action string) (JobType, error) {
	var out JobType
	_, err := c.do(ctx, http.MethodPost, "/v1/job-types/"+url.PathEscape(jobType)+"/"+action, nil, nil, &out)
	return out, err
}

// SetRateLimit caps a job type's starts over every worker (operators only): at most limit.Limit jobs
// start in any window of limit.Interval.
func (c *Client) SetRateLimit(ctx context.Context, jobType string, limit RateLimit) (JobType, error) {
	var out JobType
	_, err := c.do(ctx, http.MethodPut, "/v1/job-types/"+url.PathEscape(jobType)+"/rate-limit", nil, limit, &out)
	return out, err
}

// RemoveRateLimit lifts a job type's rate limit (operators only).
func (c *Client) RemoveRateLimit(ctx context.Context, jobType string) (JobType, error) {
	var out JobType
	_, err := c.do(ctx, http.MethodDelete, "/v1/job-types/"+url.PathEscape(jobType)+"/rate-limit", nil, nil, &out)
	return out, err
}
