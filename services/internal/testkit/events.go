package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// ReplayEvents hands every event of JOB_EVENTS, in the log's order, to each.
func ReplayEvents(t testing.TB, js jetstream.JetStream, each func(streams.Event)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, streams.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(0); seq < info.State.LastSeq; {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		meta, _ := msg.Metadata()
		seq = meta.Sequence.Stream
		ev, err := streams.DecodeEvent(msg.Data(), seq)
		if err != nil {
			t.Fatal(err)
		}
		each(ev)
	}
}

// MostInWindow is the most of the sorted times within any span shorter than d.
func MostInWindow(sorted []time.Time, d time.Duration) int {
	most := 0
	for i, j := 0, 0; j < len(sorted); j++ {
		for sorted[j].Sub(sorted[i]) >= d {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}

// MeanPosition is the mean index of x in xs (NaN when it is not there).
func MeanPosition[T comparable](xs []T, x T) float64 {
	sum, n := 0, 0
	for i, y := range xs {
		if y == x {
			sum, n = sum+i, n+1
		}
	}
	return float64(sum) / float64(n)
}

// WaitJobTypeListed waits up to timeout until GET /v1/job-types lists jobType as cond wants it (what
// says how, for the failure).
func WaitJobTypeListed(t testing.TB, c *api.Client, jobType, what string, timeout time.Duration, cond func(api.JobType) bool) {
	t.Helper()
	streamstest.WaitFor(t, timeout, func() error {
		list, err := c.JobTypes(context.Background())
		if err != nil {
			return err
		}
		for _, jt := range list.JobTypes {
			if jt.Name == jobType && cond(jt) {
				return nil
			}
		}
		return fmt.Errorf("%s is not listed %s", jobType, what)
	})
}
