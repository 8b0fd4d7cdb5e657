package feed

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DialContext dials like a net.Dialer with a 30 s timeout and keep-alives
// (http.DefaultTransport's), and on Linux returns TCP connections whose
// Read skips the Go runtime's system-call bookkeeping (rawReadConn). It is
// the DialContext of the transports feed and the service make for
// themselves; a transport given by the caller keeps its own.
func DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return Dialer{}.DialContext(ctx, network, addr)
}

// NewTransport returns a clone of http.DefaultTransport that dials with
// DialContext.
func NewTransport() *http.Transport { return Dialer{}.Transport() }

// Dialer dials the stream connections. Its zero value is DialContext.
type Dialer struct {
	// BusyPoll, when positive, makes each Read of a connection (Linux)
	// retry the socket for up to this long before it waits in the
	// network poller. A reader that never sleeps is woken by nobody: on a
	// VM, waking an idle CPU for a frame costs tens of microseconds, and a
	// thread that slept can queue behind other processes for
	// milliseconds. The price is a CPU kept busy while frames are less
	// than BusyPoll apart (a reader spins from one frame to the next), so
	// it is for a deployment that gives the service a core of its own;
	// off by default. Give the process one P (GOMAXPROCS) more than the
	// connections that spin: the spare one runs everything else. With
	// fewer, the spinners yield between tries, and network events of the
	// process's other connections (HTTP API, push clients) are noticed
	// only every 10 ms.
	BusyPoll time.Duration
}

// DialContext dials like the package's DialContext, with d's options.
func (d Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := defaultDialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok && rawReadSupported {
		if rc, err := tc.SyscallConn(); err == nil {
			return newRawReadConn(tc, rc, d.BusyPoll), nil
		}
	}
	return c, nil
}

// Transport returns a clone of http.DefaultTransport that dials with d.
func (d Dialer) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	return tr
}

var defaultDialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}

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
	try   func(fd uintptr) bool // one attempt, never a wait (busy polling)

	busyPoll time.Duration
}

func newRawReadConn(tc *net.TCPConn, rc syscall.RawConn, busyPoll time.Duration) *rawReadConn {
	c := &rawReadConn{TCPConn: tc, rc: rc, busyPoll: busyPoll}
	c.read = func(fd uintptr) bool {
		c.n, c.errno = rawRead(fd, c.p)
		return c.errno != syscall.EAGAIN // EAGAIN: wait in the poller, then call again
	}
	c.try = func(fd uintptr) bool {
		c.n, c.errno = rawRead(fd, c.p)
		return true
	}
	return c
}

func (c *rawReadConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	c.p = p
	err := c.spin()
	if err == nil && c.errno == syscall.EAGAIN {
		err = c.rc.Read(c.read)
	}
	n, errno := c.n, c.errno
	if err == nil && errno == 0 {
		raceWritten(p, n)
	}
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

// spinners counts the reads spinning in this process.
var spinners atomic.Int32

// spin tries the socket until it has data, fails, or busyPoll has passed
// (then c.errno is EAGAIN and the caller waits in the poller). RawConn.Read
// checks the read deadline and Close on every try, so neither waits for
// the spin to end.
func (c *rawReadConn) spin() error {
	c.errno = syscall.EAGAIN
	if c.busyPoll <= 0 {
		return nil
	}
	start := time.Now()
	// While a P is left over for the rest of the process, the spin keeps
	// its P: the other Ps run what this frame woke and wait in the
	// network poller for every other connection. A spinner that yielded
	// would sit in the run queues, and Go's scheduler polls the network
	// only when it finds nothing to run (or every 10 ms), so the process's
	// other connections (HTTP API, push clients) would wait. When the
	// spinners take every P, each yields between tries so that the other
	// goroutines run at all; the network is then polled every 10 ms.
	yield := spinners.Add(1) >= int32(runtime.GOMAXPROCS(0))
	defer spinners.Add(-1)
	for {
		if err := c.rc.Read(c.try); err != nil || c.errno != syscall.EAGAIN {
			return err
		}
		if time.Since(start) >= c.busyPoll {
			return nil
		}
		if yield {
			runtime.Gosched()
		}
	}
}
