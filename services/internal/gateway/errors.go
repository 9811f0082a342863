package gateway

import (
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/jobstore"
	"github.com/jobwire/jobwire/services/internal/registry"
	"github.com/jobwire/jobwire/streams"
)

var (
	errNotFoundRoute = api.Errorf(api.CodeNotFound, "no such route")
	errJobNotFound   = api.Errorf(api.CodeJobNotFound, "job not found")
)

// errorHandler turns every error into the JSON error body of the catalogue; unknown errors are 500s
// whose details stay in the log.
func (g *Gateway) errorHandler(c *fiber.Ctx, err error) error {
	apiErr, known := apiError(err)
	if !known {
		g.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	if apiErr.Code == api.CodeUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="jobwire"`)
	}
	setSecurityHeaders(c)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(apiErr.Status).JSON(api.ErrorBody{Error: apiErr})
}

// apiError is the catalogue's error for err, with its status set; known is false for an error the
// catalogue does not know (then a 500 internal error, whose details belong in the log).
func apiError(err error) (apiErr *api.Error, known bool) {
	var fe *fiber.Error
	var inputErr *streams.InputError
	known = true
	switch {
	case errors.As(err, &apiErr):
	case errors.Is(err, jobstore.ErrNotFound):
		apiErr = errJobNotFound
	case errors.Is(err, jobstore.ErrFinished):
		apiErr = api.Errorf(api.CodeJobFinished, "the job has already finished")
	case errors.Is(err, jobstore.ErrNotDeadLettered):
		apiErr = api.Errorf(api.CodeJobFinished, "only a failed job whose message is in the dead-letter stream can be retried")
	case errors.Is(err, jobstore.ErrNoDeadLetter):
		apiErr = api.Errorf(api.CodeNoDeadLetter, "no such dead letter (it was retried or purged, or never existed)")
	case errors.Is(err, jobstore.ErrMalformedRetry):
		apiErr = api.Errorf(api.CodeNotRetryable, "a malformed message was never a job: it can only be purged")
	case errors.Is(err, jobstore.ErrIdempotencyKey):
		apiErr = api.Errorf(api.CodeInvalidInput, "Idempotency-Key was already used with a different request")
	case errors.Is(err, registry.ErrUnknownType):
		apiErr = api.Errorf(api.CodeUnknownJobType, "unknown job type: no worker has registered it (GET /v1/job-types lists the types)")
	case errors.As(err, &inputErr):
		apiErr = api.Errorf(api.CodeInvalidInput, "%s", inputErr.Error())
	case errors.As(err, &fe):
		apiErr = fromFiber(fe)
	default:
		apiErr, known = api.Errorf(api.CodeInternal, "internal error"), false
	}
	if apiErr.Status == 0 {
		apiErr.Status = apiErr.Code.Status()
	}
	return apiErr, known
}

func fromFiber(fe *fiber.Error) *api.Error {
	switch fe.Code {
	case fiber.StatusRequestEntityTooLarge:
		return api.Errorf(api.CodeBodyTooLarge, "request body too large")
	case fiber.StatusNotFound:
		return errNotFoundRoute
	case fiber.StatusMethodNotAllowed:
		return api.Errorf(api.CodeMethodNotAllowed, "method not allowed")
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return &api.Error{Code: api.CodeBadRequest, Message: "request headers too large", Status: fe.Code}
	case fiber.StatusRequestTimeout:
		return &api.Error{Code: api.CodeBadRequest, Message: "request timeout", Status: fe.Code}
	}
	if fe.Code >= 500 {
		return &api.Error{Code: api.CodeInternal, Message: "internal error", Status: fe.Code}
	}
	// Never fe.Message: for a head fasthttp could not parse it quotes the raw request, credentials
	// included.
	return &api.Error{Code: api.CodeBadRequest, Message: "malformed request: " + strings.ToLower(utils.StatusMessage(fe.Code)), Status: fe.Code}
}

// retryAfter sets Retry-After in seconds on c.
func retryAfter(c *fiber.Ctx, seconds int) { c.Set(fiber.HeaderRetryAfter, strconv.Itoa(seconds)) }
