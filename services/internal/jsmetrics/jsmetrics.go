// Package jsmetrics exports JetStream's own view of jobwire as Prometheus metrics: messages waiting in
// each stream, and for each durable consumer how far behind it is. The numbers are read from JetStream
// at scrape time (one stream or consumer info request each), never on a timer of ours.
package jsmetrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/streams"
)

// Collector is a prometheus.Collector over jobwire's streams and durable consumers.
type Collector struct {
	js      jetstream.JetStream
	log     *slog.Logger
	msgs    *prometheus.Desc
	bytes   *prometheus.Desc
	pending *prometheus.Desc
	acks    *prometheus.Desc
	redeliv *prometheus.Desc
}

// New returns a Collector; register it with a registry.
func New(js jetstream.JetStream, log *slog.Logger) *Collector {
	return &Collector{js: js, log: log,
		msgs:    prometheus.NewDesc("jobwire_stream_messages", "Messages in a jobwire stream (for JOBS: the queue depth).", []string{"stream"}, nil),
		bytes:   prometheus.NewDesc("jobwire_stream_bytes", "Bytes in a jobwire stream.", []string{"stream"}, nil),
		pending: prometheus.NewDesc("jobwire_consumer_pending", "Messages a durable consumer has not been delivered yet (its lag).", []string{"stream", "consumer"}, nil),
		acks:    prometheus.NewDesc("jobwire_consumer_ack_pending", "Messages delivered to a consumer and not acknowledged yet (jobs running, events in flight).", []string{"stream", "consumer"}, nil),
		redeliv: prometheus.NewDesc("jobwire_consumer_redelivered", "Messages redelivered to a consumer and not acknowledged yet.", []string{"stream", "consumer"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.msgs, c.bytes, c.pending, c.acks, c.redeliv} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, name := range []string{streams.StreamJobs, streams.StreamEvents, streams.StreamDeadLetters} {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			c.log.Debug("stream metrics", "stream", name, "err", err)
			continue
		}
		info := s.CachedInfo()
		ch <- prometheus.MustNewConstMetric(c.msgs, prometheus.GaugeValue, float64(info.State.Msgs), name)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(info.State.Bytes), name)
		if name == streams.StreamDeadLetters {
			continue
		}
		for ci := range s.ListConsumers(ctx).Info() {
			if ci.Config.Durable == "" {
				continue // ordered watchers and replays come and go
			}
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(ci.NumPending), name, ci.Name)
			ch <- prometheus.MustNewConstMetric(c.acks, prometheus.GaugeValue, float64(ci.NumAckPending), name, ci.Name)
			ch <- prometheus.MustNewConstMetric(c.redeliv, prometheus.GaugeValue, float64(ci.NumRedelivered), name, ci.Name)
		}
	}
}
