package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// openRaw opens a stream over a raw TCP connection with a small receive buffer and reads nothing.
func openRaw(t *testing.T, b *bundle, path, token string) *net.TCPConn {
	t.Helper()
	nc, err := net.Dial("tcp", b.gw.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conn := nc.(*net.TCPConn)
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetReadBuffer(4096)
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", path, token); err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitStreams waits until the gateway holds n open streams.
func waitStreams(t *testing.T, b *bundle, n int) {
	t.Helper()
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if open := b.gw.Pool().Open(); open != n {
			return fmt.Errorf("%d streams open, want %d", open, n)
		}
		return nil
	})
}

func TestAClosedStreamFreesTheUsersSlotAtOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("departures are polled on Linux; elsewhere they are seen at the next heartbeat")
	}
	// No heartbeat for an hour: only the poller can tell the gateway that the client left.
	b := setup(t, withGateway(func(c *gateway.Config) { c.SSE.Heartbeat = time.Hour }))
	ctx := context.Background()
	alice := b.client(t, "alice")
	limit := gateway.DefaultMaxStreamsPerUser
	for round := range 3 { // a user who reloads the page a few times
		var open []*api.EventStream
		deadline := time.Now().Add(time.Second)
		for len(open) < limit {
			s, err := alice.OpenStream(ctx, "/v1/events", "")
			if api.IsCode(err, api.CodeTooManyStreams) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatalf("round %d, stream %d, a second after the last ones closed: %v", round, len(open)+1, err)
			}
			open = append(open, s)
		}
		if _, err := alice.OpenStream(ctx, "/v1/events", ""); !api.IsCode(err, api.CodeTooManyStreams) {
			t.Fatalf("round %d: stream over the limit: %v", round, err)
		}
		for _, s := range open {
			s.Close()
		}
	}
	streamstest.WaitFor(t, time.Second, func() error {
		if open, subs := b.gw.Pool().Open(), b.gw.Hub().Subscribers(); open != 0 || subs != 0 {
			return fmt.Errorf("%d streams, %d subscriptions left", open, subs)
		}
		return nil
	})
}

