package sse

import (
	"net"
	"syscall"
	"time"
)

// setKeepAlive makes the kernel notice a peer that vanished without closing: TCP keepalive probes on
// an idle socket, and TCP_USER_TIMEOUT so unacknowledged data (a heartbeat to a dead peer) fails the
// socket within about one heartbeat interval instead of the kernel's default of about 15 minutes.
func setKeepAlive(nc net.Conn, heartbeat time.Duration) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: heartbeat, Interval: heartbeat / 3, Count: 3})
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	ms := int(heartbeat.Milliseconds())
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, 0x12 /* TCP_USER_TIMEOUT */, ms)
	})
}
