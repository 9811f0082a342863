package sse

import (
	"errors"
	"net"
	"os"
	"time"
)

// Writes on sockets the pool cannot write directly (outside Linux, or not a TCP socket) wait at most
// fallbackTry for the client to take data; what it did not take is retried after fallbackRetry, until
// Config.WriteTimeout has passed without progress.
const (
	fallbackTry   = 2 * time.Millisecond
	fallbackRetry = 20 * time.Millisecond
)

// write writes as much of c.out as the socket takes now and removes it from c.out. blocked reports
// that the socket is full and the rest must wait; err that the client is gone.
func (p *Pool) write(c *Conn) (blocked bool, err error) {
	if len(c.out) == 0 {
		return false, nil
	}
	if c.sock != nil {
		return c.sock.write(&c.out)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(fallbackTry))
	_, err = c.out.WriteTo(c.nc)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true, nil
	}
	return false, err
}

// consume removes the first n bytes from bufs, never modifying the shared frames themselves.
func consume(bufs *net.Buffers, n int) {
	b := *bufs
	for n > 0 && len(b) > 0 {
		if n < len(b[0]) {
			b[0] = b[0][n:]
			break
		}
		n -= len(b[0])
		b[0] = nil
		b = b[1:]
	}
	for len(b) > 0 && len(b[0]) == 0 {
		b[0] = nil
		b = b[1:]
	}
	*bufs = b
}
