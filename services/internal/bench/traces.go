package bench

import (
	"context"
	"fmt"

	"github.com/jobwire/jobwire/services/internal/testkit"
)

// traced runs the HTTP noop row again with every jobwire process (gateway, workers, projector)
// exporting its spans over OTLP/HTTP to a receiver in the bench (a real endpoint that decodes and
// counts every export), with the OpenTelemetry SDK's default batching and every job sampled (each
// submit is a new root): what tracing on costs per job. The processes are restarted with tracing on
// for the row, and again without it after.
func (b *jobsBench) traced(ctx context.Context, workers, n int) (Throughput, error) {
	sink, err := testkit.NewOTLPReceiver(false)
	if err != nil {
		return Throughput{}, err
	}
	defer sink.Close()
	b.s.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.URL
	if err := b.s.restartServices(ctx, workers, b.o.Concurrency); err != nil {
		return Throughput{}, err
	}
	row, err := b.throughput(ctx, KindNoop, SubmitHTTP, workers, n)
	delete(b.s.env, "OTEL_EXPORTER_OTLP_ENDPOINT")
	if err == nil {
		err = b.s.restartServices(ctx, workers, b.o.Concurrency) // stopping flushes the spans left
	}
	if err != nil {
		return Throughput{}, err
	}
	spans, bytes := sink.Counts()
	row.Traces = &TraceExport{SpansPerJob: float64(spans) / float64(n), BytesPerJob: float64(bytes) / float64(n)}
	row.Kind += fmt.Sprintf(", traced: %.1f spans, %.0f B of OTLP per job", row.Traces.SpansPerJob, row.Traces.BytesPerJob)
	return row, nil
}

// TraceExport is what a traced row sent to the collector, per job.
type TraceExport struct {
	SpansPerJob float64 `json:"spansPerJob"`
	BytesPerJob float64 `json:"otlpBytesPerJob"`
}

// restartServices stops the gateway, the workers and the projector and starts them again with the
// stack's environment as it is now.
func (s *stack) restartServices(ctx context.Context, workers, concurrency int) error {
	s.stopWorkers()
	s.stopGateway()
	s.stopProjector()
	if err := s.startProjector(ctx); err != nil {
		return err
	}
	if err := s.startGateway(ctx, jobsGatewayStreams); err != nil {
		return err
	}
	return s.startWorkers(ctx, workers, concurrency)
}
