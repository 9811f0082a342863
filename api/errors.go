package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is a stable, machine-readable error code. Clients switch on it; messages may change.
type Code string

// The catalogue of error codes the HTTP API answers with. Each has one HTTP status (see Status).
const (
	CodeBadRequest          Code = "bad_request"           // 400: malformed JSON, bad query parameter
	CodeUnauthorized        Code = "unauthorized"          // 401: missing, invalid or expired token
	CodeForbidden           Code = "forbidden"             // 403: token valid but not allowed here
	CodeJobNotFound         Code = "job_not_found"         // 404: no such job for this user
	CodeNoDeadLetter        Code = "dead_letter_not_found" // 404: no such dead letter (retried or purged)
	CodeScheduleNotFound    Code = "schedule_not_found"    // 404: no such schedule
	CodeNotFound            Code = "not_found"             // 404: no such route
	CodeMethodNotAllowed    Code = "method_not_allowed"    // 405
	CodeJobFinished         Code = "job_finished"          // 409: the job is already in a terminal state
	CodeNotRetryable        Code = "not_retryable"         // 409: a dead letter that was never a job
	CodeScheduleExists      Code = "schedule_exists"       // 409: a schedule with this id exists
	CodeBodyTooLarge        Code = "body_too_large"        // 413: request body over its limit
	CodeUnsupportedMedia    Code = "unsupported_media"     // 415: body is not application/json
	CodeInvalidInput        Code = "invalid_input"         // 422: well-formed JSON, invalid content
	CodeUnknownJobType      Code = "unknown_job_type"      // 422: no worker registered this job type
	CodeTooManyStreams      Code = "too_many_streams"      // 429: per-user SSE stream limit reached
	CodeRateLimited         Code = "rate_limited"          // 429: too many submits
	CodeInternal            Code = "internal"              // 500
	CodeNotReady            Code = "not_ready"             // 503: NATS unreachable or topology missing
	CodeServerBusy          Code = "server_busy"           // 503: global connection cap reached
	CodeUpstreamUnavailable Code = "upstream_unavailable"  // 503: NATS did not answer in time
)

var statusOf = map[Code]int{
	CodeBadRequest:          http.StatusBadRequest,
	CodeUnauthorized:        http.StatusUnauthorized,
	CodeForbidden:           http.StatusForbidden,
	CodeJobNotFound:         http.StatusNotFound,
	CodeNoDeadLetter:        http.StatusNotFound,
	CodeScheduleNotFound:    http.StatusNotFound,
	CodeNotFound:            http.StatusNotFound,
	CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	CodeJobFinished:         http.StatusConflict,
	CodeNotRetryable:        http.StatusConflict,
	CodeScheduleExists:      http.StatusConflict,
	CodeBodyTooLarge:        http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	CodeInvalidInput:        http.StatusUnprocessableEntity,
	CodeUnknownJobType:      http.StatusUnprocessableEntity,
	CodeTooManyStreams:      http.StatusTooManyRequests,
	CodeRateLimited:         http.StatusTooManyRequests,
	CodeInternal:            http.StatusInternalServerError,
	CodeNotReady:            http.StatusServiceUnavailable,
	CodeServerBusy:          http.StatusServiceUnavailable,
	CodeUpstreamUnavailable: http.StatusServiceUnavailable,
}

// Status returns the HTTP status that goes with c (500 for an unknown code).
func (c Code) Status() int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Codes returns every code of the catalogue.
func Codes() []Code {
	out := make([]Code, 0, len(statusOf))
	for c := range statusOf {
		out = append(out, c)
	}
	return out
}

// Error is an API error: the body {"error":{"code":...,"message":...}} of every non-2xx answer.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Status is the HTTP status it came with (not part of the body).
	Status int `json:"-"`
}

// ErrorBody is the JSON envelope of an Error.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Errorf returns an *Error with code c and a formatted message.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...), Status: c.Status()}
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// IsCode reports whether err is (or wraps) an *Error with code c.
func IsCode(err error, c Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
}
