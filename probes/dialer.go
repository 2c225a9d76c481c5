package probes

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NewProbeDialer returns the kubelet's ProbeDialer (pkg/probe/dialer_others.go):
// a net.Dialer whose sockets get SO_LINGER{on, 1s}, so a closed probe
// connection leaves TIME_WAIT within about a second instead of a minute and
// high probe rates do not exhaust ports or conntrack (kubernetes #89898).
func NewProbeDialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout: timeout,
		Control: setLinger,
	}
}

// setLinger is the dialer's Control hook; it runs before connect.
func setLinger(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 1})
	})
	if err != nil {
		return err
	}
	return serr
}
