package worker

import (
	"time"

	"github.com/jobwire/jobwire/streams"
)

// waitForTicket holds a delivery until the type's rate limit, if it has one, lets one more job start
// (streams.TakeTicket: the limit holds over every worker of the type). Its lease is renewed meanwhile.
// ok is false, with the delivery handed back, when the worker stops fetching first; waited is true
// when the start was held back.
func (a *attempt) waitForTicket() (ok, waited bool) {
	r := a.r
	if e, _ := r.ctl.current(); e.RateLimit == nil {
		return true, false // no limit: no timer, no request
	}
	renew := time.NewTicker(r.opts.AckWait / 3)
	defer renew.Stop()
	for {
		e, changed := r.ctl.current()
		if e.RateLimit == nil {
			return true, waited
		}
		wait, err := streams.TakeTicket(r.loopCtx, r.w.js, r.def.name)
		if err == nil && wait == 0 {
			return true, waited
		}
		waited = true
		if err != nil && r.loopCtx.Err() == nil {
			a.log.Warn("take a start ticket, retrying", "err", err)
			wait = time.Second
		}
		r.w.metrics.rateLimited.WithLabelValues(r.def.name).Inc()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-changed: // the limit changed, or was removed
		case <-renew.C:
			_ = a.msg.InProgress()
		case <-r.loopCtx.Done():
			t.Stop()
			_ = a.msg.NakWithDelay(time.Second)
			return false, waited
		}
		t.Stop()
	}
}
