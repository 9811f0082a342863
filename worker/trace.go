package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobwire/jobwire/streams"
)

// tracerName names the worker SDK's spans' instrumentation scope.
const tracerName = "github.com/jobwire/jobwire/worker"

// startAttemptSpan starts the span of one attempt, a child of the trace the job's message carries
// (the submit's), on the global TracerProvider (a no-op unless the program installs one). The handler's
// context carries it, so the handler's own spans join the job's trace. Attributes are ids, never the
// input: job id, type, owner token, attempt.
func (a *attempt) startAttemptSpan(msg jetstream.Msg) {
	ctx := streams.ExtractTrace(context.Background(), msg.Headers())
	a.trace, a.span = otel.Tracer(tracerName).Start(ctx, "jobwire.attempt "+a.job.Type,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("jobwire.job.id", a.job.JobID),
			attribute.String("jobwire.job.type", a.job.Type),
			attribute.String("jobwire.owner", a.job.Owner),
			attribute.Int("jobwire.attempt", a.number),
		))
	a.ctx = trace.ContextWithSpan(a.ctx, a.span) // the handler's context: its spans join the trace
	a.em.trace = a.trace
	if a.span.IsRecording() {
		recordQueueWait(ctx, msg, a.job)
	}
}

// recordQueueWait records, for a message's first delivery, its wait in the queue as a span of its own
// beside the attempt's: from when JetStream stored the message (a submit, or the re-queue of a retry)
// to this claim. A redelivery's wait is not a queue wait (the message was held by an earlier attempt),
// so it records none.
func recordQueueWait(parent context.Context, msg jetstream.Msg, job streams.JobMessage) {
	meta, err := msg.Metadata()
	if err != nil || meta.NumDelivered != 1 {
		return
	}
	_, span := otel.Tracer(tracerName).Start(parent, "jobwire.queue_wait "+job.Type,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(meta.Timestamp),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.String("jobwire.job.id", job.JobID),
			attribute.String("jobwire.job.type", job.Type),
			attribute.String("jobwire.owner", job.Owner),
			attribute.Int64("jobwire.message.sequence", int64(meta.Sequence.Stream)),
		))
	span.End()
}

// traceContext is the context of the attempt's writes: its span once it has one.
func (a *attempt) traceContext() context.Context {
	if a.trace != nil {
		return a.trace
	}
	return context.Background()
}

// endAttemptSpan ends the attempt's span with its outcome, the type of its last lifecycle event
// (job.completed, job.failed, job.cancelled; "handed_back" when it wrote none), and its error code.
func (a *attempt) endAttemptSpan() {
	outcome := a.outcome
	if outcome == "" {
		outcome = "handed_back"
	}
	a.span.SetAttributes(attribute.String("jobwire.outcome", outcome))
	if a.code != "" {
		a.span.SetAttributes(attribute.String("jobwire.error.code", a.code))
		a.span.SetStatus(codes.Error, a.code)
	}
	a.span.End()
}

// observeDuration records a completed attempt's run time in jobwire_job_duration_seconds, with the
// attempt's trace id as the observation's exemplar when its span is sampled (served to scrapers that
// ask for OpenMetrics).
func (a *attempt) observeDuration(took time.Duration) {
	h := a.r.w.metrics.duration.WithLabelValues(a.r.def.name)
	sc := a.span.SpanContext()
	if eo, ok := h.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(took.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()})
		return
	}
	h.Observe(took.Seconds())
}
