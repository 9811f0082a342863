package streams

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// traceContext is the W3C Trace Context propagator (traceparent, tracestate) that every jobwire
// process uses for the headers of job messages and events, whatever the global propagator is.
var traceContext = propagation.TraceContext{}

// headerCarrier lets a propagator read and write a NATS message's headers.
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string { return nats.Header(h).Get(key) }
func (h headerCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// InjectTrace writes the trace context of ctx into m's headers (traceparent, tracestate), so that the
// process that reads m continues the same trace. Without a span in ctx it writes nothing.
func InjectTrace(ctx context.Context, m *nats.Msg) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	traceContext.Inject(ctx, headerCarrier(m.Header))
	if len(m.Header) == 0 {
		m.Header = nil
	}
}

// ExtractTrace returns ctx carrying the remote trace context of a message's headers, if they have one.
func ExtractTrace(ctx context.Context, h nats.Header) context.Context {
	if h == nil || h.Get("traceparent") == "" {
		return ctx
	}
	return traceContext.Extract(ctx, headerCarrier(h))
}
