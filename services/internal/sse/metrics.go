package sse

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the stream metrics of a gateway.
type Metrics struct {
	open      prometheus.Gauge
	opened    prometheus.Counter
	closed    *prometheus.CounterVec
	frames    prometheus.Counter
	coalesced prometheus.Counter
	latency   prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		open:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "jobwire_sse_streams_open", Help: "Open SSE streams."}),
		opened:    prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_sse_streams_opened_total", Help: "SSE streams opened."}),
		closed:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_sse_streams_closed_total", Help: "SSE streams closed, by reason."}, []string{"reason"}),
		frames:    prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_sse_frames_sent_total", Help: "SSE frames written (events, heartbeats, control)."}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_sse_events_coalesced_total", Help: "Events replaced by a newer state before a slow client could take them."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "jobwire_sse_relay_latency_seconds",
			Help:    "From a state stored in NATS to its frame written to the socket.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12)}),
	}
	if reg != nil {
		reg.MustRegister(m.open, m.opened, m.closed, m.frames, m.coalesced, m.latency)
	}
	return m
}
