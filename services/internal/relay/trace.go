package relay

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// tracerName names the relay's spans' instrumentation scope.
const tracerName = "github.com/jobwire/jobwire/services/internal/relay"

// StoredMessages reads the last message stored on a subject; the JOB_STATE bucket's jetstream.Stream
// is one.
type StoredMessages interface {
	GetLastMsgForSubject(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error)
}

// maxPendingDeliveries bounds the deliveries waiting to be traced; past it, deliveries go untraced
// rather than slow the hub.
const maxPendingDeliveries = 1024

// delivery is one terminal state the hub offered to its streams, to be traced.
type delivery struct {
	key, owner string
	state      api.JobState
	streams    int
	start, end time.Time
}

// deliveryTracer records a span for each terminal state a hub delivers, a child of the projector's
// write of that state: the trace context is read from the stored write (one direct get per finished
// job, whatever the number of streams), off the hub's path.
type deliveryTracer struct {
	store   StoredMessages
	pending chan delivery
	done    sync.WaitGroup
}

func newDeliveryTracer(store StoredMessages) *deliveryTracer {
	t := &deliveryTracer{store: store, pending: make(chan delivery, maxPendingDeliveries)}
	t.done.Add(1)
	go t.run()
	return t
}

// offer queues d for tracing; it never blocks.
func (t *deliveryTracer) offer(d delivery) {
	select {
	case t.pending <- d:
	default:
	}
}

// stop traces what is queued and returns.
func (t *deliveryTracer) stop() {
	close(t.pending)
	t.done.Wait()
}

func (t *deliveryTracer) run() {
	defer t.done.Done()
	tracer := otel.Tracer(tracerName)
	for d := range t.pending {
		t.trace(tracer, d)
	}
}

// trace records d's span if its stored write carries a trace context and is still the revision
// delivered.
func (t *deliveryTracer) trace(tracer trace.Tracer, d delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := t.store.GetLastMsgForSubject(ctx, streams.KVSubject(streams.BucketState, d.key))
	if err != nil || m.Sequence != d.state.Revision || m.Header.Get("traceparent") == "" {
		return
	}
	_, span := tracer.Start(streams.ExtractTrace(context.Background(), m.Header), "jobwire.deliver "+d.state.Type,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithTimestamp(d.start),
		trace.WithAttributes(
			attribute.String("jobwire.job.id", d.state.ID),
			attribute.String("jobwire.job.type", d.state.Type),
			attribute.String("jobwire.owner", d.owner),
			attribute.String("jobwire.state", string(d.state.State)),
			attribute.Int64("jobwire.state.revision", int64(d.state.Revision)),
			attribute.Int("jobwire.sse.streams", d.streams),
		))
	span.End(trace.WithTimestamp(d.end))
}
