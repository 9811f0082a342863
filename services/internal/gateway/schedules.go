package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/jobstore"
	"github.com/jobwire/jobwire/services/internal/ticker"
	"github.com/jobwire/jobwire/streams"
)

var errNoSchedule = api.Errorf(api.CodeScheduleNotFound, "schedule not found")

// createSchedule stores a periodic job (POST /v1/schedules, operators only): its type, input and
// options are checked as a submit's would be, its pattern by jobwire and then by the server.
func (g *Gateway) createSchedule(c *fiber.Ctx) error {
	var req api.ScheduleRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	now := time.Now().UTC()
	if req.ID == "" {
		req.ID = streams.NewJobID(now)
	}
	if !streams.ValidScheduleID(req.ID) {
		return api.Errorf(api.CodeInvalidInput, "id must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit")
	}
	owner := identity(c).Owner
	sub, err := g.submission(owner, api.SubmitRequest{Type: req.Type, Input: req.Input, Timeout: req.Timeout, MaxAttempts: req.MaxAttempts, Priority: req.Priority}, "")
	if err != nil {
		return err
	}
	sched := streams.Schedule{ID: strings.Clone(req.ID), Type: sub.Type, Input: sub.Input, Cron: strings.TrimSpace(req.Cron),
		Every: req.Every, Timezone: req.Timezone, Timeout: sub.Timeout, MaxAttempts: sub.MaxAttempts, Priority: sub.Priority, Owner: owner, CreatedAt: now}
	if err := sched.Validate(); err != nil {
		return scheduleInputError(err)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	err = g.store.CreateSchedule(ctx, sched)
	switch {
	case errors.Is(err, jobstore.ErrScheduleExists):
		return api.Errorf(api.CodeScheduleExists, "a schedule with id %q exists: delete it first", sched.ID)
	case errors.Is(err, jobstore.ErrTooManySchedules):
		return api.Errorf(api.CodeInvalidInput, "%s", err.Error())
	case errors.Is(err, streams.ErrInvalidSchedule):
		return scheduleInputError(err)
	case err != nil:
		g.log.Error("create schedule", "id", sched.ID, "err", err)
		return errTryAgain
	}
	g.auditSchedule(ctx, c, streams.AuditCreateSchedule, sched.ID, fiber.StatusCreated, req)
	c.Location("/v1/schedules/" + sched.ID)
	return c.Status(fiber.StatusCreated).JSON(scheduleView(sched))
}

func scheduleInputError(err error) error {
	msg, _ := strings.CutPrefix(err.Error(), streams.ErrInvalidSchedule.Error()+": ")
	return api.Errorf(api.CodeInvalidInput, "%s", msg)
}

func (g *Gateway) listSchedules(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	list, err := g.store.Schedules(ctx)
	if err != nil {
		g.log.Error("list schedules", "err", err)
		return errTryAgain
	}
	out := api.ScheduleList{Schedules: make([]api.Schedule, len(list))}
	for i, s := range list {
		out.Schedules[i] = scheduleView(s)
	}
	return c.JSON(out)
}

func (g *Gateway) getSchedule(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	s, err := g.store.Schedule(ctx, c.Params("id"))
	if err != nil {
		return g.scheduleError(err)
	}
	return c.JSON(scheduleView(s))
}

// deleteSchedule removes a schedule and its ticks not yet taken (DELETE /v1/schedules/{id}).
func (g *Gateway) deleteSchedule(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	s, err := g.store.DeleteSchedule(ctx, c.Params("id"))
	if err != nil {
		return g.scheduleError(err)
	}
	g.auditSchedule(ctx, c, streams.AuditDeleteSchedule, s.ID, fiber.StatusNoContent, struct {
		ID string `json:"id"`
	}{s.ID})
	return c.SendStatus(fiber.StatusNoContent)
}

func (g *Gateway) scheduleError(err error) error {
	if errors.Is(err, jobstore.ErrNoSchedule) {
		return errNoSchedule
	}
	g.log.Error("schedule", "err", err)
	return errTryAgain
}

// auditSchedule records an operator's create or delete in JOBS_AUDIT.
func (g *Gateway) auditSchedule(ctx context.Context, c *fiber.Ctx, action, id string, status int, selection any) {
	g.record(ctx, c, action, selection, []streams.AuditResult{{Key: id, Status: status}})
}

func scheduleView(s streams.Schedule) api.Schedule {
	v := api.Schedule{ID: s.ID, Type: s.Type, Input: s.Input, Cron: s.Cron, Every: s.Every, Timezone: s.Timezone,
		MaxAttempts: s.MaxAttempts, Priority: s.Priority, Owner: s.Owner, CreatedAt: s.CreatedAt}
	if s.Timeout > 0 {
		v.Timeout = s.Timeout.String()
	}
	return v
}

// submitTick makes the job of one tick (the ticker's Submit): checked against the registry as a submit
// is (the type's schema may have changed since the schedule was made), with the tick's derived id and
// an idempotency key of the tick, as the schedule's operator.
func (g *Gateway) submitTick(ctx context.Context, def streams.Schedule, tick time.Time, jobID string) (bool, error) {
	req := api.SubmitRequest{Type: def.Type, Input: def.Input, MaxAttempts: def.MaxAttempts, Priority: def.Priority}
	if def.Timeout > 0 {
		req.Timeout = def.Timeout.String()
	}
	sub, err := g.submission(def.Owner, req, def.TickIdempotencyKey(tick))
	if err != nil {
		if e, known := apiError(err); known && e.Status < 500 {
			return false, fmt.Errorf("%w: schedule %s: %s", ticker.ErrInvalid, def.ID, e.Message)
		}
		return false, err
	}
	sub.JobID = jobID
	sub.Name = tickName(def.ID, sub.Name)
	st, created, err := g.store.Submit(ctx, sub)
	if err != nil {
		return false, err
	}
	if created {
		g.submitted.WithLabelValues(sub.Type).Inc()
	}
	if st.ID != jobID {
		return false, fmt.Errorf("tick of schedule %s made job %s, not %s", def.ID, st.ID, jobID)
	}
	return created, nil
}

// tickName is the name of a tick's job: the schedule, then the input's name if the type has one.
func tickName(id, name string) string {
	if name == "" {
		return "schedule " + id
	}
	return "schedule " + id + ": " + name
}
