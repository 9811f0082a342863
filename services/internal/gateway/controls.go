package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/registry"
	"github.com/jobwire/jobwire/streams"
)

var errUnknownTypePath = api.Errorf(api.CodeNotFound, "unknown job type: no worker has registered it (GET /v1/job-types lists the types)")

// controlledType returns the registered type named by the route's :type.
func (g *Gateway) controlledType(c *fiber.Ctx) (api.JobType, error) {
	name := c.Params("type")
	if !streams.ValidJobType(name) {
		return api.JobType{}, api.Errorf(api.CodeBadRequest, "%.80q is not a job type", name)
	}
	jt, ok := g.types.Get(name)
	if !ok {
		return api.JobType{}, errUnknownTypePath
	}
	return jt, nil
}

// setPaused serves POST /v1/job-types/{type}/pause and /resume: it writes the type's control entry,
// which every worker of the type watches (they stop or start fetching at once; running jobs finish),
// records the action in JOBS_AUDIT and answers the type as it is now.
func (g *Gateway) setPaused(paused bool) fiber.Handler {
	action := streams.AuditResumeJobType
	if paused {
		action = streams.AuditPauseJobType
	}
	return func(c *fiber.Ctx) error {
		jt, err := g.controlledType(c)
		if err != nil {
			return err
		}
		operator := identity(c).Owner
		ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
		defer cancel()
		return g.control(ctx, c, jt, action, nil, func(e *streams.ControlEntry) {
			if e.Paused == paused {
				return
			}
			e.Paused, e.PausedAt, e.PausedBy = paused, nil, ""
			if paused {
				now := time.Now().UTC()
				e.PausedAt, e.PausedBy = &now, operator
			}
		})
	}
}

// control applies change to jt's control entry, records the action in JOBS_AUDIT with what the
// operator asked (asked) and answers the type as it is now.
func (g *Gateway) control(ctx context.Context, c *fiber.Ctx, jt api.JobType, action string, asked any, change func(*streams.ControlEntry)) error {
	ce, err := streams.UpdateControl(ctx, g.typesKV, jt.Name, identity(c).Owner, change)
	if err != nil {
		g.log.Error(action, "type", jt.Name, "err", err)
		return errTryAgain
	}
	g.record(ctx, c, action, map[string]any{"type": jt.Name, "asked": asked}, []streams.AuditResult{{Key: jt.Name, Status: fiber.StatusOK}})
	registry.ApplyControl(&jt, ce)
	return c.JSON(jt)
}

// setRateLimit serves PUT /v1/job-types/{type}/rate-limit: it creates or updates the type's ticket
// stream (streams.RateStreamConfig), then writes the limit into the type's control entry, which tells
// its workers to take a ticket before every start.
func (g *Gateway) setRateLimit(c *fiber.Ctx) error {
	jt, err := g.controlledType(c)
	if err != nil {
		return err
	}
	var limit api.RateLimit
	if err := decodeJSON(c, &limit); err != nil {
		return err
	}
	if err := limit.Validate(); err != nil {
		return api.Errorf(api.CodeInvalidInput, "%s", err.Error())
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	jobs, err := g.deps.JS.Stream(ctx, streams.StreamJobs)
	if err == nil {
		_, err = g.deps.JS.CreateOrUpdateStream(ctx, streams.RateStreamConfig(jt.Name, limit, jobs.CachedInfo().Config.Replicas))
	}
	if err != nil {
		g.log.Error("set rate limit: ticket stream", "type", jt.Name, "err", err)
		return errTryAgain
	}
	return g.control(ctx, c, jt, streams.AuditSetRateLimit, limit, func(e *streams.ControlEntry) { e.RateLimit = &limit })
}

// removeRateLimit serves DELETE /v1/job-types/{type}/rate-limit: the control entry first (workers stop
// taking tickets), then the ticket stream.
func (g *Gateway) removeRateLimit(c *fiber.Ctx) error {
	jt, err := g.controlledType(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	if err := g.control(ctx, c, jt, streams.AuditSetRateLimit, nil, func(e *streams.ControlEntry) { e.RateLimit = nil }); err != nil {
		return err
	}
	if err := g.deps.JS.DeleteStream(ctx, streams.RateStream(jt.Name)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		g.log.Warn("remove rate limit: ticket stream left (unused)", "type", jt.Name, "err", err)
	}
	return nil
}
