package gateway

import (
	"context"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/jobstore"
)

// tracerName names the gateway's spans' instrumentation scope.
const tracerName = "github.com/jobwire/jobwire/services/internal/gateway"

// requestHeaders lets the W3C Trace Context propagator read a request's headers.
type requestHeaders struct{ c *fiber.Ctx }

func (h requestHeaders) Get(key string) string { return h.c.Get(key) }
func (h requestHeaders) Set(string, string)    {}
func (h requestHeaders) Keys() []string        { return []string{"traceparent", "tracestate"} }

// submitSpan starts the span of one submit: a child of the request's traceparent, or a new root. The
// job's message and events carry it on (streams.InjectTrace), so the workers' attempts join the trace.
// Its attributes are ids and the type, never the input or the raw user id.
func (g *Gateway) submitSpan(c *fiber.Ctx, sub jobstore.Submission) (context.Context, trace.Span) {
	return startSubmitSpan(c, "jobwire.submit "+sub.Type,
		attribute.String("jobwire.job.type", sub.Type), attribute.String("jobwire.owner", sub.Owner))
}

// submitBatchSpan starts the span of one batch submit, as submitSpan does: every job of the batch
// carries it, so a batch is one trace (as one submit is), with each job's attempts under the batch's
// span.
func (g *Gateway) submitBatchSpan(c *fiber.Ctx, owner string, jobs int) (context.Context, trace.Span) {
	return startSubmitSpan(c, "jobwire.submit_batch",
		attribute.Int("messaging.batch.message_count", jobs), attribute.String("jobwire.owner", owner))
}

// startSubmitSpan starts a producer span named name, a child of the request's traceparent or a new
// root, with the messaging attributes of a send and attrs.
func startSubmitSpan(c *fiber.Ctx, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx := propagation.TraceContext{}.Extract(c.UserContext(), requestHeaders{c})
	return otel.Tracer(tracerName).Start(ctx, name, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.operation.type", "send")),
		trace.WithAttributes(attrs...))
}

// endSubmitSpan records what became of the submit.
func endSubmitSpan(span trace.Span, st api.JobState, created bool, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "not queued")
	} else {
		span.SetAttributes(attribute.String("jobwire.job.id", st.ID), attribute.Bool("jobwire.created", created))
	}
	span.End()
}
