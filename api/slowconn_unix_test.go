//go:build unix

package api_test

import (
	"net"
	"syscall"
)

// dialSlow connects with a tiny receive buffer, so a client that never
// reads fills up after a few kilobytes and the server must skip and drop it
// rather than buffer the whole stream.
func dialSlow(addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.Dial("tcp", addr)
}
