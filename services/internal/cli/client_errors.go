package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/jobwire/jobwire/api"
)

// The exit codes of the user commands (see clientHelp).
const (
	exitOK          = 0
	exitOther       = 1
	exitUnreachable = 2
	exitAuth        = 3
	exitNotFound    = 4
	exitJobFailed   = 5
)

// tokenHint is the advice given with every 401 and 403.
const tokenHint = "token missing, invalid or expired: run `jobwire token --user you` or set JOBWIRE_TOKEN"

// fail turns an error of the API client into an *ExitError with a helpful message and its documented
// exit code. action says what was attempted ("cancel job 01J…"); it prefixes messages that would be
// unclear without it.
func (s *session) fail(err error, action string) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	var apiErr *api.Error
	switch {
	case errors.As(err, &apiErr):
		return apiExit(apiErr, action)
	case unreachable(err):
		return s.unreachableErr(err)
	}
	return &ExitError{Code: exitOther, Err: fmt.Errorf("%s: %w", action, err)}
}

// apiExit maps an error answer of the gateway to its exit code.
func apiExit(e *api.Error, action string) *ExitError {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return &ExitError{Code: exitAuth, Err: fmt.Errorf("%s (gateway said: %w)", tokenHint, e)}
	case e.Status == http.StatusNotFound && e.Code == api.CodeJobNotFound:
		return &ExitError{Code: exitNotFound, Err: fmt.Errorf("%s: no such job for this user (it may have expired): %w", action, e)}
	case e.Status == http.StatusNotFound:
		return &ExitError{Code: exitNotFound, Err: fmt.Errorf("%s: %w", action, e)}
	}
	return &ExitError{Code: exitOther, Err: fmt.Errorf("%s: %s (HTTP %d %s)", action, e.Message, e.Status, e.Code)}
}

// unreachable reports whether err means no answer came from the gateway: refused, unknown host,
// reset, timed out. A cancelled context (Ctrl-C) is not unreachable.
func unreachable(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) && !errors.Is(err, context.Canceled)
}

// unreachableErr is the exit error for a gateway that does not answer.
func (s *session) unreachableErr(err error) *ExitError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &ExitError{Code: exitUnreachable, Err: fmt.Errorf("cannot reach the jobwire gateway at %s: is `jobwire dev` running? (%w)", s.url, err)}
}
