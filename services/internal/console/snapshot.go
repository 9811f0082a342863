package console

import (
	"slices"
	"strings"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/relay"
)

// snapshot assembles the numbers as of now, without its time (set when it is sent).
func (c *Console) snapshot(now time.Time) api.ConsoleSnapshot {
	self := c.self
	self.OpenStreams, self.ConsoleStreams = c.src.OpenStreams(), c.Viewers()
	dead, total := c.dead.counts()
	return api.ConsoleSnapshot{
		Gateways:    append([]api.ConsoleGateway{self}, c.peers.list(now)...),
		Types:       jobTypes(c.src.Types(), c.src.Counts(now), dead),
		DeadLetters: total,
	}
}

// jobTypes joins the registry's types with the hub's counts and the dead letters: every registered
// type, and every other type that has jobs or dead letters, sorted by name.
func jobTypes(registered []api.JobType, counts map[string]relay.TypeCounts, dead map[string]int) []api.ConsoleJobType {
	byName := map[string]*api.ConsoleJobType{}
	row := func(name string) *api.ConsoleJobType {
		r := byName[name]
		if r == nil {
			r = &api.ConsoleJobType{Type: name}
			byName[name] = r
		}
		return r
	}
	for _, jt := range registered {
		r := row(jt.Name)
		r.WorkersOnline, r.Paused, r.RateLimit = len(jt.Workers), jt.Paused, jt.RateLimit
	}
	for name, n := range counts {
		if n == (relay.TypeCounts{}) {
			continue // no job of this type is left in JOB_STATE, and none ran lately
		}
		r := row(name)
		r.Queued, r.Scheduled, r.Active = n.Queued, n.Scheduled, n.Active
		r.Completed, r.Failed, r.Cancelled = n.Completed, n.Failed, n.Cancelled
		r.StartedPerSec, r.FinishedPerSec = n.StartedPerSec, n.FinishedPerSec
	}
	for name, n := range dead {
		row(name).DeadLettered = n
	}
	out := make([]api.ConsoleJobType, 0, len(byName))
	for _, r := range byName {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b api.ConsoleJobType) int { return strings.Compare(a.Type, b.Type) })
	return out
}
