package streams

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Batches consumes a consumer in batches: ConsumeBatches hands its handler every message that has
// arrived, up to a maximum at a time, one batch after another (never two at once), in delivery order.
// An idle consumer's batch is one message, with no added wait; a busy one's grows, so the handler can
// do one write for many messages. The handler must not keep the slice after it returns. Acking is the
// handler's: the delivery guarantees are the consumer's.
type Batches struct {
	cc    jetstream.ConsumeContext
	inbox chan jetstream.Msg
	done  chan struct{}
}

// ConsumeBatches starts consuming cons with handle; opts are passed to Consume (an error handler, for
// instance). It returns once consuming has begun.
func ConsumeBatches(cons jetstream.Consumer, maxBatch int, handle func([]jetstream.Msg), opts ...jetstream.PullConsumeOpt) (*Batches, error) {
	b := &Batches{inbox: make(chan jetstream.Msg, 2*maxBatch), done: make(chan struct{})}
	go b.loop(maxBatch, handle)
	cc, err := cons.Consume(func(m jetstream.Msg) { b.inbox <- m }, opts...)
	if err != nil {
		close(b.inbox)
		<-b.done
		return nil, fmt.Errorf("consume: %w", err)
	}
	b.cc = cc
	return b, nil
}

func (b *Batches) loop(maxBatch int, handle func([]jetstream.Msg)) {
	defer close(b.done)
	batch := make([]jetstream.Msg, 0, maxBatch)
	for m := range b.inbox {
		batch = append(batch[:0], m)
	more:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-b.inbox:
				if !ok {
					break more
				}
				batch = append(batch, m)
			default:
				break more
			}
		}
		handle(batch)
	}
}

// Stop stops consuming and returns once every message already delivered has been handled.
func (b *Batches) Stop() {
	b.cc.Drain()
	<-b.cc.Closed()
	close(b.inbox)
	<-b.done
}
