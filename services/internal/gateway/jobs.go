package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/jobstore"
	"github.com/jobwire/jobwire/streams"
)

// requestTimeout bounds the NATS work of one request.
const requestTimeout = 10 * time.Second

func (g *Gateway) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (g *Gateway) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		return api.Errorf(api.CodeNotReady, "not ready: %v", err)
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// decodeJSON strictly decodes the request body into v: JSON content type, no unknown fields, one value.
func decodeJSON(c *fiber.Ctx, v any) error {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(c.Get(fiber.HeaderContentType), ";")[0]))
	if ct != fiber.MIMEApplicationJSON {
		return api.Errorf(api.CodeUnsupportedMedia, "Content-Type must be application/json")
	}
	if jsonTooDeep(c.Body(), MaxJSONDepth) {
		return api.Errorf(api.CodeBadRequest, "malformed JSON: nested deeper than %d levels", MaxJSONDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute) && ute.Field == "":
			return api.Errorf(api.CodeBadRequest, "the body must be a JSON object")
		case errors.As(err, &ute):
			return api.Errorf(api.CodeInvalidInput, "field %q must be %s", ute.Field, ute.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return api.Errorf(api.CodeInvalidInput, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return api.Errorf(api.CodeBadRequest, "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return api.Errorf(api.CodeBadRequest, "malformed JSON: trailing data after the object")
	}
	return nil
}

func (g *Gateway) submit(c *fiber.Ctx) error {
	var req api.SubmitRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	sub, err := g.submission(identity(c).Owner, req, c.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	return g.submitJob(c, sub, func(st api.JobState) any { return st })
}

// submission checks a submit request of owner (its type, input, options and idempotency key) and
// makes it a jobstore.Submission.
func (g *Gateway) submission(owner string, req api.SubmitRequest, idempotencyKey string) (jobstore.Submission, error) {
	if len(idempotencyKey) > maxIdempotencyKey {
		return jobstore.Submission{}, api.Errorf(api.CodeInvalidInput, "Idempotency-Key longer than %d bytes", maxIdempotencyKey)
	}
	checked, err := g.types.Check(req.Type, req.Input)
	if err != nil {
		return jobstore.Submission{}, err
	}
	sub := jobstore.Submission{Owner: owner, Type: req.Type, Name: checked.Name,
		Input: req.Input, RunAt: req.RunAt, MaxAttempts: req.MaxAttempts, IdempotencyKey: strings.Clone(idempotencyKey)}
	if sub.Timeout, err = g.jobOptions(req, checked.Options); err != nil {
		return jobstore.Submission{}, err
	}
	if sub.UniqueKey, sub.UniqueFor, err = uniqueness(req); err != nil {
		return jobstore.Submission{}, err
	}
	if !req.Priority.Valid() {
		return jobstore.Submission{}, api.Errorf(api.CodeInvalidInput, "priority must be \"high\", \"normal\" or \"low\"")
	}
	sub.Priority = streams.NormalPriority(req.Priority)
	return sub, nil
}

// uniqueness checks a submit's uniqueKey and uniqueFor.
func uniqueness(req api.SubmitRequest) (string, time.Duration, error) {
	if req.UniqueKey == "" {
		if req.UniqueFor != "" {
			return "", 0, api.Errorf(api.CodeInvalidInput, "uniqueFor needs a uniqueKey")
		}
		return "", 0, nil
	}
	if len(req.UniqueKey) > api.MaxUniqueKey {
		return "", 0, api.Errorf(api.CodeInvalidInput, "uniqueKey longer than %d bytes", api.MaxUniqueKey)
	}
	window := api.DefaultUniqueFor
	if req.UniqueFor != "" {
		d, err := time.ParseDuration(req.UniqueFor)
		if err != nil || d < time.Second || d > api.MaxUniqueFor {
			return "", 0, api.Errorf(api.CodeInvalidInput, "uniqueFor must be a duration such as \"10m\" from 1s to %s", api.MaxUniqueFor)
		}
		window = d
	}
	return strings.Clone(req.UniqueKey), window, nil
}

// submitBatch queues up to api.MaxBatchJobs jobs in one request (POST /v1/jobs/batch). Each item is
// checked and queued as POST /v1/jobs would, with its own idempotency key, and answered on its own, in
// order; the batch's writes are pipelined. The batch takes one submit token per item.
func (g *Gateway) submitBatch(c *fiber.Ctx) error {
	if c.Get("Idempotency-Key") != "" {
		return api.Errorf(api.CodeInvalidInput, "a batch takes no Idempotency-Key header: give each item its idempotencyKey")
	}
	var req api.SubmitBatchRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Jobs) == 0 || len(req.Jobs) > api.MaxBatchJobs {
		return api.Errorf(api.CodeInvalidInput, "jobs must hold 1 to %d submissions, not %d", api.MaxBatchJobs, len(req.Jobs))
	}
	owner := identity(c).Owner
	if err := g.takeSubmits(c, owner, len(req.Jobs)); err != nil {
		return err
	}
	results := make([]api.BatchResult, len(req.Jobs))
	var subs []jobstore.Submission
	var at []int
	for i, item := range req.Jobs {
		sub, err := g.submission(owner, item.SubmitRequest, item.IdempotencyKey)
		if err != nil {
			results[i] = g.failedItem(err)
			continue
		}
		subs, at = append(subs, sub), append(at, i)
	}
	ctx, span := g.submitBatchSpan(c, owner, len(subs))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	for k, r := range g.store.SubmitMany(ctx, subs) {
		results[at[k]] = g.batchResult(subs[k], r)
	}
	return c.JSON(api.SubmitBatchResponse{Jobs: results})
}

// batchResult is the answer to one queued item of a batch, counted as a single submit is.
func (g *Gateway) batchResult(sub jobstore.Submission, r jobstore.SubmitResult) api.BatchResult {
	switch {
	case r.Err != nil && !errors.Is(r.Err, jobstore.ErrIdempotencyKey):
		g.log.Error("submit job", "err", r.Err)
		return g.failedItem(errCouldNotQueue)
	case r.Err != nil:
		return g.failedItem(r.Err)
	case !r.Created:
		return api.BatchResult{Status: fiber.StatusOK, Job: &r.State}
	}
	g.submitted.WithLabelValues(sub.Type).Inc()
	return api.BatchResult{Status: fiber.StatusAccepted, Job: &r.State}
}

// failedItem is the answer to a batch item that was refused or not queued: the error a single submit
// would have answered with.
func (g *Gateway) failedItem(err error) api.BatchResult {
	e, known := apiError(err)
	if !known {
		g.log.Error("batch item failed", "err", err)
	}
	return api.BatchResult{Status: e.Status, Error: e}
}

// jobOptions checks a submit's own runAt, timeout and maxAttempts, and returns the timeout.
func (g *Gateway) jobOptions(req api.SubmitRequest, typ api.JobTypeOptions) (time.Duration, error) {
	if req.RunAt != nil && req.RunAt.After(time.Now().Add(g.cfg.MaxRunAhead)) {
		return 0, api.Errorf(api.CodeInvalidInput, "runAt is more than %s ahead (what the event log keeps, less the state retention)", g.cfg.MaxRunAhead)
	}
	if req.MaxAttempts < 0 || req.MaxAttempts > max(typ.MaxAttempts, 1) {
		return 0, api.Errorf(api.CodeInvalidInput, "maxAttempts must be 1..%d (the type's attempts)", max(typ.MaxAttempts, 1))
	}
	if req.Timeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(req.Timeout)
	if err != nil || d < time.Second || d > api.MaxJobTimeout {
		return 0, api.Errorf(api.CodeInvalidInput, "timeout must be a duration such as \"90s\" from 1s to %s", api.MaxJobTimeout)
	}
	return d, nil
}

// maxIdempotencyKey bounds the Idempotency-Key header of every submit route.
const maxIdempotencyKey = 255

// errCouldNotQueue answers a submit whose writes did not reach JetStream in time.
var errCouldNotQueue = api.Errorf(api.CodeUpstreamUnavailable, "could not queue the job, try again")

func (g *Gateway) submitJob(c *fiber.Ctx, sub jobstore.Submission, view func(api.JobState) any) error {
	ctx, span := g.submitSpan(c, sub)
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	st, created, err := g.store.Submit(ctx, sub)
	endSubmitSpan(span, st, created, err)
	if err != nil {
		if errors.Is(err, jobstore.ErrIdempotencyKey) {
			return err
		}
		g.log.Error("submit job", "err", err)
		return errCouldNotQueue
	}
	c.Location("/v1/jobs/" + st.ID)
	status := fiber.StatusAccepted
	if created {
		g.submitted.WithLabelValues(sub.Type).Inc()
	} else {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(view(st))
}

// jobID returns the validated :id parameter; anything else is a 404 that never reaches NATS.
func jobID(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if !streams.ValidJobID(id) {
		return "", errJobNotFound
	}
	return strings.Clone(id), nil // Fiber reuses the request buffer: the id outlives the handler
}

// onJob validates the :id parameter and runs op on the caller's job with the request's time budget.
func onJob[T any](c *fiber.Ctx, op func(ctx context.Context, owner, id string) (T, error)) (T, error) {
	id, err := jobID(c)
	if err != nil {
		var zero T
		return zero, err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	return op(ctx, identity(c).Owner, id)
}

func (g *Gateway) getJob(c *fiber.Ctx) error {
	st, err := onJob(c, g.store.Get)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func (g *Gateway) cancelJob(c *fiber.Ctx) error {
	st, err := onJob(c, g.store.Cancel)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(st)
}

// retryJob re-queues a failed job from the dead-letter stream.
func (g *Gateway) retryJob(c *fiber.Ctx) error {
	st, err := onJob(c, g.store.Retry)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(st)
}

// history serves a page of a job's events: ?cursor= (from a previous page's nextCursor) and ?limit=.
func (g *Gateway) history(c *fiber.Ctx) error {
	limit, cursor, err := pageParams(c, jobstore.DefaultHistoryPage, jobstore.MaxHistoryPage)
	if err != nil {
		return err
	}
	from, err := seqCursor(cursor)
	if err != nil {
		return err
	}
	var next uint64
	events, err := onJob(c, func(ctx context.Context, owner, id string) (events []json.RawMessage, err error) {
		events, next, err = g.store.History(ctx, owner, id, from, limit)
		return events, err
	})
	if err != nil {
		return err
	}
	h := api.History{Events: events}
	if next != 0 {
		h.NextCursor = strconv.FormatUint(next, 10)
	}
	return c.JSON(h)
}

// pageParams reads ?limit= (1..max, default def) and ?cursor=.
// seqCursor decodes a cursor that is a stream sequence (0 for none).
func seqCursor(cursor string) (uint64, error) {
	if cursor == "" {
		return 0, nil
	}
	seq, err := strconv.ParseUint(cursor, 10, 64)
	if err != nil || seq == 0 {
		return 0, api.Errorf(api.CodeBadRequest, "invalid cursor")
	}
	return seq, nil
}

func pageParams(c *fiber.Ctx, def, maxLimit int) (int, string, error) {
	limit := def
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return 0, "", api.Errorf(api.CodeBadRequest, "limit must be 1..%d", maxLimit)
		}
		limit = n
	}
	return limit, c.Query("cursor"), nil
}

func (g *Gateway) listJobs(c *fiber.Ctx) error {
	limit, cursor, err := pageParams(c, 50, 500)
	if err != nil {
		return err
	}
	if cursor != "" && !streams.ValidJobID(cursor) {
		return api.Errorf(api.CodeBadRequest, "invalid cursor")
	}
	state := api.State(c.Query("state"))
	switch state {
	case "", api.StateQueued, api.StateActive, api.StateCompleted, api.StateFailed, api.StateCancelled:
	default:
		return api.Errorf(api.CodeBadRequest, "state must be queued, active, completed, failed or cancelled")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	list, err := g.store.List(ctx, identity(c).Owner, cursor, limit, state)
	if err != nil {
		return err
	}
	return c.JSON(list)
}

// jobTypes lists the registered job types, with their schemas and the workers serving them now.
func (g *Gateway) jobTypes(c *fiber.Ctx) error {
	return c.JSON(api.JobTypeList{JobTypes: g.types.List()})
}

func (g *Gateway) library(c *fiber.Ctx) error {
	limit, cursor, err := pageParams(c, 100, 500)
	if err != nil {
		return err
	}
	owner := identity(c).Owner
	if cursor != "" && !validTrackCursor(owner, cursor) {
		return api.Errorf(api.CodeBadRequest, "invalid cursor")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	page, err := g.deps.Library.List(ctx, owner, cursor, limit)
	if err != nil {
		return fmt.Errorf("list library: %w", err)
	}
	return c.JSON(page)
}

type streamTokenRequest struct {
	JobID string `json:"jobId,omitempty"`
}

type streamTokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// streamToken issues a short-lived token that only opens streams, for EventSource URLs.
func (g *Gateway) streamToken(c *fiber.Ctx) error {
	var req streamTokenRequest
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	id := identity(c)
	if req.JobID != "" && !streams.ValidJobID(req.JobID) {
		return errJobNotFound
	}
	if g.deps.Signer == nil {
		return errNoStreamTokens
	}
	ttl := g.cfg.StreamTokenTTL
	if exp := time.Until(id.ExpiresAt); exp < ttl {
		ttl = exp
	}
	if ttl < time.Second {
		return api.Errorf(api.CodeUnauthorized, "invalid or expired token")
	}
	var roles []string
	if id.Operator {
		roles = append(roles, g.deps.Verifier.OperatorRole()) // opens the console stream, and no more
	}
	tok, err := g.deps.Signer.Sign(id.Subject, ttl, auth.ScopeStream, req.JobID, roles...)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(streamTokenResponse{Token: tok, ExpiresAt: time.Now().Add(ttl).UTC()})
}
