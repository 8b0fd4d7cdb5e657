//go:build !unix

package api_test

import "net"

// dialSlow connects a client that will never read.
func dialSlow(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }
