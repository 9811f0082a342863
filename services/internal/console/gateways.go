package console

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Every gateway publishes its own stats (an api.ConsoleGateway) every StatsInterval on core NATS, and
// every gateway keeps the others' latest, so a console on any gateway shows them all: a message per
// gateway per interval, whatever the number of consoles.

// publishStats publishes this gateway's stats every StatsInterval until Stop.
func (c *Console) publishStats() {
	defer c.done.Done()
	tick := time.NewTicker(c.cfg.StatsInterval)
	defer tick.Stop()
	subject := streams.GatewayStatsSubject(c.self.ID)
	for {
		self := c.self
		self.OpenStreams, self.ConsoleStreams = c.src.OpenStreams(), c.Viewers()
		data, _ := json.Marshal(self)
		if err := c.nc.Publish(subject, data); err != nil {
			c.log.Debug("console: publish this gateway's stats", "err", err)
		} else {
			c.published.Add(1)
		}
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

// peers are the other gateways' latest stats.
type peers struct {
	self   string
	maxAge time.Duration

	mu   sync.Mutex
	byID map[string]peer
}

type peer struct {
	stats api.ConsoleGateway
	seen  time.Time
}

func newPeers(self string, maxAge time.Duration) *peers {
	return &peers{self: self, maxAge: maxAge, byID: map[string]peer{}}
}

// subscribe receives every gateway's stats.
func (p *peers) subscribe(nc *nats.Conn, log *slog.Logger) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(streams.GatewayStatsWildcard, func(m *nats.Msg) {
		id, ok := streams.ParseGatewayStatsSubject(m.Subject)
		var g api.ConsoleGateway
		if ok && id != p.self && json.Unmarshal(m.Data, &g) == nil && g.ID == id {
			p.mu.Lock()
			p.byID[id] = peer{stats: g, seen: time.Now()}
			p.mu.Unlock()
		} else if !ok || id != p.self {
			log.Debug("console: ignoring a gateway stats message", "subject", m.Subject)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", streams.GatewayStatsWildcard, err)
	}
	return sub, nil
}

// list returns the gateways heard of within maxAge, by id; the others are forgotten.
func (p *peers) list(now time.Time) []api.ConsoleGateway {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]api.ConsoleGateway, 0, len(p.byID))
	for id, g := range p.byID {
		if now.Sub(g.seen) > p.maxAge {
			delete(p.byID, id)
			continue
		}
		out = append(out, g.stats)
	}
	slices.SortFunc(out, func(a, b api.ConsoleGateway) int { return strings.Compare(a.ID, b.ID) })
	return out
}
