package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Periodic jobs: schedules that submit a job of a registered type with a fixed input on a cron
// expression or at an interval, each tick exactly once however many gateways run. They need an
// operator's token; their jobs are that operator's.
const (
	// MaxSchedules bounds how many schedules there may be.
	MaxSchedules = 1000
	// MinScheduleEvery is the shortest interval.
	MinScheduleEvery = time.Second
)

// ScheduleRequest is the body of POST /v1/schedules. Exactly one of Cron and Every is set.
type ScheduleRequest struct {
	// ID names the schedule: 1 to 64 letters, digits, '-' and '_' (default: a new ULID).
	ID    string          `json:"id,omitempty"`
	Type  string          `json:"type"`
	Input json.RawMessage `json:"input"`
	// Cron is a 6-field cron expression, seconds first ("0 30 2 * * *"), or @hourly, @daily, @weekly,
	// @monthly, @yearly; Every an interval, a Go duration of at least MinScheduleEvery ("30s", "1h").
	Cron  string `json:"cron,omitempty"`
	Every string `json:"every,omitempty"`
	// Timezone is the IANA zone of a cron expression (default UTC).
	Timezone string `json:"timezone,omitempty"`
	// Timeout and MaxAttempts are the jobs' own limits, as in SubmitRequest.
	Timeout     string `json:"timeout,omitempty"`
	MaxAttempts int    `json:"maxAttempts,omitempty"`
	// Priority is the jobs' level, as in SubmitRequest.
	Priority Priority `json:"priority,omitempty"`
}

// Schedule is a stored schedule.
type Schedule struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Input       json.RawMessage `json:"input"`
	Cron        string          `json:"cron,omitempty"`
	Every       string          `json:"every,omitempty"`
	Timezone    string          `json:"timezone,omitempty"`
	Timeout     string          `json:"timeout,omitempty"`
	MaxAttempts int             `json:"maxAttempts,omitempty"`
	Priority    Priority        `json:"priority,omitempty"`
	// Owner is the owner token of the operator who made it; the jobs of its ticks are that user's.
	Owner     string    `json:"owner"`
	CreatedAt time.Time `json:"createdAt"`
}

// ScheduleList is every schedule, by id.
type ScheduleList struct {
	Schedules []Schedule `json:"schedules"`
}

// CreateSchedule stores a schedule (201). An id in use is 409 schedule_exists.
func (c *Client) CreateSchedule(ctx context.Context, req ScheduleRequest) (Schedule, error) {
	var s Schedule
	_, err := c.do(ctx, http.MethodPost, "/v1/schedules", nil, req, &s)
	return s, err
}

// Schedules lists every schedule.
func (c *Client) Schedules(ctx context.Context) (ScheduleList, error) {
	var l ScheduleList
	_, err := c.do(ctx, http.MethodGet, "/v1/schedules", nil, nil, &l)
	return l, err
}

// Schedule returns one schedule; an unknown id is 404 schedule_not_found.
func (c *Client) Schedule(ctx context.Context, id string) (Schedule, error) {
	var s Schedule
	_, err := c.do(ctx, http.MethodGet, "/v1/schedules/"+url.PathEscape(id), nil, nil, &s)
	return s, err
}

// DeleteSchedule removes a schedule and its pending ticks (204); jobs already made are not touched.
func (c *Client) DeleteSchedule(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/schedules/"+url.PathEscape(id), nil, nil, nil)
	return err
}
