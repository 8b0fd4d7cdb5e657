package feed

import (
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// DialContext dials like a net.Dialer with a 30 s timeout and keep-alives
// (http.DefaultTransport's), and on Linux returns TCP connections whose
// Read skips the Go runtime's system-call bookkeeping (rawReadConn). It is
// the DialContext of the transports feed and the service make for
// themselves; a transport given by the caller keeps its own.
func DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := defaultDialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok && rawReadSupported {
		if rc, err := tc.SyscallConn(); err == nil {
			return &rawReadConn{TCPConn: tc, rc: rc}, nil
		}
	}
	return c, nil
}

var defaultDialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}

// NewTransport returns a clone of http.DefaultTransport that dials with
// DialContext.
func NewTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = DialContext
	return tr
}

// rawReadConn is a TCP connection whose Read is a raw read(2) on the
// non-blocking socket, inside syscall.RawConn.Read, which waits for
// readiness in the network poller and keeps deadlines and Close working
// as net.TCPConn's own Read does.
//
// Why: net.TCPConn.Read enters the system call through the runtime's
// entersyscall, and when every P of the process has been idle (the
// service between two frames, at 20,000 frames/s), the runtime's
// monitor thread (sysmon) is in its deep sleep and entersyscall wakes it
// with a futex. On a 2-CPU VM that is a futex call and a cross-CPU wake-up
// on every frame, before the frame is even read: a CPU profile of
// orderflow bench --latency showed runtime.futexwakeup under
// entersyscallWakeSysmon, from the stream reader's read, as 25% of the
// process's samples. A read of a non-blocking socket never blocks, so it
// needs none of that bookkeeping.
type rawReadConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func (c *rawReadConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		n, errno = rawRead(fd, p)
		return errno != syscall.EAGAIN
	})
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if errno != 0 {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: syscall.Errno(errno)}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
