package testkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPReceiver is a real OTLP/HTTP trace endpoint (POST /v1/traces, protobuf), as a collector is: it
// decodes every export, counts its spans and bytes and, when it keeps them, keeps the spans with the
// service that sent them.
type OTLPReceiver struct {
	URL          string // the endpoint for OTEL_EXPORTER_OTLP_ENDPOINT
	keep         bool
	srv          *http.Server
	spans, bytes atomic.Int64
	mu           sync.Mutex
	kept         []ReceivedSpan
}

// ReceivedSpan is one span of an export, with its process's service.name and service.instance.id.
type ReceivedSpan struct {
	Service, Instance string
	*tracepb.Span
}

// Attr is the span's attribute key as text ("" when it has none).
func (s ReceivedSpan) Attr(key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			if _, ok := kv.Value.Value.(*commonpb.AnyValue_IntValue); ok {
				return fmt.Sprint(kv.Value.GetIntValue())
			}
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// StartOTLPReceiver starts a receiver that keeps every span, closed when the test ends.
func StartOTLPReceiver(t testing.TB) *OTLPReceiver {
	t.Helper()
	r, err := NewOTLPReceiver(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// NewOTLPReceiver starts a receiver on loopback; keep says whether it keeps the spans or only counts
// them.
func NewOTLPReceiver(keep bool) (*OTLPReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("OTLP receiver: %w", err)
	}
	r := &OTLPReceiver{URL: "http://" + ln.Addr().String(), keep: keep}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.export)}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *OTLPReceiver) export(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var export coltrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &export)
	}
	if req.URL.Path != "/v1/traces" || err != nil {
		http.Error(w, fmt.Sprintf("bad export to %s: %v", req.URL.Path, err), http.StatusBadRequest)
		return
	}
	r.bytes.Add(int64(len(body)))
	for _, rs := range export.ResourceSpans {
		var service, instance string
		for _, kv := range rs.GetResource().GetAttributes() {
			switch kv.Key {
			case "service.name":
				service = kv.Value.GetStringValue()
			case "service.instance.id":
				instance = kv.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			r.spans.Add(int64(len(ss.Spans)))
			if r.keep {
				r.mu.Lock()
				for _, s := range ss.Spans {
					r.kept = append(r.kept, ReceivedSpan{Service: service, Instance: instance, Span: s})
				}
				r.mu.Unlock()
			}
		}
	}
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Spans returns the spans received so far (none unless the receiver keeps them).
func (r *OTLPReceiver) Spans() []ReceivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ReceivedSpan(nil), r.kept...)
}

// Counts returns the spans and the bytes of protobuf received so far.
func (r *OTLPReceiver) Counts() (spans, bytes int64) { return r.spans.Load(), r.bytes.Load() }

// Close stops the receiver.
func (r *OTLPReceiver) Close() { _ = r.srv.Close() }
