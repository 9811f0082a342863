package gateway

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

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
		ce, err := streams.UpdateControl(ctx, g.typesKV, jt.Name, operator, func(e *streams.ControlEntry) {
			if e.Paused == paused {
				return
			}
			e.Paused, e.PausedAt, e.PausedBy = paused, nil, ""
			if paused {
				now := time.Now().UTC()
				e.PausedAt, e.PausedBy = &now, operator
			}
		})
		if err != nil {
			g.log.Error(action, "type", jt.Name, "err", err)
			return errTryAgain
		}
		g.record(ctx, c, action, map[string]string{"type": jt.Name}, []streams.AuditResult{{Key: jt.Name, Status: fiber.StatusOK}})
		registry.ApplyControl(&jt, ce)
		return c.JSON(jt)
	}
}
