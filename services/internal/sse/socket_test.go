package sse_test

import (
	"bufio"
	"bytes"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/jobwire/jobwire/services/internal/sse"
)

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T, ln net.Listener) (server, client *net.TCPConn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// attached opens a stream on a real socket with a send buffer of sendBuf bytes (0: the system's) and
// returns it, the client end and the channel of its close reason.
func attached(t *testing.T, p *sse.Pool, ln net.Listener, sendBuf int) (*sse.Conn, *net.TCPConn, chan string) {
	t.Helper()
	server, client := tcpPair(t, ln)
	if sendBuf > 0 {
		_ = server.SetWriteBuffer(sendBuf)
		_ = client.SetReadBuffer(sendBuf)
	}
	closed := make(chan string, 1)
	c := p.NewConn(sse.FlavorV1, false, time.Time{}, func(reason string, _ time.Duration) { closed <- reason })
	if err := p.Attach(c, server, []byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	return c, client, closed
}

func TestAClientThatLeavesIsReleasedAtOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("departures are polled on Linux; elsewhere they are seen at the next failed write")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln := listen(t)
	p := newPool(t, sse.Config{Heartbeat: time.Hour})
	for _, how := range []string{"close", "reset"} {
		_, client, closed := attached(t, p, ln, 0)
		if how == "reset" {
			_ = client.SetLinger(0) // RST instead of FIN
		}
		client.Close()
		select {
		case reason := <-closed:
			if reason != sse.ReasonClientGone {
				t.Fatalf("%s: closed with %q", how, reason)
			}
		case <-time.After(time.Second):
			t.Fatalf("%s: a client that left was still open a second later (heartbeat is an hour away)", how)
		}
	}
	if p.Open() != 0 {
		t.Fatalf("%d streams open", p.Open())
	}
	p.Stop()
}

func TestStuckReadersHoldUpNoOtherStream(t *testing.T) {
	ln := listen(t)
	const stuck = 64
	p := newPool(t, sse.Config{Writers: 4, Heartbeat: time.Hour, WriteTimeout: 3 * time.Second})
	// One shared 1 MiB frame is more than a stuck socket takes: each of them fills and parks.
	big := &sse.Message{Key: "big", Revision: 1, Frame: bytes.Repeat([]byte("x"), 1<<20)}
	reasons := make([]chan string, stuck)
	for i := range stuck {
		var c *sse.Conn
		c, _, reasons[i] = attached(t, p, ln, 8<<10)
		c.Offer(big)
	}
	// More writers than there are would be needed to wait on them all; a reading client still gets its
	// state at once.
	c, client, _ := attached(t, p, ln, 0)
	br := bufio.NewReader(client)
	start := time.Now()
	c.Offer(message("job", 9, false))
	_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the reading client got nothing within 2 s beside %d stuck readers: %v", stuck, err)
		}
		if strings.HasPrefix(line, "id: 9") {
			break
		}
	}
	t.Logf("delivered in %s beside %d stuck readers", time.Since(start), stuck)
	for i, ch := range reasons {
		select {
		case reason := <-ch:
			if reason != sse.ReasonTooSlow {
				t.Fatalf("stuck reader %d closed with %q", i, reason)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stuck reader %d not dropped after the write timeout", i)
		}
	}
}
