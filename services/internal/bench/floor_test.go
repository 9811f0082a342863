package bench

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/relay"
	"github.com/jobwire/jobwire/services/internal/sse"
)

// TestFloorWritesTheGatewaysBytes: the floor server's response head and state frames are the
// gateway's (sse.Header, the retry field, relay.StateMessage), so the watchers read the same stream.
func TestFloorWritesTheGatewaysBytes(t *testing.T) {
	if want := string(sse.Header("")) + string(sse.AppendRetry(nil, sse.DefaultRetryMS)); floorHead != want {
		t.Errorf("floor head:\n%q\nthe gateway's:\n%q", floorHead, want)
	}
	srv := newFloorServer(10, 1)
	j := srv.job("01JBENCHJOB0000000000000000")
	j.progress = api.NewProgress(3, 1_000_000, "t=1700000000123456789")
	frame := srv.frame(j, api.StateActive)
	st := api.JobState{ID: j.id, Type: "noop", Name: "relay bench", State: api.StateActive, Progress: j.progress, Attempt: 1,
		CreatedAt: j.created, StartedAt: &j.created, Revision: srv.rev.Load(), EventSeq: srv.rev.Load()}
	st.UpdatedAt = parseUpdatedAt(t, frame)
	if want := relay.StateMessage(&st, time.Time{}).Frame; string(frame) != string(want) {
		t.Errorf("floor frame:\n%q\nthe gateway's:\n%q", frame, want)
	}
}

// parseUpdatedAt is the updatedAt of a state frame, which the floor server sets to the time it built it.
func parseUpdatedAt(t *testing.T, frame []byte) time.Time {
	t.Helper()
	_, rest, _ := strings.Cut(string(frame), `"updatedAt":"`)
	v, _, _ := strings.Cut(rest, `"`)
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("updatedAt of %q: %v", frame, err)
	}
	return at
}

// TestFloorServerInProcess runs the floor server's code in this process with a few watchers over two
// jobs: every stream gets the head and first state, every update inside the window, then the terminal
// state and the end of the stream.
func TestFloorServerInProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := newFloorServer(20, 2)
	go srv.accept(ln)
	ids := []string{"job-a", "job-b"}
	reqs := [][]byte{watchRequest(ln.Addr().String(), ids[0], "x"), watchRequest(ln.Addr().String(), ids[1], "x")}
	win := &window{}
	f := startLocalFleet(context.Background(), clientSpec{Addr: ln.Addr().String(), Requests: reqs, Watchers: 5, InFlight: 2, LatCap: 64}, win)
	defer f.close()
	if cc, _ := f.opened(); cc.Connected != 5 {
		t.Fatalf("opened: %+v", cc)
	}
	openWindow(Options{Warmup: 100 * time.Millisecond, LoadDuration: 500 * time.Millisecond}, win)
	srv.start(win)
	time.Sleep(time.Until(time.Unix(0, win.end.Load())) + 50*time.Millisecond)
	pub := srv.stop()
	if n := srv.complete(); n != 5 {
		t.Errorf("complete closed %d streams, want 5", n)
	}
	tot, _ := f.finish(10 * time.Second)
	want := expectedDeliveries([]int{pub[ids[0]], pub[ids[1]]}, 5)
	if pub[ids[0]] == 0 || tot.Delivered != want || tot.Ended != 5 {
		t.Errorf("published %v, delivered %d of %d, ended %d of 5", pub, tot.Delivered, want, tot.Ended)
	}
}

func TestReadStreamRequest(t *testing.T) {
	for req, want := range map[string]string{
		"GET /v1/jobs/abc/events HTTP/1.1\r\nHost: x\r\n\r\n": "abc",
		"GET /v1/jobs//events HTTP/1.1\r\n\r\n":               "",
		"GET /v1/events HTTP/1.1\r\n\r\n":                     "",
		"POST /v1/jobs/abc/events HTTP/1.1\r\n\r\n":           "",
	} {
		a, b := net.Pipe()
		go func() { _, _ = a.Write([]byte(req)); a.Close() }()
		got, err := readStreamRequest(b)
		if got != want || (want != "" && err != nil) {
			t.Errorf("readStreamRequest(%q) = %q, %v; want %q", req, got, err, want)
		}
		b.Close()
	}
}

// TestFloorRowInClientProcesses runs a floor row, the floor server and the watchers in processes of
// their own (two watch-clients processes, this test binary re-executed), with a few watchers: both
// processes report, every stream gets every update of its job and ends.
func TestFloorRowInClientProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	o := Smoke()
	o.SetDefaults()
	o.Log = io.Discard
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := runFloor(ctx, o, Pinning{}, 6, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if f.Connected != 6 || f.Published == 0 || f.Delivered != f.Expected || f.StreamsEnded != 6 || f.Latency.N != f.Delivered {
		t.Errorf("floor row: %+v", f)
	}
}

func TestClientProcs(t *testing.T) {
	for _, c := range []struct {
		set, watchers int
		nofile        uint64
		want          int
	}{
		{0, 10000, 20000, 0}, {0, 19900, 20000, 2}, {0, 25000, 20000, 3}, {0, 5000, 4096, 2}, {3, 100, 20000, 3}, {5, 2, 20000, 2},
	} {
		if got := clientProcs(Options{ClientProcs: c.set}, c.watchers, c.nofile); got != c.want {
			t.Errorf("clientProcs(--client-procs %d, %d watchers, RLIMIT_NOFILE %d) = %d, want %d", c.set, c.watchers, c.nofile, got, c.want)
		}
	}
}

func TestClientTotalsRoundTrip(t *testing.T) {
	in := fleetTotals{Delivered: 3, Ended: 2, Lat: [][]uint32{{1, 2}, nil, {1 << 31}}}
	b, _ := json.Marshal(encodeTotals(in))
	var out clientTotals
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	got := out.decode()
	if got.Delivered != 3 || got.Ended != 2 || len(got.Lat) != 1 || !slices.Equal(got.Lat[0], []uint32{1, 2, 1 << 31}) {
		t.Errorf("round trip: %+v", got)
	}
}

// TestFloorWriterCatchesUp: a writer that is behind writes each stream the frames queued since it
// joined, in order, and closes the streams after the terminal frame.
func TestFloorWriterCatchesUp(t *testing.T) {
	j := &floorJob{id: "j"}
	var conns []*floorConn
	got := make([]chan string, 2)
	for i := range got {
		a, b := net.Pipe()
		conns = append(conns, &floorConn{nc: a})
		got[i] = make(chan string, 1)
		go func() { all, _ := io.ReadAll(b); got[i] <- string(all) }()
	}
	writeBatch([]floorWrite{
		{job: j, frame: []byte("1"), conns: conns[:1]},
		{job: &floorJob{}, frame: []byte("other job")},
		{job: j, frame: []byte("2"), conns: conns},
		{job: j, frame: []byte("3"), conns: conns, close: true},
	})
	if a, b := <-got[0], <-got[1]; a != "123" || b != "23" {
		t.Errorf("streams got %q and %q, want 123 and 23", a, b)
	}
}
