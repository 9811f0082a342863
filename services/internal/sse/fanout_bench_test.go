package sse_test

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jobwire/jobwire/services/internal/sse"
)

// BenchmarkFanOut offers one state change to N streams on real loopback sockets and waits until every
// client has read it: the pool's cost per delivery, kernel included (ns/delivery).
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("floor/streams=%d", n), func(b *testing.B) { benchFloor(b, n) })
		b.Run(fmt.Sprintf("pool/streams=%d", n), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			p := sse.NewPool(sse.Config{Heartbeat: time.Hour}, nil, nil)
			p.Start()
			defer p.Stop()
			frame := sse.AppendEvent(nil, "1", "state", make([]byte, 300))
			var got sync.WaitGroup
			conns := make([]*sse.Conn, n)
			for i := range conns {
				conns[i] = p.NewConn(sse.FlavorV1, false, time.Time{}, nil)
				client, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer client.Close()
				server, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Attach(conns[i], server, nil); err != nil {
					b.Fatal(err)
				}
				go drain(client, len(frame), &got)
			}
			b.ResetTimer()
			for i := range b.N {
				got.Add(n)
				m := &sse.Message{Key: "job", Revision: uint64(i + 1), Frame: frame}
				for _, c := range conns {
					c.Offer(m)
				}
				got.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// drain reads whole frames of size from c and counts each on wg.
func drain(c net.Conn, size int, wg *sync.WaitGroup) {
	buf := make([]byte, 64<<10)
	// the retry field comes first
	head := len(sse.AppendRetry(nil, sse.DefaultRetryMS))
	if _, err := io.ReadFull(c, buf[:head]); err != nil {
		return
	}
	pending := 0
	for {
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		pending += k
		for pending >= size {
			pending -= size
			wg.Done()
		}
	}
}

// benchFloor is the machine's own limit for the same work: the same frame written to n sockets by
// one goroutine per core, no pool.
func benchFloor(b *testing.B, n int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	frame := sse.AppendEvent(nil, "1", "state", make([]byte, 300))
	var got sync.WaitGroup
	servers := make([]net.Conn, n)
	retry := sse.AppendRetry(nil, sse.DefaultRetryMS)
	for i := range servers {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer client.Close()
		if servers[i], err = ln.Accept(); err != nil {
			b.Fatal(err)
		}
		defer servers[i].Close()
		servers[i].Write(retry)
		go drain(client, len(frame), &got)
	}
	workers := runtime.GOMAXPROCS(0)
	b.ResetTimer()
	for range b.N {
		got.Add(n)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					servers[i].Write(frame)
				}
			}()
		}
		wg.Wait()
		got.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
}
