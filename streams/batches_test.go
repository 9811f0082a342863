package streams_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

func TestConsumeBatchesHandsOverWhatArrivedInOrder(t *testing.T) {
	srv := streamstest.RunServer(t)
	_, js := srv.Ensure(t)
	ctx := context.Background()
	const n, maxBatch = 600, 64
	for i := range n {
		if _, err := js.PublishAsync(streams.EventSubject("owner", streams.NewJobID(time.Now())), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	cons, err := js.CreateConsumer(ctx, streams.StreamEvents, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var got, inside, largest atomic.Int64
	var last uint64
	b, err := streams.ConsumeBatches(cons, maxBatch, func(batch []jetstream.Msg) {
		if inside.Add(1) != 1 {
			t.Error("two batches handled at once")
		}
		defer inside.Add(-1)
		if len(batch) == 0 || len(batch) > maxBatch {
			t.Errorf("a batch of %d", len(batch))
		}
		largest.Store(max(largest.Load(), int64(len(batch))))
		for _, m := range batch {
			meta, _ := m.Metadata()
			if meta.Sequence.Stream <= last {
				t.Errorf("sequence %d after %d", meta.Sequence.Stream, last)
			}
			last = meta.Sequence.Stream
			_ = m.Ack()
		}
		got.Add(int64(len(batch)))
	})
	if err != nil {
		t.Fatal(err)
	}
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if got.Load() < n {
			return context.DeadlineExceeded
		}
		return nil
	})
	b.Stop()
	if largest.Load() < 2 {
		t.Fatalf("600 waiting messages were handed over one at a time")
	}
}