// putState writes a job state into JOB_STATE as the projector would, with a message of pad bytes.
func putState(t *testing.T, b *bundle, owner, id string, pad int) uint64 {
	t.Helper()
	kv, err := b.js.KeyValue(context.Background(), streams.BucketState)
	if err != nil {
		t.Fatal(err)
	}
	st := api.JobState{ID: id, Type: stepsName, State: api.StateActive, Attempt: 1, CreatedAt: time.Now().UTC(),
		Progress: api.NewProgress(1, 2, strings.Repeat("x", pad))}
	data, _ := json.Marshal(st)
	rev, err := kv.Put(context.Background(), streams.StateKey(owner, id), data)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func owner(t *testing.T, user string) string {
	t.Helper()
	o, err := streams.OwnerToken(user)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestStuckReadersDoNotDelayAnotherUser(t *testing.T) {
	const users, perUser = 4, 16
	b := setup(t, withGateway(func(c *gateway.Config) {
		c.MaxStreamsPerUser = perUser
		c.SSE.Heartbeat = time.Hour
		c.SSE.WriteTimeout = 6 * time.Second // a writer blocked on a stuck socket would wait this long
	}))
	for u := range users {
		tok := b.token(t, "stuck"+strconv.Itoa(u))
		for range perUser {
			openRaw(t, b, "/v1/events", tok)
		}
	}
	victim, err := b.client(t, "victim").OpenStream(context.Background(), "/v1/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	waitStreams(t, b, users*perUser+1)
	// 8 MiB of states for each stuck user: more than a socket that is not read can hold.
	var last uint64
	for u := range users {
		o := owner(t, "stuck"+strconv.Itoa(u))
		for range 128 {
			last = putState(t, b, o, streams.NewJobID(time.Now()), 64<<10)
		}
	}
	streamstest.WaitFor(t, 30*time.Second, func() error {
		if got := b.gw.Hub().LastRevision(); got < last {
			return fmt.Errorf("hub at revision %d of %d", got, last)
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // the writers meet the full sockets
	id := streams.NewJobID(time.Now())
	start := time.Now()
	putState(t, b, owner(t, "victim"), id, 0)
	for {
		ev, err := victim.Next()
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := ev.State(); st.ID == id {
			break
		}
	}
	// A test, not a benchmark: the bound is loose (the write timeout is 6 s).
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("another user's update took %s beside %d stuck readers", d, users*perUser)
	}
	t.Logf("update delivered in %s beside %d stuck readers", time.Since(start), users*perUser)
	// The stuck readers are dropped after the write timeout, and their slots freed.
	streamstest.WaitFor(t, 15*time.Second, func() error {
		if open := b.gw.Pool().Open(); open != 1 {
			return fmt.Errorf("%d streams open, want only the victim's", open)
		}
		return nil
	})
}

// countStateReads counts the JOB_STATE reads any client makes on the NATS server (direct and API gets).
func countStateReads(t *testing.T, b *bundle) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	stream := "KV_" + streams.BucketState
	for _, subj := range []string{"$JS.API.DIRECT.GET." + stream, "$JS.API.DIRECT.GET." + stream + ".>", "$JS.API.STREAM.MSG.GET." + stream} {
		sub, err := b.nc.Subscribe(subj, func(*nats.Msg) { n.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
	}
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

func TestStreamsStartResumeAndResetFromMemory(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	c := b.client(t, "alice")
	var jobs []api.JobState
	for range 3 {
		st := b.submitSteps(t, c, stepsInput{Steps: 2})
		jobs = append(jobs, waitState(t, c, st.ID, api.StateCompleted))
	}
	reads := countStateReads(t, b)
	// The counter sees reads: one of our own.
	kv, _ := b.js.KeyValue(ctx, streams.BucketState)
	if _, err := kv.Get(ctx, streams.StateKey(owner(t, "alice"), jobs[0].ID)); err != nil {
		t.Fatal(err)
	}
	streamstest.WaitFor(t, 2*time.Second, func() error {
		if reads.Load() == 0 {
			return fmt.Errorf("the test's own read was not counted")
		}
		return nil
	})
	reads.Store(0)

	path := "/v1/jobs/" + jobs[1].ID + "/events"
	first := streamEvents(t, c, path, "")                                         // first frame
	resumed := streamEvents(t, c, path, strconv.FormatUint(jobs[0].Revision, 10)) // resume from before it
	reset := streamEvents(t, c, path, strconv.FormatUint(1<<40, 10))              // a position from elsewhere
	owned := streamEvents(t, c, "/v1/events", "")                                 // the user's snapshot
	ownedReset := streamEvents(t, c, "/v1/events", strconv.FormatUint(1<<40, 10))
	if got := reads.Load(); got != 0 {
		t.Fatalf("%d JOB_STATE reads for streams the hub could serve from memory", got)
	}
	want := fmt.Sprint(jobs[1].Revision)
	for name, evs := range map[string][]api.Event{"first": first, "resumed": resumed, "reset": reset[1:]} {
		if len(evs) == 0 || evs[0].Event != api.EventState || evs[0].ID != want {
			t.Errorf("%s: %v, want the state at revision %s", name, evs, want)
		}
	}
	if reset[0].Event != api.EventReset || ownedReset[0].Event != api.EventReset {
		t.Errorf("a position from elsewhere did not reset: %v / %v", reset[0], ownedReset[0])
	}
	if len(owned) != 3 || len(ownedReset) != 4 {
		t.Errorf("owner snapshot: %d states, after a reset %d events; want 3 and 4", len(owned), len(ownedReset))
	}
}

// streamEvents opens path resuming after last and returns its events until it ends or is quiet.
func streamEvents(t *testing.T, c *api.Client, path, last string) []api.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s, err := c.OpenStream(ctx, path, last)
	if err != nil {
		t.Fatalf("%s after %q: %v", path, last, err)
	}
	defer s.Close()
	var evs []api.Event
	for {
		ev, err := s.Next()
		if err != nil {
			return evs
		}
		evs = append(evs, ev)
	}
}
