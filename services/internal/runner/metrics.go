package runner

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the worker's Prometheus metrics, shared by the runners of one process.
type Metrics struct {
	started        *prometheus.CounterVec
	finished       *prometheus.CounterVec
	retried        *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	running        prometheus.Gauge
	progressEvents prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		started:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_jobs_started_total", Help: "Job attempts started."}, []string{"type"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_jobs_finished_total", Help: "Jobs finished, by final state."}, []string{"type", "state"}),
		retried:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_jobs_retried_total", Help: "Job attempts that failed and will be retried."}, []string{"type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "jobwire_job_duration_seconds", Help: "Run time of completed jobs.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"type"}),
		running:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "jobwire_jobs_running", Help: "Jobs running in this process."}),
		progressEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_progress_events_total", Help: "Progress events published (after coalescing)."}),
	}
	if reg != nil {
		reg.MustRegister(m.started, m.finished, m.retried, m.duration, m.running, m.progressEvents)
	}
	return m
}
