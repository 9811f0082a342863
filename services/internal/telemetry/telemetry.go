// Package telemetry sends a jobwire process's traces to an OpenTelemetry collector when the standard
// OpenTelemetry variables ask for it, and does nothing otherwise.
package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Enabled reports whether the environment asks for traces: OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and OTEL_SDK_DISABLED is not true.
func Enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Start installs, when Enabled, a global TracerProvider that batches spans to the OTLP/HTTP endpoint
// the OTEL_EXPORTER_OTLP_* variables name, samples as OTEL_TRACES_SAMPLER says (default: parent-based,
// always on), and names the process OTEL_SERVICE_NAME, else service, with service.instance.id
// "<host>-<pid>" (OTEL_RESOURCE_ATTRIBUTES may set both). Trace context travels as W3C
// traceparent. The returned stop flushes what is left; when not Enabled, Start installs nothing and
// stop does nothing, so tracing off costs a no-op tracer.
func Start(ctx context.Context, service string) (stop func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if !Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	host, _ := os.Hostname()
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service),
		// as the worker names itself in job.started events: which replica did what
		attribute.String("service.instance.id", fmt.Sprintf("%s-%d", host, os.Getpid()))), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
