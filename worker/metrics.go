package worker

import "github.com/prometheus/client_golang/prometheus"

// metrics are a Worker's Prometheus collectors (Worker.Collectors).
type metrics struct {
	started        *prometheus.CounterVec
	finished       *prometheus.CounterVec
	retried        *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	running        *prometheus.GaugeVec
	progressEvents prometheus.Counter
	publishErrors  prometheus.Counter
	abandoned      *prometheus.CounterVec
	paused         *prometheus.GaugeVec
	rateLimited    *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		started:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_jobs_started_total", Help: "Job attempts started."}, []string{"type"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_jobs_finished_total", Help: "Jobs finished, by final state."}, []string{"type", "state"}),
		retried:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_jobs_retried_total", Help: "Job attempts that failed and will be retried."}, []string{"type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "jobwire_job_duration_seconds", Help: "Run time of completed jobs.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"type"}),
		running:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jobwire_jobs_running", Help: "Jobs running in this process."}, []string{"type"}),
		progressEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_progress_events_total", Help: "Progress events published (after coalescing)."}),
		publishErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_progress_publish_errors_total", Help: "Progress events that could not be published (the terminal event still carries the final progress)."}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_handlers_abandoned_total",
			Help: "Handlers that did not return within the stop grace after their context ended (cancel, timeout, shutdown): their attempt was settled without them."}, []string{"type"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jobwire_worker_type_paused",
			Help: "1 while an operator has paused the job type and this worker fetches none of its jobs, else 0."}, []string{"type"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobwire_jobs_rate_limited_total",
			Help: "Starts held back by the job type's cluster-wide rate limit (each refused start ticket)."}, []string{"type"}),
	}
}

// serve makes the type's series exist at zero from the start, so a rate or an alert over them sees a
// type that has not yet had a job (or an abandoned handler), not a missing series.
func (m *metrics) serve(jobType string) {
	for _, v := range []*prometheus.CounterVec{m.started, m.retried, m.abandoned, m.rateLimited} {
		v.WithLabelValues(jobType)
	}
	m.running.WithLabelValues(jobType)
	m.paused.WithLabelValues(jobType)
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.started, m.finished, m.retried, m.duration, m.running, m.progressEvents, m.publishErrors, m.abandoned, m.paused, m.rateLimited}
}
