package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// collectedSpan is one span an OTLP/HTTP export brought, with its process's service name.
type collectedSpan struct {
	service string
	span    *tracepb.Span
}

func (s collectedSpan) attr(key string) string {
	for _, kv := range s.span.Attributes {
		if kv.Key == key {
			if _, ok := kv.Value.Value.(*commonpb.AnyValue_IntValue); ok {
				return fmt.Sprint(kv.Value.GetIntValue())
			}
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// otlpReceiver is a real OTLP/HTTP endpoint (POST /v1/traces, protobuf) that keeps every span.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []collectedSpan
}

func startOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	r := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var export coltrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &export)
		}
		if req.URL.Path != "/v1/traces" || err != nil {
			http.Error(w, fmt.Sprintf("bad export to %s: %v", req.URL.Path, err), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range export.ResourceSpans {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans = append(r.spans, collectedSpan{service: service, span: s})
				}
			}
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

// find returns the spans of trace id whose name starts with prefix.
func (r *otlpReceiver) find(traceID []byte, prefix string) []collectedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []collectedSpan
	for _, s := range r.spans {
		if bytes.Equal(s.span.TraceId, traceID) && strings.HasPrefix(s.span.Name, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// One job is one trace across the gateway and worker processes: the submit's span is a child of the
// request's traceparent, the worker's attempt span a child of the submit's, both exported over OTLP
// by their own process, with the job's ids and no user input or raw user id in any attribute.
func TestOneJobIsOneTraceAcrossProcesses(t *testing.T) {
	spans, endpoint := startOTLPReceiver(t)
	srv := streamstest.RunServer(t)
	httpAddr := testkit.FreeAddr(t)
	env := map[string]string{
		"NATS_URL": srv.URL(), "JOBWIRE_JWT_SECRET": processSecret, "JOBWIRE_HTTP_ADDR": httpAddr,
		"JOBWIRE_NOOP_JOBS": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
	}
	startProc(t, "projector", env, "projector")
	startProc(t, "worker", env, "worker")
	startProc(t, "gateway", env, "gateway")
	base := "http://" + httpAddr
	waitReady(t, base)
	const user = "alice@example.com"
	tok, _ := auth.NewSigner([]byte(processSecret), "").Sign(user, time.Hour, "", "")
	c := api.NewClient(base, tok)
	testkit.WaitJobType(t, c, "noop", true, 30*time.Second)

	traceID, parentID := randomBytes(t, 16), randomBytes(t, 8)
	const secretInput = "input-never-in-a-span"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/v1/jobs",
		strings.NewReader(`{"type":"noop","input":{"note":"`+secretInput+`"}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+hex.EncodeToString(traceID)+"-"+hex.EncodeToString(parentID)+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st api.JobState
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	waitFor(t, c, st.ID, func(s api.JobState) bool { return s.State == api.StateCompleted })

	var submit, attempt collectedSpan
	streamstest.WaitFor(t, 20*time.Second, func() error {
		s, a := spans.find(traceID, "jobwire.submit"), spans.find(traceID, "jobwire.attempt")
		if len(s) != 1 || len(a) != 1 {
			return fmt.Errorf("%d submit and %d attempt spans in the trace so far", len(s), len(a))
		}
		submit, attempt = s[0], a[0]
		return nil
	})
	switch {
	case submit.service != "jobwire-gateway" || attempt.service != "jobwire-worker":
		t.Errorf("services %q and %q, want jobwire-gateway and jobwire-worker", submit.service, attempt.service)
	case !bytes.Equal(submit.span.ParentSpanId, parentID):
		t.Errorf("the submit span's parent is %x, want the request's %x", submit.span.ParentSpanId, parentID)
	case !bytes.Equal(attempt.span.ParentSpanId, submit.span.SpanId):
		t.Errorf("the attempt span's parent is %x, want the submit span %x", attempt.span.ParentSpanId, submit.span.SpanId)
	}
	for key, want := range map[string]string{"jobwire.job.id": st.ID, "jobwire.job.type": "noop", "jobwire.owner": "alice_40example_2Ecom",
		"jobwire.outcome": "job.completed", "messaging.system": "nats"} {
		if got := attempt.attr(key); got != want {
			t.Errorf("attempt span %s = %q, want %q", key, got, want)
		}
	}
	if got := submit.attr("jobwire.job.id"); got != st.ID {
		t.Errorf("submit span jobwire.job.id = %q, want %s", got, st.ID)
	}
	for _, s := range append(spans.find(traceID, ""), spans.find(nil, "")...) {
		for _, kv := range s.span.Attributes {
			if v := kv.Value.String(); strings.Contains(v, secretInput) || strings.Contains(v, user) {
				t.Errorf("span %s attribute %s holds the input or the raw user id: %s", s.span.Name, kv.Key, v)
			}
		}
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
