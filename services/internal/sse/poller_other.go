//go:build !linux

package sse

import (
	"errors"
	"net"
	"sync"
)

// poller polls nothing outside Linux: the pool learns that a client left when a write to it fails (at
// the latest at the next heartbeat), and parked writes are retried after fallbackRetry.
type poller struct{}

func newPoller(*Pool) *poller         { return &poller{} }
func (*poller) start(*sync.WaitGroup) {}
func (*poller) stop()                 {}
func (*poller) add(*Conn)             {}
func (*poller) wantWrite(*Conn) bool  { return false }
func (*poller) remove(*Conn)          {}

// rawSocket is never made outside Linux: streams are written through net.Conn there.
type rawSocket struct{}

func (*rawSocket) write(*net.Buffers) (bool, error) { return false, errors.ErrUnsupported }
