// Package natstest starts NATS servers with JetStream for tests: a single
// embedded node, or a cluster of nodes on loopback ports, from the
// nats-server Go module, in process. Nodes can be killed and restarted
// with their stores, to test failover.
//
// Every server is shut down and waited for in the test's cleanup, so
// goleak in TestMain finds nothing of them. Helpers fail the test (never
// skip) when a server cannot start.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyTimeout bounds the wait for a node to accept clients and for a
// cluster's JetStream to elect its meta leader. Generous: CI machines are
// shared.
const readyTimeout = 30 * time.Second

// Node is one NATS server with JetStream. Its store is under a directory
// of the test, kept across Kill and Restart.
type Node struct {
	Name string
	tb   testing.TB
	mu   sync.Mutex
	opts server.Options
	srv  *server.Server
}

// Server returns the running server (nil after Kill).
func (n *Node) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// URL is the node's client URL, nats://127.0.0.1:port. It stays the same
// across Restart.
func (n *Node) URL() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port)
}

// Running reports whether the node runs.
func (n *Node) Running() bool { return n.Server() != nil }

// Kill shuts the node down at once (clients see the connection drop) and
// waits for it to end. Killing a stopped node does nothing.
func (n *Node) Kill() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts a killed node again with its name, ports and store.
func (n *Node) Restart() {
	n.tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return
	}
	s, err := startServer(n.opts)
	if err != nil {
		n.tb.Fatalf("natstest: restart %s: %v", n.Name, err)
	}
	n.srv = s
}

func startServer(opts server.Options) (*server.Server, error) {
	o := opts // the server keeps and changes its options
	s, err := server.NewServer(&o)
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("not ready for connections within %v", readyTimeout)
	}
	return s, nil
}

// freePorts returns n distinct loopback ports free at the time of the
// call. A cluster's routes need every node's port before any node starts,
// so they cannot be left to the kernel at bind time.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("natstest: reserve a port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func baseOptions(name, dir string, port int) server.Options {
	return server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		// JetStream's memory and file limits: small, a test's needs.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
	}
}

// StartNode starts a single JetStream node on a loopback port, its store
// in a temporary directory, and shuts it down at the end of the test.
func StartNode(tb testing.TB) *Node {
	tb.Helper()
	port := freePorts(tb, 1)[0]
	n := &Node{Name: "n1", tb: tb, opts: baseOptions("n1", filepath.Join(tb.TempDir(), "n1"), port)}
	tb.Cleanup(n.Kill)
	n.Restart()
	return n
}

// Cluster is a JetStream cluster of nodes on loopback.
type Cluster struct {
	Nodes []*Node
}

// StartCluster starts a cluster of size nodes (3 for a quorum that survives
// one node's loss) and waits until JetStream has a meta leader that every
// node follows. Everything is shut down at the end of the test.
func StartCluster(tb testing.TB, size int) *Cluster {
	tb.Helper()
	ports := freePorts(tb, 2*size)
	dir := tb.TempDir()
	var routes []*url.URL
	for i := range size {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[size+i])})
	}
	c := &Cluster{}
	for i := range size {
		name := fmt.Sprintf("n%d", i+1)
		o := baseOptions(name, filepath.Join(dir, name), ports[i])
		o.Cluster = server.ClusterOpts{Name: "orderflow-test", Host: "127.0.0.1", Port: ports[size+i]}
		o.Routes = routes
		n := &Node{Name: name, tb: tb, opts: o}
		tb.Cleanup(n.Kill)
		c.Nodes = append(c.Nodes, n)
	}
	// Start them together: each waits for its routes, and JetStream's meta
	// group needs a quorum before anyone is ready.
	var wg sync.WaitGroup
	errs := make([]error, size)
	for i, n := range c.Nodes {
		wg.Go(func() {
			s, err := startServer(n.opts)
			if err != nil {
				errs[i] = err
				return
			}
			n.mu.Lock()
			n.srv = s
			n.mu.Unlock()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("natstest: start %s: %v", c.Nodes[i].Name, err)
		}
	}
	c.WaitReady(tb)
	return c
}

// URLs is the comma-separated client URLs of every node, as clients take
// them (nats.Connect) to fail over between nodes.
func (c *Cluster) URLs() string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.URL())
	}
	return strings.Join(u, ",")
}

// WaitReady waits until the running nodes have a JetStream meta leader and
// every running node is current with it.
func (c *Cluster) WaitReady(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		leader, current := false, true
		running, peers := 0, 0
		for _, n := range c.Nodes {
			s := n.Server()
			if s == nil {
				continue
			}
			running++
			if s.JetStreamIsLeader() {
				leader = true
				// The peers the leader places replicated assets on: online,
				// with JetStream, and their statistics received. Until every
				// running node is one, creating an R3 stream can fail with
				// "no suitable peers for placement, peer offline".
				peers = len(s.JetStreamClusterPeers())
			}
			if !s.JetStreamIsCurrent() {
				current = false
			}
		}
		if leader && current && peers == running {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("natstest: cluster JetStream not ready within %v (leader %v, all current %v, %d of %d running nodes placeable)",
				readyTimeout, leader, current, peers, running)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StreamLeader returns the running node that leads a stream of the global
// account (a KV bucket's stream is "KV_<bucket>"), or nil when none does.
func (c *Cluster) StreamLeader(stream string) *Node {
	for _, n := range c.Nodes {
		if s := n.Server(); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return n
		}
	}
	return nil
}

// Connect connects a client to urls (one URL or several, comma-separated)
// that reconnects forever every 50 ms, with opts after those, and closes
// it at the end of the test. It returns the connection and its JetStream
// context.
func Connect(tb testing.TB, urls string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(urls, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)...)
	if err != nil {
		tb.Fatalf("connect %s: %v", urls, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// WaitFor polls cond every 10 ms until it holds, and fails the test when
// bound passes first. The bound is how long a test waits, not a property.
func WaitFor(tb testing.TB, what string, bound time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
