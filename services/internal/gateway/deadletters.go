package gateway

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/streams"
)

// deadLetterTimeout bounds a retry or purge of up to api.MaxDeadLetterSelection dead letters.
const deadLetterTimeout = time.Minute

var errOperatorsOnly = api.Errorf(api.CodeForbidden, "operators only: this token has no operator role")

// requireOperator lets only operators' full tokens through (auth.Identity.Operator).
func requireOperator(c *fiber.Ctx) error {
	if id := identity(c); !id.Operator || id.Scope == auth.ScopeStream {
		return errOperatorsOnly
	}
	return c.Next()
}

// requireConsoleViewer lets through operators' tokens that may open the console stream: full ones, and
// stream tokens that carry the operator role (POST /v1/stream-tokens gives an operator's the role), but
// not one limited to a job.
func requireConsoleViewer(c *fiber.Ctx) error {
	if id := identity(c); !id.Operator || id.JobID != "" {
		return errOperatorsOnly
	}
	return c.Next()
}

// listDeadLetters serves a page of dead letters (GET /v1/dead-letters): ?type= ?code= ?since= ?until=
// (RFC 3339) ?cursor= ?limit=.
func (g *Gateway) listDeadLetters(c *fiber.Ctx) error {
	limit, cursor, err := pageParams(c, api.DefaultDeadLetterPage, api.MaxDeadLetterPage)
	if err != nil {
		return err
	}
	after, err := seqCursor(cursor)
	if err != nil {
		return err
	}
	f := api.DeadLetterFilter{Type: c.Query("type"), Code: c.Query("code")}
	if f.Since, err = queryTime(c, "since"); err != nil {
		return err
	}
	if f.Until, err = queryTime(c, "until"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	list, next, err := g.store.DeadLetters(ctx, f, after, limit)
	if err != nil {
		g.log.Error("list dead letters", "err", err)
		return errCouldNotRead
	}
	out := api.DeadLetterList{DeadLetters: list}
	if next != 0 {
		out.NextCursor = strconv.FormatUint(next, 10)
	}
	return c.JSON(out)
}

var (
	errCouldNotRead = api.Errorf(api.CodeUpstreamUnavailable, "could not read the dead letters, try again")
	errTryAgain     = api.Errorf(api.CodeUpstreamUnavailable, "NATS did not answer in time, try again")
)

func queryTime(c *fiber.Ctx, name string) (*time.Time, error) {
	s := c.Query(name)
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "%s must be an RFC 3339 time", name)
	}
	return &t, nil
}

// deadLetterAction serves POST /v1/dead-letters/retry and /purge: it acts on each selected dead letter
// in turn, answers what became of each, and records the whole in JOBS_AUDIT.
func (g *Gateway) deadLetterAction(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var sel api.DeadLetterSelection
		if err := decodeJSON(c, &sel); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(c.UserContext(), deadLetterTimeout)
		defer cancel()
		keys, err := g.selectedKeys(ctx, sel)
		if err != nil {
			return err
		}
		results := make([]api.DeadLetterResult, len(keys))
		for i, key := range keys {
			results[i] = g.actOn(ctx, action, key)
		}
		g.audit(ctx, c, action, sel, results)
		g.console.Poke()
		return c.JSON(api.DeadLetterResults{Results: results})
	}
}

// selectedKeys checks a selection and returns the keys it names: exactly one of keys or a filter.
func (g *Gateway) selectedKeys(ctx context.Context, sel api.DeadLetterSelection) ([]string, error) {
	switch {
	case (len(sel.Keys) == 0) == (sel.Filter == nil):
		return nil, api.Errorf(api.CodeInvalidInput, "give either keys or a filter")
	case len(sel.Keys) > api.MaxDeadLetterSelection:
		return nil, api.Errorf(api.CodeInvalidInput, "at most %d keys at once", api.MaxDeadLetterSelection)
	case sel.Filter == nil:
		for _, key := range sel.Keys {
			if _, _, _, ok := streams.ParseDeadLetterKey(key); !ok {
				return nil, api.Errorf(api.CodeInvalidInput, "%.80q is not a dead letter's key (<owner>.<jobId> or _malformed.<seq>)", key)
			}
		}
		return sel.Keys, nil
	}
	keys, err := g.store.SelectDeadLetters(ctx, *sel.Filter, api.MaxDeadLetterSelection)
	if err != nil {
		g.log.Error("select dead letters", "err", err)
		return nil, errCouldNotRead
	}
	return keys, nil
}

// actOn retries or purges one dead letter.
func (g *Gateway) actOn(ctx context.Context, action, key string) api.DeadLetterResult {
	var st api.JobState
	var err error
	if action == streams.AuditRetryDeadLetters {
		st, err = g.store.RetryDeadLetter(ctx, key)
	} else {
		err = g.store.PurgeDeadLetter(ctx, key)
	}
	if err != nil {
		e, known := apiError(err)
		if !known {
			g.log.Error("dead letter "+action, "key", key, "err", err)
			e = errTryAgain
		}
		return api.DeadLetterResult{Key: key, Status: e.Code.Status(), Error: e}
	}
	r := api.DeadLetterResult{Key: key, Status: fiber.StatusOK}
	if action == streams.AuditRetryDeadLetters {
		r.Job = &st
	}
	return r
}

// audit records an operator's action on dead letters in JOBS_AUDIT.
func (g *Gateway) audit(ctx context.Context, c *fiber.Ctx, action string, sel api.DeadLetterSelection, results []api.DeadLetterResult) {
	out := make([]streams.AuditResult, 0, len(results))
	for _, r := range results {
		ar := streams.AuditResult{Key: r.Key, Status: r.Status}
		if r.Error != nil {
			ar.Code = string(r.Error.Code)
		}
		out = append(out, ar)
	}
	g.record(ctx, c, action, sel, out)
}

// record stores an operator's action in JOBS_AUDIT. The action is done whatever happens here: a record
// that cannot be stored is logged in full instead.
func (g *Gateway) record(ctx context.Context, c *fiber.Ctx, action string, sel any, results []streams.AuditResult) {
	selection, _ := json.Marshal(sel)
	rec := streams.AuditRecord{ID: streams.NewJobID(time.Now()), Action: action, Operator: identity(c).Owner, Selection: selection, Results: results}
	if err := g.store.AuditAction(ctx, rec); err != nil {
		g.log.Error("audit record not stored", "err", err, "action", action, "operator", rec.Operator, "selection", string(selection), "results", len(results))
	}
}
