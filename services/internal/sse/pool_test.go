package sse_test

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/jobwire/jobwire/services/internal/sse"
)

func message(key string, rev uint64, terminal bool) *sse.Message {
	id := strconv.FormatUint(rev, 10)
	return &sse.Message{Key: key, Revision: rev, Terminal: terminal,
		Frame:      sse.AppendEvent(nil, id, "state", []byte(`{"k":"`+key+`","r":`+id+`}`)),
		MakeLegacy: func() []byte { return sse.AppendEvent(nil, id, "", []byte(id)) }}
}

func newPool(t *testing.T, cfg sse.Config) *sse.Pool {
	t.Helper()
	p := sse.NewPool(cfg, nil, nil)
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// readIDs reads SSE ids from r until the stream closes.
func readIDs(r net.Conn, delay time.Duration) []uint64 {
	var ids []uint64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			n, _ := strconv.ParseUint(id, 10, 64)
			ids = append(ids, n)
			time.Sleep(delay)
		}
	}
	return ids
}

func TestSlowReaderGetsLatestStatesAndTheTerminalOne(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := sse.NewPool(sse.Config{Writers: 4, Heartbeat: time.Hour, WriteTimeout: 5 * time.Second}, nil, nil)
	p.Start()
	defer p.Stop()
	server, client := net.Pipe() // unbuffered: every write waits for the reader
	closed := make(chan string, 1)
	c := p.NewConn(sse.FlavorV1, true, time.Time{}, func(reason string, _ time.Duration) { closed <- reason })
	var ids []uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ids = readIDs(client, time.Millisecond) }()
	if err := p.Attach(c, server, []byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for rev := uint64(1); rev <= 2000; rev++ {
		c.Offer(message("job", rev, rev == 2000))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("offering 2000 states to a slow reader took %s: the hub would be blocked", d)
	}
	wg.Wait()
	if reason := <-closed; reason != sse.ReasonTerminal {
		t.Fatalf("closed with %q", reason)
	}
	if len(ids) == 0 || ids[len(ids)-1] != 2000 {
		t.Fatalf("last id %v, want the terminal 2000", ids[len(ids)-1:])
	}
	if len(ids) >= 2000 {
		t.Fatalf("a slow reader got all %d states: nothing was coalesced", len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ids not increasing: %v", ids)
		}
	}
	client.Close()
}

func TestStuckClientIsDroppedAfterWriteTimeout(t *testing.T) {
	p := newPool(t, sse.Config{Writers: 2, Heartbeat: time.Hour, WriteTimeout: 100 * time.Millisecond})
	server, client := net.Pipe()
	defer client.Close()
	closed := make(chan string, 1)
	c := p.NewConn(sse.FlavorV1, false, time.Time{}, func(reason string, _ time.Duration) { closed <- reason })
	go func() { // read the head, then stop reading
		buf := make([]byte, 64)
		client.Read(buf)
	}()
	if err := p.Attach(c, server, []byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Offer(message("a", 1, false))
	select {
	case reason := <-closed:
		if reason != sse.ReasonTooSlow {
			t.Fatalf("closed with %q, want %q", reason, sse.ReasonTooSlow)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a client that stopped reading was not dropped")
	}
	if p.Open() != 0 {
		t.Fatalf("%d streams open", p.Open())
	}
	// Other streams are not held up by the stuck one.
	server2, client2 := net.Pipe()
	defer client2.Close()
	c2 := p.NewConn(sse.FlavorLegacy, true, time.Time{}, nil)
	go p.Attach(c2, server2, []byte("H\r\n\r\n"))
	c2.Offer(message("b", 7, true))
	got := readIDs(client2, 0)
	if len(got) != 1 || got[0] != 7 {
		t.Fatalf("second stream got %v", got)
	}
}

func TestMessagesBeforeAttachAndAlreadySentRevisions(t *testing.T) {
	p := newPool(t, sse.Config{Heartbeat: time.Hour})
	server, client := net.Pipe()
	c := p.NewConn(sse.FlavorV1, false, time.Time{}, nil)
	c.MarkSent("a", 5) // the client said Last-Event-ID: 5
	c.Offer(message("a", 4, false))
	c.Offer(message("b", 6, false))
	c.Offer(message("a", 8, false))
	c.Offer(message("a", 7, false)) // older than the pending 8: dropped
	go p.Attach(c, server, []byte("H\r\n\r\n"))
	var ids []uint64
	done := make(chan struct{})
	go func() { ids = readIDs(client, 0); close(done) }()
	time.Sleep(50 * time.Millisecond)
	c.End(nil, "test")
	<-done
	if len(ids) != 2 || ids[0] != 6 || ids[1] != 8 {
		t.Fatalf("ids %v, want [6 8]", ids)
	}
}

func TestAppendEventCannotBeInjected(t *testing.T) {
	got := string(sse.AppendEvent(nil, "1\nevent: evil", "state\r\ndata: x", []byte("a\nevent: evil\r\nb\rc")))
	want := "id: 1event: evil\nevent: statedata: x\ndata: a\ndata: event: evil\ndata: b\ndata: c\n\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestLegacyFrameIsMadeOnceAndOnlyForLegacyStreams(t *testing.T) {
	p := newPool(t, sse.Config{Heartbeat: time.Hour})
	var made atomic.Int32
	m := &sse.Message{Key: "a", Revision: 1, Terminal: true, Frame: sse.AppendEvent(nil, "1", "state", []byte("{}")),
		MakeLegacy: func() []byte { made.Add(1); return sse.AppendEvent(nil, "1", "", []byte("legacy")) }}
	read := func(flavor sse.Flavor) string {
		server, client := net.Pipe()
		c := p.NewConn(flavor, true, time.Time{}, nil)
		c.Offer(m)
		go p.Attach(c, server, []byte("H\r\n\r\n"))
		data, _ := io.ReadAll(client)
		return string(data)
	}
	if got := read(sse.FlavorV1); !strings.Contains(got, "event: state") || made.Load() != 0 {
		t.Fatalf("v1 stream: %q, legacy frame made %d times", got, made.Load())
	}
	for range 2 {
		if got := read(sse.FlavorLegacy); !strings.Contains(got, "data: legacy") {
			t.Fatalf("legacy stream: %q", got)
		}
	}
	if made.Load() != 1 {
		t.Fatalf("legacy frame made %d times for two legacy streams", made.Load())
	}
}
