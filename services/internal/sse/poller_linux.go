package sse

import (
	"errors"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxIOV is the most buffers one writev takes (IOV_MAX on Linux).
const maxIOV = 1024

// poller is one epoll instance over every stream's socket: it reports a client that closed or reset
// its connection (EPOLLRDHUP, EPOLLHUP, EPOLLERR) the moment the kernel knows, and a parked socket
// that became writable (EPOLLOUT, asked for only while parked). One goroutine serves every stream.
// Sockets are level-triggered and keyed by a token, never by descriptor, so a descriptor reused after
// a close cannot be mistaken for the stream that had it.
type poller struct {
	pool   *Pool
	epfd   int
	wakeFD int // eventfd that ends the loop

	mu     sync.Mutex // guards conns, next and closed; held around every epoll_ctl
	conns  map[int32]*Conn
	next   int32
	closed bool // the epoll descriptor is closed: its number may belong to another file now
}

const (
	watchGone  = unix.EPOLLRDHUP
	watchWrite = unix.EPOLLRDHUP | unix.EPOLLOUT
	gone       = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
)

// newPoller returns the pool's poller, or one that polls nothing when epoll is not available (then the
// pool learns of departures from failed writes, as on other systems).
func newPoller(p *Pool) *poller {
	pl := &poller{pool: p, epfd: -1, wakeFD: -1, conns: map[int32]*Conn{}}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return pl
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return pl
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return pl
	}
	pl.epfd, pl.wakeFD = epfd, wake
	return pl
}

func (pl *poller) start(wg *sync.WaitGroup) {
	if pl.epfd < 0 {
		return
	}
	wg.Add(1)
	go pl.run(wg)
}

func (pl *poller) stop() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.epfd >= 0 && !pl.closed {
		_, _ = unix.Write(pl.wakeFD, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}

// add starts watching c's socket; c.mu is held. A socket that cannot be polled is written through
// net.Conn instead.
func (pl *poller) add(c *Conn) {
	tc, ok := c.nc.(*net.TCPConn) // Attach unwrapped the hijacked connection
	if !ok || pl.epfd < 0 {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return
	}
	token := pl.nextToken()
	var ctlErr error
	if err := raw.Control(func(fd uintptr) { ctlErr = pl.ctl(unix.EPOLL_CTL_ADD, fd, token, watchGone) }); err != nil || ctlErr != nil {
		return
	}
	pl.conns[token] = c
	c.sock, c.token = newRawSocket(raw), token
}

// nextToken is an unused token other than 0 (the wake-up event's); pl.mu is held.
func (pl *poller) nextToken() int32 {
	for {
		pl.next++
		if _, used := pl.conns[pl.next]; pl.next != 0 && !used {
			return pl.next
		}
	}
}

func (pl *poller) ctl(op int, fd uintptr, token int32, events uint32) error {
	return unix.EpollCtl(pl.epfd, op, int(fd), &unix.EpollEvent{Events: events, Fd: token})
}

// wantWrite asks to be told when c's socket is writable; false when c is not polled.
func (pl *poller) wantWrite(c *Conn) bool {
	return c.token != 0 && pl.modify(c, watchWrite) == nil
}

func (pl *poller) modify(c *Conn, events uint32) error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return net.ErrClosed
	}
	var ctlErr error
	if err := c.sock.raw.Control(func(fd uintptr) { ctlErr = pl.ctl(unix.EPOLL_CTL_MOD, fd, c.token, events) }); err != nil {
		return err
	}
	return ctlErr
}

// remove stops watching c's socket, before it is closed.
func (pl *poller) remove(c *Conn) {
	if c.token == 0 {
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if !pl.closed {
		_ = c.sock.raw.Control(func(fd uintptr) { _ = unix.EpollCtl(pl.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	}
	delete(pl.conns, c.token)
}

func (pl *poller) run(wg *sync.WaitGroup) {
	defer wg.Done()
	defer pl.close()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(pl.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == 0 {
				return // stop
			}
			pl.handle(ev.Fd, ev.Events)
		}
	}
}

func (pl *poller) close() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.closed = true
	unix.Close(pl.epfd)
	unix.Close(pl.wakeFD)
}

// handle acts on one socket's readiness: a departure ends the stream, writability resumes its write.
func (pl *poller) handle(token int32, events uint32) {
	pl.mu.Lock()
	c := pl.conns[token]
	pl.mu.Unlock()
	if c == nil {
		return // closed meanwhile
	}
	if events&gone != 0 {
		pl.pool.close(c, ReasonClientGone)
		return
	}
	if events&unix.EPOLLOUT != 0 {
		_ = pl.modify(c, watchGone)
		pl.pool.unpark(c)
	}
}

// rawSocket writes a stream's frames with write or writev on the non-blocking socket itself: it returns
// at once when the socket buffer is full instead of waiting in the runtime's poller as net.Conn.Write
// does. Its call is bound once per stream, so a write allocates nothing.
type rawSocket struct {
	raw  syscall.RawConn
	call func(fd uintptr) // s.syscall, bound once

	iov [][]byte
	n   int
	err error
}

func newRawSocket(raw syscall.RawConn) *rawSocket {
	s := &rawSocket{raw: raw}
	s.call = s.syscall
	return s
}

func (s *rawSocket) syscall(fd uintptr) {
	if len(s.iov) == 1 { // the common case: one frame, no iovec to build
		s.n, s.err = unix.Write(int(fd), s.iov[0])
	} else {
		s.n, s.err = unix.Writev(int(fd), s.iov)
	}
}

// write writes as much of out as the socket takes now and removes it from out.
func (s *rawSocket) write(out *net.Buffers) (blocked bool, err error) {
	defer func() { s.iov = nil }()
	for len(*out) > 0 {
		s.iov = (*out)[:min(len(*out), maxIOV)]
		if err := s.raw.Control(s.call); err != nil {
			return false, err
		}
		switch {
		case errors.Is(s.err, unix.EINTR):
			continue
		case errors.Is(s.err, unix.EAGAIN):
			return true, nil
		case s.err != nil:
			return false, s.err
		}
		consume(out, s.n)
	}
	return false, nil
}
