package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpSink is a real OTLP/HTTP trace endpoint (POST /v1/traces, protobuf) that decodes each export,
// counts its spans and bytes, and keeps nothing: the collector of the traced row.
type otlpSink struct {
	srv          *http.Server
	url          string
	spans, bytes atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("OTLP sink: %w", err)
	}
	s := &otlpSink{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.export)}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *otlpSink) export(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if r.URL.Path != "/v1/traces" || err != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	s.bytes.Add(int64(len(body)))
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			s.spans.Add(int64(len(ss.Spans)))
		}
	}
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (s *otlpSink) close() { _ = s.srv.Close() }

// traced runs the HTTP noop row again with every jobwire process (gateway, workers, projector)
// exporting its spans over OTLP/HTTP to an otlpSink, with the OpenTelemetry SDK's default batching and
// every job sampled (each submit is a new root): what tracing on costs per job. The processes are
// restarted with tracing on for the row, and again without it after.
func (b *jobsBench) traced(ctx context.Context, workers, n int) (Throughput, error) {
	sink, err := startOTLPSink()
	if err != nil {
		return Throughput{}, err
	}
	defer sink.close()
	b.s.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.url
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
	row.Traces = &TraceExport{SpansPerJob: float64(sink.spans.Load()) / float64(n), BytesPerJob: float64(sink.bytes.Load()) / float64(n)}
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
	if err := s.startGateway(ctx, 100); err != nil {
		return err
	}
	return s.startWorkers(ctx, workers, concurrency)
}
