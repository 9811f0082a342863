package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"sync/atomic"
	"time"
)

// window is the measurement window of a load phase, in Unix nanoseconds of publish time; end 0 means
// still open. Events published outside it are not counted (warm-up, drain).
type window struct{ start, end atomic.Int64 }

func (w *window) contains(ns int64) bool {
	s, e := w.start.Load(), w.end.Load()
	return s != 0 && ns >= s && (e == 0 || ns < e)
}

// watcher is one SSE client of the relay benchmark, as lean as a client can be so that ten thousand
// of them fit next to the gateway on two cores: a raw TCP connection, one goroutine, a 2 KiB read
// buffer, no HTTP library. It records the publish→receipt latency of every progress event whose
// publish time (in progress.message as "t=<unix ns>") falls inside the window.
type watcher struct {
	lat    []uint32 // microseconds
	events int      // progress events received in the window
	states int      // every state event received
	ended  bool     // the server closed the stream (after the terminal state)
	err    error
}

var (
	dataPrefix = []byte("data: ")
	tMarker    = []byte(`"message":"t=`)
)

// watchRequest is the raw HTTP request of a job's SSE stream.
func watchRequest(host, jobID, token string) []byte {
	return []byte("GET /v1/jobs/" + jobID + "/events HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/event-stream\r\n" +
		"Authorization: Bearer " + token + "\r\n\r\n")
}

// run connects (from local, when set), sends req, calls ready once (nil after the first state event,
// else the error), and reads until the stream ends or ctx is cancelled.
func (w *watcher) run(ctx context.Context, addr string, local net.Addr, req []byte, win *window, ready func(error)) {
	signalled := false
	signal := func(err error) {
		if !signalled {
			signalled = true
			ready(err)
		}
	}
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: local}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		w.err = err
		signal(err)
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := conn.Write(req); err != nil {
		w.err = err
		signal(err)
		return
	}
	br := bufio.NewReaderSize(conn, 2048)
	status, err := br.ReadSlice('\n')
	if err != nil || !bytes.Contains(status, []byte(" 200 ")) {
		w.err = fmt.Errorf("stream answer %q: %v", bytes.TrimSpace(status), err)
		signal(w.err)
		return
	}
	for { // response head
		line, err := br.ReadSlice('\n')
		if err != nil {
			w.err = err
			signal(err)
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	var last int64
	for {
		line, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull { // a longer line than the buffer: not ours to time
			_, err = br.ReadSlice('\n')
			line = nil
		}
		if err != nil {
			if ctx.Err() == nil {
				w.ended = true
			}
			signal(fmt.Errorf("stream closed before the first event: %v", err))
			return
		}
		if !bytes.HasPrefix(line, dataPrefix) {
			continue
		}
		now := time.Now().UnixNano()
		w.states++
		signal(nil)
		i := bytes.Index(line, tMarker)
		if i < 0 {
			continue
		}
		pub := parseDigits(line[i+len(tMarker):])
		if pub <= last { // the terminal state repeats the last progress: count each update once
			continue
		}
		last = pub
		if !win.contains(pub) {
			continue
		}
		w.events++
		w.lat = append(w.lat, uint32(min((now-pub)/1000, math.MaxUint32)))
	}
}

func parseDigits(b []byte) int64 {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
