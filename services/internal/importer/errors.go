package importer

import (
	"errors"
	"fmt"
)

// Errors that mean the job's input can never succeed: the runner fails the job at once instead of
// retrying. Each is returned wrapped, with a message that names the format and, where there is one,
// the line.
var (
	// ErrTooLarge means the content breaks a limit (MaxBytes, MaxLines, MaxLineLen or MaxTracks).
	// Callers map it to 413 (a request body) or 422 (a job's input).
	ErrTooLarge = errors.New("playlist too large")
	// ErrMalformed means the playlist as a whole cannot be read: a syntax error, a CSV without a usable
	// header, binary content, or (from Parse) an unknown format.
	ErrMalformed = errors.New("malformed")
	// ErrInvalidInput means the request itself is unusable: no content, no or unknown format given to
	// Run, a bad owner, job id, cursor or page size.
	ErrInvalidInput = errors.New("invalid input")
)

// IsPermanent reports whether err wraps ErrTooLarge, ErrMalformed or ErrInvalidInput, i.e. whether
// running the same job again would fail the same way.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrTooLarge) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrInvalidInput)
}

// malformed returns an error wrapping ErrMalformed: "malformed <format>: line <n>: <msg>".
func malformed(format string, line int, msg string, args ...any) error {
	return fmt.Errorf("%w %s: line %d: %s", ErrMalformed, format, line, fmt.Sprintf(msg, args...))
}

// tooLarge returns an error wrapping ErrTooLarge: "playlist too large: <format>: <msg>".
func tooLarge(format string, msg string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrTooLarge, format, fmt.Sprintf(msg, args...))
}
