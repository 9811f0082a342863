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
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// traceSpans returns the spans of trace id whose name starts with prefix (every span for a nil id).
func traceSpans(r *testkit.OTLPReceiver, traceID []byte, prefix string) []testkit.ReceivedSpan {
	var out []testkit.ReceivedSpan
	for _, s := range r.Spans() {
		if (traceID == nil || bytes.Equal(s.TraceId, traceID)) && strings.HasPrefix(s.Name, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// waitSpan waits until the trace holds a span named prefix... and returns it.
func waitSpan(t *testing.T, r *testkit.OTLPReceiver, traceID []byte, prefix string) testkit.ReceivedSpan {
	t.Helper()
	return waitSpanWith(t, r, traceID, prefix, "", "")
}

// waitSpanWith waits until the trace holds a span named prefix... whose attribute key is value (any
// such span when key is empty).
func waitSpanWith(t *testing.T, r *testkit.OTLPReceiver, traceID []byte, prefix, key, value string) testkit.ReceivedSpan {
	t.Helper()
	var found testkit.ReceivedSpan
	streamstest.WaitFor(t, 20*time.Second, func() error {
		for _, s := range traceSpans(r, traceID, prefix) {
			if key == "" || s.Attr(key) == value {
				found = s
				return nil
			}
		}
		return fmt.Errorf("no %s span with %s=%s in the trace so far", prefix, key, value)
	})
	return found
}

// tracedUser is the user of the traced tests: an id whose owner token differs from it, so that a
// leak of the raw id into a span shows.
const tracedUser = "alice@example.com"

// tracedCluster runs the projector, the gateway and workers as separate processes that export their
// spans to an in-test OTLP/HTTP receiver; the worker's metrics are served at metrics.
func tracedCluster(t *testing.T, workers int) (c *cluster, spans *testkit.OTLPReceiver, metrics string) {
	t.Helper()
	spans = testkit.StartOTLPReceiver(t)
	c = startServices(t, 0, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": spans.URL, "OTEL_BSP_SCHEDULE_DELAY": "100"})
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

// tracedClient is the cluster's client with every request in a new trace: it returns the trace id and
// the requests' (the caller's) span id.
func tracedClient(t *testing.T, c *cluster) (traced *api.Client, traceID, parentID []byte) {
	traceID, parentID = randomBytes(t, 16), randomBytes(t, 8)
	copied := *c.client
	copied.HTTP = &http.Client{Transport: traceparentTransport{"00-" + hex.EncodeToString(traceID) + "-" + hex.EncodeToString(parentID) + "-01"}}
	return &copied, traceID, parentID
}

// submitTraced submits an import whose request carries a new traceparent, and returns the job with
// the trace id and the request's span id.
func submitTraced(t *testing.T, c *cluster, name string) (st api.JobState, traceID, parentID []byte) {
	t.Helper()
	traced, traceID, parentID := tracedClient(t, c)
	content, _, _, _ := testPlaylist()
	st, _, err := traced.Submit(context.Background(), importRequest(name, api.FormatM3U, content), "")
	if err != nil {
		t.Fatal(err)
	}
	return st, traceID, parentID
}

// checkParent fails unless child's parent is parent's span.
func checkParent(t *testing.T, child, parent testkit.ReceivedSpan) {
	t.Helper()
	if !bytes.Equal(child.ParentSpanId, parent.SpanId) {
		t.Errorf("%s (%s) has parent %x, want %s %x", child.Name, child.Service, child.ParentSpanId, parent.Name, parent.SpanId)
	}
}

// checkAttrs fails unless s has every attribute of want.
func checkAttrs(t *testing.T, s testkit.ReceivedSpan, want map[string]string) {
	t.Helper()
	for key, value := range want {
		if got := s.Attr(key); got != value {
			t.Errorf("%s: %s = %q, want %q", s.Name, key, got, value)
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

	submit := waitSpan(t, spans, traceID, "jobwire.submit")
	wait := waitSpan(t, spans, traceID, "jobwire.queue_wait")
	attempt := waitSpan(t, spans, traceID, "jobwire.attempt")
	deliver := waitSpan(t, spans, traceID, "jobwire.deliver")
	completed := waitSpanWith(t, spans, traceID, "jobwire.project", "jobwire.state", "completed")
	for s, service := range map[*testkit.ReceivedSpan]string{&submit: "jobwire-gateway", &wait: "jobwire-worker", &attempt: "jobwire-worker",
		&completed: "jobwire-projector", &deliver: "jobwire-gateway"} {
		if s.Service != service {
			t.Errorf("%s exported by %q, want %q", s.Name, s.Service, service)
		}
		checkAttrs(t, *s, ids)
	}
	if !bytes.Equal(submit.ParentSpanId, parentID) {
		t.Errorf("the submit span's parent is %x, want the request's %x", submit.ParentSpanId, parentID)
	}
	checkParent(t, wait, submit)
	checkParent(t, attempt, submit)
	// The handler's own spans (the importer's) are children of the attempt, in the worker's export.
	checkParent(t, waitSpan(t, spans, traceID, "playlist.parse"), attempt)
	checkParent(t, waitSpan(t, spans, traceID, "playlist.import_tracks"), attempt)
	// The write of the queued state (if the projector read the submit alone) continues the submit; every
	// later write continues the attempt.
	for _, w := range traceSpans(spans, traceID, "jobwire.project") {
		if w.Attr("jobwire.state") == "queued" {
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
	if n := deliver.Attr("jobwire.sse.streams"); n == "" || n == "0" {
		t.Errorf("the delivery reached %q streams, want the test's own stream", n)
	}
	if wait.StartTimeUnixNano > attempt.StartTimeUnixNano || wait.EndTimeUnixNano > attempt.EndTimeUnixNano {
		t.Errorf("the queue wait (%d-%d) does not precede the attempt (%d-%d)", wait.StartTimeUnixNano, wait.EndTimeUnixNano,
			attempt.StartTimeUnixNano, attempt.EndTimeUnixNano)
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
	submit := waitSpan(t, spans, traceID, "jobwire.submit")
	rerun := waitSpanWith(t, spans, traceID, "jobwire.attempt", "jobwire.attempt", "2")
	checkParent(t, rerun, submit)
	checkAttrs(t, rerun, map[string]string{"jobwire.outcome": "job.completed", "jobwire.job.id": st.ID})
	if n := len(traceSpans(spans, traceID, "jobwire.queue_wait")); n != 1 {
		t.Errorf("%d queue waits, want 1: a redelivery is no queue wait", n)
	}
	completed := waitSpanWith(t, spans, traceID, "jobwire.project", "jobwire.state", "completed")
	checkParent(t, completed, rerun)
}

// A batch is one trace: the gateway's batch span is a child of the request's traceparent, and each
// job's attempt a child of the batch span.
func TestABatchIsOneTrace(t *testing.T) {
	c, spans, _ := tracedCluster(t, 1)
	traced, traceID, parentID := tracedClient(t, c)
	content, _, _, _ := testPlaylist()
	items := []api.BatchItem{{SubmitRequest: importRequest("batch-a", api.FormatM3U, content)}, {SubmitRequest: importRequest("batch-b", api.FormatM3U, content)}}
	results, err := traced.SubmitBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	batch := waitSpan(t, spans, traceID, "jobwire.submit_batch")
	if !bytes.Equal(batch.ParentSpanId, parentID) || batch.Attr("messaging.batch.message_count") != "2" {
		t.Errorf("batch span: parent %x (want %x), %s jobs", batch.ParentSpanId, parentID, batch.Attr("messaging.batch.message_count"))
	}
	for _, r := range results {
		if r.Job == nil {
			t.Fatalf("batch item: %+v", r)
		}
		checkParent(t, waitSpanWith(t, spans, traceID, "jobwire.attempt", "jobwire.job.id", r.Job.ID), batch)
	}
}

// checkNoUserData fails if any span's attribute holds one of values (the raw user id, the input).
func checkNoUserData(t *testing.T, spans *testkit.OTLPReceiver, values ...string) {
	t.Helper()
	for _, s := range spans.Spans() {
		for _, kv := range s.Attributes {
			for _, v := range values {
				if strings.Contains(kv.Value.String(), v) {
					t.Errorf("span %s attribute %s holds user data %q: %s", s.Name, kv.Key, v, kv.Value)
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
