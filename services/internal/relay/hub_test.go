package relay

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/sse"
	"github.com/jobwire/jobwire/streams"
)

// entry is a KV entry as the watch delivers it (benchmarks and unit tests of the fan-out only; the hub's
// behaviour with a real watch is tested through the gateway).
type entry struct {
	key   string
	value []byte
	rev   uint64
	op    jetstream.KeyValueOp
}

func (e entry) Bucket() string                  { return streams.BucketState }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Revision() uint64                { return e.rev }
func (e entry) Created() time.Time              { return time.Time{} }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return e.op }

type counter struct{ n atomic.Int64 }

func (c *counter) Offer(*sse.Message) { c.n.Add(1) }

func newTestHub() *Hub {
	return NewHub(nil, Config{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func stateEntry(owner, id string, rev uint64) entry {
	st := api.JobState{ID: id, Type: "playlist.import", State: api.StateActive, Progress: api.NewProgress(int(rev%100), 100, "")}
	data, _ := json.Marshal(st)
	return entry{key: streams.StateKey(owner, id), value: data, rev: rev, op: jetstream.KeyValuePut}
}

func TestFanOutReachesJobAndOwnerSubscribersOnly(t *testing.T) {
	h := newTestHub()
	a, b := streams.NewJobID(time.Now()), streams.NewJobID(time.Now())
	job, owner, other, prefix := &counter{}, &counter{}, &counter{}, &counter{}
	h.SubscribeJob("alice", a, job)
	h.SubscribeOwner("alice", owner)
	h.SubscribeOwner("bob", other)
	unsub := h.SubscribeOwner("al", prefix)
	h.apply(stateEntry("alice", a, 1), false)
	h.apply(stateEntry("alice", b, 2), false)
	if job.n.Load() != 1 || owner.n.Load() != 2 || other.n.Load() != 0 || prefix.n.Load() != 0 {
		t.Fatalf("job %d owner %d bob %d al %d", job.n.Load(), owner.n.Load(), other.n.Load(), prefix.n.Load())
	}
	unsub()
	unsub()
	if got := h.Subscribers(); got != 3 {
		t.Fatalf("%d subscribers", got)
	}
	if refs := h.OwnerJobs("alice", 0); len(refs) != 2 || refs[0].ID != b {
		t.Fatalf("owner jobs %+v", refs)
	}
}

func TestRemovedSinceKnowsItsLimits(t *testing.T) {
	h := newTestHub()
	h.floor = 10 // as if the watch started with the bucket at revision 9
	id := streams.NewJobID(time.Now())
	h.apply(stateEntry("alice", id, 10), false)
	h.apply(entry{key: streams.StateKey("alice", id), rev: 11, op: jetstream.KeyValuePurge}, false)
	h.apply(stateEntry("bob", streams.NewJobID(time.Now()), 12), false)
	if removed, ok := h.RemovedSince("alice", 10); !ok || len(removed) != 1 || removed[0].JobID != id {
		t.Fatalf("since 10: %v %+v", ok, removed)
	}
	if removed, ok := h.RemovedSince("alice", 11); !ok || len(removed) != 0 {
		t.Fatalf("since 11: %v %+v", ok, removed)
	}
	if _, ok := h.RemovedSince("alice", 5); ok {
		t.Fatal("a position from before the hub started was accepted")
	}
	if _, ok := h.RemovedSince("alice", 99); ok {
		t.Fatal("a position from the future was accepted")
	}
	if refs := h.OwnerJobs("alice", 0); len(refs) != 0 {
		t.Fatalf("removed job still indexed: %+v", refs)
	}
}

func TestSnapshotsAreSharedBoundedAndOldestGoFirst(t *testing.T) {
	one := StateMessage(&api.JobState{ID: streams.NewJobID(time.Now()), State: api.StateActive}, time.Time{}).Size()
	h := NewHub(nil, Config{SnapshotMemory: 10 * one}, nil, newTestHub().log)
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = streams.NewJobID(time.Now())
		h.apply(stateEntry("alice", ids[i], uint64(i+1)), i < 5) // the first five while loading
	}
	if h.latest.bytes > 10*one+one/2 {
		t.Fatalf("%d snapshot bytes, bound %d", h.latest.bytes, 10*one)
	}
	if _, ok := h.Snapshot("alice", ids[0]); ok {
		t.Fatal("the state changed longest ago was kept past the bound")
	}
	m, ok := h.Snapshot("alice", ids[29])
	if !ok || m.Revision != 30 {
		t.Fatalf("newest state: %v %+v", ok, m)
	}
	if again, _ := h.Snapshot("alice", ids[29]); again != m {
		t.Fatal("two streams got two copies of one snapshot")
	}
	if _, ok := h.Snapshot("bob", ids[29]); ok {
		t.Fatal("another owner's job was served")
	}
	// A job that changes again becomes the newest; one removed is gone at once.
	h.apply(stateEntry("alice", ids[20], 31), false)
	h.apply(entry{key: streams.StateKey("alice", ids[29]), rev: 32, op: jetstream.KeyValueDelete}, false)
	for range 8 {
		h.apply(stateEntry("alice", streams.NewJobID(time.Now()), h.lastRev+1), false)
	}
	if m, ok := h.Snapshot("alice", ids[20]); !ok || m.Revision != 31 {
		t.Fatalf("a job changed again was evicted: %v %+v", ok, m)
	}
	if _, ok := h.Snapshot("alice", ids[29]); ok {
		t.Fatal("a removed job is still served")
	}
	// However often jobs change, the order log stays proportional to what is held.
	for rev := h.lastRev + 1; rev < 20000; rev++ {
		h.apply(stateEntry("alice", ids[rev%3], rev), false)
	}
	if n := len(h.latest.order) - h.latest.head; n > 2*len(h.latest.byKey)+1024+1 {
		t.Fatalf("%d refs for %d snapshots", n, len(h.latest.byKey))
	}
}

// BenchmarkHubFanout measures one state change fanned out to N subscribers of the same job: decoded and
// encoded once, offered N times.
func BenchmarkHubFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := newTestHub()
			id := streams.NewJobID(time.Now())
			c := &counter{}
			for i := 0; i < n; i++ {
				h.SubscribeJob("alice", id, &counterSub{c})
			}
			entries := make([]entry, 100)
			for i := range entries {
				entries[i] = stateEntry("alice", id, uint64(i+1))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e := entries[i%len(entries)]
				e.rev = uint64(i + 1)
				h.apply(e, false)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/offer")
		})
	}
}

// counterSub is a distinct subscriber sharing a counter.
type counterSub struct{ c *counter }

func (s *counterSub) Offer(m *sse.Message) { s.c.Offer(m) }
