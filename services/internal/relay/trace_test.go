package relay

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// storedWrites stands for the JOB_STATE stream's last message per subject (the real direct get is
// covered by the e2e trace test).
type storedWrites map[string]*jetstream.RawStreamMsg

func (s storedWrites) GetLastMsgForSubject(_ context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	if m, ok := s[subject]; ok {
		return m, nil
	}
	return nil, jetstream.ErrMsgNotFound
}

// recordSpans installs a TracerProvider that keeps every ended span, for the test.
func recordSpans(t *testing.T) *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	before := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(before) })
	return rec
}

func terminalEntry(owner, id string, rev uint64) entry {
	data, _ := json.Marshal(api.JobState{ID: id, Type: "playlist.import", State: api.StateCompleted})
	return entry{key: streams.StateKey(owner, id), value: data, rev: rev, op: jetstream.KeyValuePut}
}

// The hub traces the delivery of a terminal state only, as a child of the stored write of that very
// revision, with the number of streams it reached; a write without a trace context, or one the key
// has moved past, gives no span.
func TestDeliveriesOfTerminalStatesAreTraced(t *testing.T) {
	rec := recordSpans(t)
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ids := map[string]string{}
	store := storedWrites{}
	write := func(name string, seq uint64, traceparent string) {
		ids[name] = streams.NewJobID(time.Now())
		m := &jetstream.RawStreamMsg{Sequence: seq, Header: nats.Header{}}
		if traceparent != "" {
			m.Header.Set("traceparent", traceparent)
		}
		store[streams.KVSubject(streams.BucketState, streams.StateKey("alice", ids[name]))] = m
	}
	write("traced", 10, parent)
	write("untraced", 11, "")
	write("moved on", 13, parent) // the key's last write is newer than the state delivered
	write("active", 14, parent)

	h := newTestHub()
	h.tracer = newDeliveryTracer(store)
	job, owner := &counter{}, &counter{}
	h.SubscribeJob("alice", ids["traced"], job)
	h.SubscribeOwner("alice", owner)
	h.apply(terminalEntry("alice", ids["traced"], 10), false)
	h.apply(terminalEntry("alice", ids["untraced"], 11), false)
	h.apply(terminalEntry("alice", ids["moved on"], 12), false)
	h.apply(stateEntry("alice", ids["active"], 14), false)
	h.tracer.stop()

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want the traced job's delivery only", len(spans))
	}
	s := spans[0]
	attrs := map[string]string{}
	for _, kv := range s.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	switch {
	case s.Name() != "jobwire.deliver playlist.import":
		t.Errorf("span %q", s.Name())
	case s.Parent().TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || s.Parent().SpanID().String() != "b7ad6b7169203331":
		t.Errorf("parent %v, want the stored write's", s.Parent())
	case attrs["jobwire.job.id"] != ids["traced"] || attrs["jobwire.state"] != "completed" || attrs["jobwire.state.revision"] != "10" ||
		attrs["jobwire.sse.streams"] != "2" || attrs["jobwire.owner"] != "alice":
		t.Errorf("attributes %v", attrs)
	case s.EndTime().Before(s.StartTime()):
		t.Errorf("ends %v before it starts %v", s.EndTime(), s.StartTime())
	}
}
