package feed

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
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
			return newRawReadConn(tc, rc), nil
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

	// One read at a time (net.Conn allows concurrent calls), with its
	// state here and the function RawConn.Read calls made once: a closure
	// per call would escape and cost allocations on every frame.
	mu    sync.Mutex
	p     []byte
	n     int
	errno syscall.Errno
	read  func(fd uintptr) bool
}

func newRawReadConn(tc *net.TCPConn, rc syscall.RawConn) *rawReadConn {
	c := &rawReadConn{TCPConn: tc, rc: rc}
	c.read = func(fd uintptr) bool {
		c.n, c.errno = rawRead(fd, c.p)
		return c.errno != syscall.EAGAIN // EAGAIN: wait in the poller, then call again
	}
	return c
}

func (c *rawReadConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	c.p = p
	err := c.rc.Read(c.read)
	n, errno := c.n, c.errno
	c.p = nil
	c.mu.Unlock()
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if errno != 0 {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
