//go:build !linux

package sse

import (
	"net"
	"time"
)

// setKeepAlive makes the kernel probe an idle socket with TCP keepalives, so a peer that vanished
// without closing is noticed. Outside Linux there is no TCP_USER_TIMEOUT: unacknowledged data (a
// heartbeat to a dead peer) fails the socket only after the system's retransmission timeout, which is
// longer than on Linux.
func setKeepAlive(nc net.Conn, heartbeat time.Duration) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: heartbeat, Interval: heartbeat / 3, Count: 3})
	}
}
