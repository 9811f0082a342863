package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
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

// tracedUser is the user of the traced tests: an id whose owner token differs from it, so that a
// leak of the raw id into a span shows.
const tracedUser = "alice@example.com"

// tracedCluster runs the projector, the gateway and workers as separate processes that export their
// spans to an in-test OTLP/HTTP receiver; the worker's metrics are served at metrics.
func tracedCluster(t *testing.T, workers int) (c *cluster, spans *otlpReceiver, metrics string) {
	t.Helper()
	spans, endpoint := startOTLPReceiver(t)
	c = startServices(t, 0, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"})
	tok, _ := auth.NewSigner([]byte(processSecret), "").Sign(tracedUser, time.Hour, "", "")
	c.client = api.NewClient(c.base, tok)
	metrics = testkit.FreeAddr(t)
	for i := range workers {
		env := maps.Clone(c.env)
		if i == 0 {
			env["JOBWIRE_METRICS_ADDR"] = metrics
		}
		c.workers = append(c.workers, startProc(t, fmt.Sprintf("worker-%d", i), env, "worker"))
	}
	testkit.WaitJobType(t, c.client, api.JobTypePlaylistImport, true, 30*time.Second)
	return c, spans, metrics
}

// traceparentTransport sends every request with one traceparent header, as a traced caller would.
type traceparentTransport struct{ traceparent string }

func (tp traceparentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", tp.traceparent)
	return http.DefaultTransport.RoundTrip(r)
}

// submitTraced submits an import whose request carries a new traceparent, and returns the job with
// the trace id and the request's span id.
func submitTraced(t *testing.T, c *cluster, name string) (st api.JobState, traceID, parentID []byte) {
	t.Helper()
	traceID, parentID = randomBytes(t, 16), randomBytes(t, 8)
	traced := *c.client
	traced.HTTP = &http.Client{Transport: traceparentTransport{"00-" + hex.EncodeToString(traceID) + "-" + hex.EncodeToString(parentID) + "-01"}}
	content, _, _, _ := testPlaylist()
	st, _, err := traced.Submit(context.Background(), importRequest(name, api.FormatM3U, content), "")
	if err != nil {
		t.Fatal(err)
	}
	return st, traceID, parentID
}

// waitSpans waits until the trace holds n spans named prefix... and returns them.
func (r *otlpReceiver) waitSpans(t *testing.T, traceID []byte, prefix string, n int) []collectedSpan {
	t.Helper()
	var found []collectedSpan
	streamstest.WaitFor(t, 20*time.Second, func() error {
		if found = r.find(traceID, prefix); len(found) < n {
			return fmt.Errorf("%d %s spans in the trace so far, want %d", len(found), prefix, n)
		}
		return nil
	})
	return found
}

// waitSpanWith waits until the trace holds a span named prefix... whose attribute key is value.
func (r *otlpReceiver) waitSpanWith(t *testing.T, traceID []byte, prefix, key, value string) collectedSpan {
	t.Helper()
	var found collectedSpan
	streamstest.WaitFor(t, 20*time.Second, func() error {
		for _, s := range r.find(traceID, prefix) {
			if s.attr(key) == value {
				found = s
				return nil
			}
		}
		return fmt.Errorf("no %s span with %s=%s in the trace so far", prefix, key, value)
	})
	return found
}

// checkParent fails unless child's parent is parent's span.
func checkParent(t *testing.T, child, parent collectedSpan) {
	t.Helper()
	if !bytes.Equal(child.span.ParentSpanId, parent.span.SpanId) {
		t.Errorf("%s (%s) has parent %x, want %s %x", child.span.Name, child.service, child.span.ParentSpanId, parent.span.Name, parent.span.SpanId)
	}
}

// checkAttrs fails unless s has every attribute of want.
func checkAttrs(t *testing.T, s collectedSpan, want map[string]string) {
	t.Helper()
	for key, value := range want {
		if got := s.attr(key); got != value {
			t.Errorf("%s: %s = %q, want %q", s.span.Name, key, got, value)
		}
	}
}

// One import is one trace across the gateway, worker and projector processes: the submit's span is a
// child of the request's traceparent; the queue wait and the attempt are children of the submit; the
// projector's write of the queued state is a child of the submit and its later writes children of the
// attempt; the gateway's SSE delivery of the completed state a child of that write. Each
// process exports its own spans over OTLP, with the job's ids and no user input or raw user id in any
// attribute; the worker's job-duration histogram carries the trace id as an exemplar.
func TestOneImportIsOneTraceAcrossProcesses(t *testing.T) {
	c, spans, metrics := tracedCluster(t, 1)
	st, traceID, parentID := submitTraced(t, c, "traced-mix")
	final, _ := watchToEnd(t, c.client, st.ID)
	if final.State != api.StateCompleted {
		t.Fatalf("job ended %s", final.State)
	}
	ids := map[string]string{"jobwire.job.id": st.ID, "jobwire.job.type": api.JobTypePlaylistImport, "jobwire.owner": "alice_40example_2Ecom"}

	submit := spans.waitSpans(t, traceID, "jobwire.submit", 1)[0]
	wait := spans.waitSpans(t, traceID, "jobwire.queue_wait", 1)[0]
	attempt := spans.waitSpans(t, traceID, "jobwire.attempt", 1)[0]
	deliver := spans.waitSpans(t, traceID, "jobwire.deliver", 1)[0]
	completed := spans.waitSpanWith(t, traceID, "jobwire.project", "jobwire.state", "completed")
	for s, service := range map[*collectedSpan]string{&submit: "jobwire-gateway", &wait: "jobwire-worker", &attempt: "jobwire-worker",
		&completed: "jobwire-projector", &deliver: "jobwire-gateway"} {
		if s.service != service {
			t.Errorf("%s exported by %q, want %q", s.span.Name, s.service, service)
		}
		checkAttrs(t, *s, ids)
	}
	if !bytes.Equal(submit.span.ParentSpanId, parentID) {
		t.Errorf("the submit span's parent is %x, want the request's %x", submit.span.ParentSpanId, parentID)
	}
	checkParent(t, wait, submit)
	checkParent(t, attempt, submit)
	// The handler's own spans (the importer's) are children of the attempt, in the worker's export.
	checkParent(t, spans.waitSpans(t, traceID, "playlist.parse", 1)[0], attempt)
	checkParent(t, spans.waitSpans(t, traceID, "playlist.import_tracks", 1)[0], attempt)
	// The write of the queued state (if the projector read the submit alone) continues the submit; every
	// later write continues the attempt.
	for _, w := range spans.find(traceID, "jobwire.project") {
		if w.attr("jobwire.state") == "queued" {
			checkParent(t, w, submit)
		} else {
			checkParent(t, w, attempt)
		}
	}
	checkParent(t, completed, attempt)
	checkParent(t, deliver, completed)
	checkAttrs(t, attempt, map[string]string{"jobwire.outcome": "job.completed", "jobwire.attempt": "1", "messaging.system": "nats",
		"messaging.operation.type": "process", "messaging.destination.name": "jobs.queue." + api.JobTypePlaylistImport})
	checkAttrs(t, deliver, map[string]string{"jobwire.state": "completed", "jobwire.state.revision": fmt.Sprint(final.Revision)})
	if n := deliver.attr("jobwire.sse.streams"); n == "" || n == "0" {
		t.Errorf("the delivery reached %q streams, want the test's own stream", n)
	}
	if wait.span.StartTimeUnixNano > attempt.span.StartTimeUnixNano || wait.span.EndTimeUnixNano > attempt.span.EndTimeUnixNano {
		t.Errorf("the queue wait (%d-%d) does not precede the attempt (%d-%d)", wait.span.StartTimeUnixNano, wait.span.EndTimeUnixNano,
			attempt.span.StartTimeUnixNano, attempt.span.EndTimeUnixNano)
	}
	checkNoUserData(t, spans, tracedUser, "traced-mix")
	checkExemplar(t, metrics, hex.EncodeToString(traceID))
}

// A worker killed in the middle of a job leaves its attempt's span unended (never exported); the re-run
// on another worker is a new attempt span, number 2, in the same trace, a child of the submit.
func TestACrashReRunIsASecondAttemptSpanInTheSameTrace(t *testing.T) {
	c, spans, _ := tracedCluster(t, 2)
	st, traceID, _ := submitTraced(t, c, "crashing-mix")
	waitFor(t, c.client, st.ID, func(s api.JobState) bool { return s.Progress.Done >= 15 })
	c.killRunner(t, st.ID)
	final := waitFor(t, c.client, st.ID, func(s api.JobState) bool { return s.State.Terminal() })
	if final.State != api.StateCompleted || final.Attempt != 2 {
		t.Fatalf("job ended %s on attempt %d", final.State, final.Attempt)
	}
	submit := spans.waitSpans(t, traceID, "jobwire.submit", 1)[0]
	rerun := spans.waitSpanWith(t, traceID, "jobwire.attempt", "jobwire.attempt", "2")
	checkParent(t, rerun, submit)
	checkAttrs(t, rerun, map[string]string{"jobwire.outcome": "job.completed", "jobwire.job.id": st.ID})
	if n := len(spans.find(traceID, "jobwire.queue_wait")); n != 1 {
		t.Errorf("%d queue waits, want 1: a redelivery is no queue wait", n)
	}
	completed := spans.waitSpanWith(t, traceID, "jobwire.project", "jobwire.state", "completed")
	checkParent(t, completed, rerun)
}

// A batch is one trace: the gateway's batch span is a child of the request's traceparent, and each
// job's attempt a child of the batch span.
func TestABatchIsOneTrace(t *testing.T) {
	c, spans, _ := tracedCluster(t, 1)
	traceID, parentID := randomBytes(t, 16), randomBytes(t, 8)
	traced := *c.client
	traced.HTTP = &http.Client{Transport: traceparentTransport{"00-" + hex.EncodeToString(traceID) + "-" + hex.EncodeToString(parentID) + "-01"}}
	content, _, _, _ := testPlaylist()
	items := []api.BatchItem{{SubmitRequest: importRequest("batch-a", api.FormatM3U, content)}, {SubmitRequest: importRequest("batch-b", api.FormatM3U, content)}}
	results, err := traced.SubmitBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	batch := spans.waitSpans(t, traceID, "jobwire.submit_batch", 1)[0]
	if !bytes.Equal(batch.span.ParentSpanId, parentID) || batch.attr("messaging.batch.message_count") != "2" {
		t.Errorf("batch span: parent %x (want %x), %s jobs", batch.span.ParentSpanId, parentID, batch.attr("messaging.batch.message_count"))
	}
	for _, r := range results {
		if r.Job == nil {
			t.Fatalf("batch item: %+v", r)
		}
		checkParent(t, spans.waitSpanWith(t, traceID, "jobwire.attempt", "jobwire.job.id", r.Job.ID), batch)
	}
}

// checkNoUserData fails if any span's attribute holds one of values (the raw user id, the input).
func checkNoUserData(t *testing.T, spans *otlpReceiver, values ...string) {
	t.Helper()
	spans.mu.Lock()
	defer spans.mu.Unlock()
	for _, s := range spans.spans {
		for _, kv := range s.span.Attributes {
			for _, v := range values {
				if strings.Contains(kv.Value.String(), v) {
					t.Errorf("span %s attribute %s holds user data %q: %s", s.span.Name, kv.Key, v, kv.Value)
				}
			}
		}
	}
}

// checkExemplar fails unless the worker's jobwire_job_duration_seconds, scraped as OpenMetrics, has an
// exemplar with traceID.
func checkExemplar(t *testing.T, metrics, traceID string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+metrics+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, "jobwire_job_duration_seconds_bucket") && strings.Contains(line, `trace_id="`+traceID+`"`) {
			return
		}
	}
	t.Errorf("no exemplar with trace_id %s in the job-duration histogram:\n%s", traceID, grepLines(string(body), "jobwire_job_duration_seconds"))
}

func grepLines(text, substr string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
