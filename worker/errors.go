package worker

import (
	"errors"
	"fmt"
	"time"
)

// Causes of a handler's cancelled context, as context.Cause reports them.
var (
	// ErrCancelled: a user cancelled the job. Return promptly, with the partial result: the job ends
	// cancelled and keeps it.
	ErrCancelled = errors.New("job cancelled by request")
	// ErrTimeout: the attempt ran past its timeout. The attempt fails with code "timeout" and is
	// retried like any failure.
	ErrTimeout = errors.New("job attempt timed out")
	// ErrStopping: the worker is stopping and its shutdown grace ran out. The job is handed back to
	// the queue and another worker runs it again as its next attempt.
	ErrStopping = errors.New("worker stopping")
)

// Error codes the SDK writes into failed jobs. Handlers choose their own codes with Permanent.
const (
	CodeAttemptFailed     = "attempt_failed"     // a failed attempt that will be retried
	CodeAttemptsExhausted = "attempts_exhausted" // the last attempt failed
	CodeTimeout           = "timeout"            // an attempt ran past its timeout
	CodeInvalidInput      = "invalid_input"      // the input does not match the type's schema or T
	CodeInvalidResult     = "invalid_result"     // R could not be encoded as JSON
	CodeCancelled         = "cancelled"          // the job was cancelled
	CodePermanent         = "permanent_failure"  // Permanent with an empty or unusable code
	// CodeInvalidJobMessage is the error of a queued message that is not a job message (never run,
	// kept in JOBS_DLQ under streams.MalformedDeadLetterSubject).
	CodeInvalidJobMessage = "invalid_job_message"
)

// PermanentError is a failure that no retry can fix: the job fails at once with Code.
type PermanentError struct {
	Code string
	Err  error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as a failure no retry can fix (input that can never work, a resource that is
// gone): the job fails at once, and its error carries code, a stable machine-readable word such as
// "malformed_playlist" (lower-case letters, digits, '_' and '.', at most 64; anything else becomes
// "permanent_failure").
func Permanent(code string, err error) error {
	if err == nil {
		err = errors.New(code)
	}
	return &PermanentError{Code: code, Err: err}
}

// RetryAfterError asks for the next attempt no earlier than After.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.After) }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter marks err as a failure worth retrying no earlier than d from now (an upstream's
// Retry-After), instead of after the type's backoff when that is shorter. The job's attempts still
// count: the last attempt fails for good.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		err = errors.New("retry later")
	}
	return &RetryAfterError{After: d, Err: err}
}

// CancelledError ends the job as cancelled by the handler itself.
type CancelledError struct{ Err error }

func (e *CancelledError) Error() string { return e.Err.Error() }
func (e *CancelledError) Unwrap() error { return e.Err }

// Cancelled ends the job as cancelled, keeping the result returned with it, with reason as its
// error message: for work that became pointless (the thing it was for was deleted). No retry follows.
func Cancelled(reason error) error {
	if reason == nil {
		reason = errors.New("cancelled by its handler")
	}
	return &CancelledError{Err: reason}
}

// validCode reports whether c is a usable error code.
func validCode(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}
