package projector

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobwire/jobwire/streams"
)

// tracerName names the projector's spans' instrumentation scope.
const tracerName = "github.com/jobwire/jobwire/services/internal/projector"

// traceWrites starts, for each job whose state a batch writes, the span of that write: a child of the
// trace its last event in the batch carries (the worker's attempt, or the gateway's submit). A recorded
// span's context goes into the write's headers, so a gateway that relays the new state continues the
// trace. Only writes that change a job's lifecycle are traced (a batch of progress events alone is
// not: a long job writes hundreds). Without a TracerProvider nothing is recorded and no header is
// added. Spans are nil where nothing is traced.
func traceWrites(jobs []*jobEvents, folds []fold, writes []streams.Pipelined) []trace.Span {
	spans := make([]trace.Span, len(jobs))
	tracer := otel.Tracer(tracerName)
	for i, j := range jobs {
		if writes[i].Err != nil || writes[i].Msg == nil || onlyProgress(j.events) {
			continue
		}
		last := j.msgs[len(j.msgs)-1]
		ctx, span := tracer.Start(streams.ExtractTrace(context.Background(), last.Headers()), "jobwire.project "+folds[i].st.Type,
			trace.WithSpanKind(trace.SpanKindConsumer))
		if span.IsRecording() {
			span.SetAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", streams.StreamEvents),
				attribute.String("messaging.consumer.group.name", streams.ConsumerProjector),
				attribute.String("messaging.operation.type", "process"),
				attribute.Int("messaging.batch.message_count", len(j.msgs)),
				attribute.String("jobwire.job.id", folds[i].st.ID),
				attribute.String("jobwire.job.type", folds[i].st.Type),
				attribute.String("jobwire.owner", j.events[0].Owner),
				attribute.String("jobwire.state", string(folds[i].st.State)),
			)
			streams.InjectTrace(ctx, writes[i].Msg)
		}
		spans[i] = span
	}
	return spans
}

// endWrites ends the write spans once the batch's writes are answered, with their errors.
func endWrites(spans []trace.Span, writes []streams.Pipelined) {
	for i, span := range spans {
		if span == nil {
			continue
		}
		if err := writes[i].Err; err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "state write failed")
		} else {
			span.SetAttributes(attribute.Int64("jobwire.state.revision", int64(writes[i].Seq)))
		}
		span.End()
	}
}

// onlyProgress reports whether events are progress events only.
func onlyProgress(events []streams.Event) bool {
	for _, ev := range events {
		if ev.Type != streams.EventProgress {
			return false
		}
	}
	return true
}
