package projector_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/projector"
	"github.com/jobwire/jobwire/streams"
)

// publishTraced appends an event whose headers carry traceparent, as a traced gateway or worker does.
func (b *bundle) publishTraced(t *testing.T, ev streams.Event, traceparent string) {
	t.Helper()
	ev.V, ev.At = streams.EventVersion, time.Now().UTC()
	data, _ := json.Marshal(ev)
	m := nats.NewMsg(ev.Subject())
	m.Data = data
	m.Header.Set(streams.HeaderEventType, string(ev.Type))
	m.Header.Set("traceparent", traceparent)
	if _, err := b.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// With a TracerProvider installed, each state write that holds more than progress is a span, a child
// of the trace its last event carries, and the write's headers carry that span's context for the
// gateways; a progress-only write is neither traced nor given a header.
func TestStateWritesContinueTheEventsTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	before := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(before) })
	b := setup(t, projector.Config{})

	const trace, submit, attempt = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "b9c7c989f97918e1"
	id := streams.NewJobID(time.Now())
	ev := job(id)
	key := streams.StateKey("alice", id)
	steps := []struct {
		ev     streams.Event
		parent string
		until  func(api.JobState) bool
	}{
		{with(ev, streams.EventSubmitted, 0), submit, func(s api.JobState) bool { return s.State == api.StateQueued }},
		{with(ev, streams.EventStarted, 1), attempt, func(s api.JobState) bool { return s.State == api.StateActive }},
		{with(ev, streams.EventProgress, 1, func(e *streams.Event) { p := api.NewProgress(1, 2, ""); e.Progress = &p }), attempt,
			func(s api.JobState) bool { return s.Progress.Done == 1 }},
		{with(ev, streams.EventCompleted, 1), attempt, func(s api.JobState) bool { return s.State == api.StateCompleted }},
	}
	kvStream, err := b.js.Stream(context.Background(), streams.KVStream(streams.BucketState))
	if err != nil {
		t.Fatal(err)
	}
	var headers []string // the traceparent of each write, in order
	for _, step := range steps {
		b.publishTraced(t, step.ev, "00-"+trace+"-"+step.parent+"-01")
		st := b.wait(t, "alice", id, step.until)
		m, err := kvStream.GetMsg(context.Background(), st.Revision)
		if err != nil || m.Subject != streams.KVSubject(streams.BucketState, key) {
			t.Fatalf("write %d: %v %v", st.Revision, m, err)
		}
		headers = append(headers, m.Header.Get("traceparent"))
	}

	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d write spans, want 3 (queued, active, completed; not the progress)", len(spans))
	}
	for i, want := range []struct{ state, parent, header string }{
		{"queued", submit, headers[0]}, {"active", attempt, headers[1]}, {"completed", attempt, headers[3]},
	} {
		s := spans[i]
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		if s.Name() != "jobwire.project playlist.import" || attrs["jobwire.state"] != want.state || attrs["jobwire.job.id"] != id ||
			s.Parent().TraceID().String() != trace || s.Parent().SpanID().String() != want.parent {
			t.Errorf("span %d: %s %v, parent %v", i, s.Name(), attrs, s.Parent())
		}
		if header := "00-" + trace + "-" + s.SpanContext().SpanID().String() + "-01"; want.header != header {
			t.Errorf("the %s write carries %q, want its span's %q", want.state, want.header, header)
		}
	}
	if headers[2] != "" {
		t.Errorf("the progress-only write carries %q, want no trace context", headers[2])
	}
}
