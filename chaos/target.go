package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// Target is what a fault injects into: the scenario's simulator and
// service, and the network the service dials through.
type Target struct {
	// Sim is the simulator the service streams from.
	Sim *sim.Server
	// Service is the service under test.
	Service *service.Service
	// Symbols are the symbols the service streams, in the order they were
	// added; Symbols[0] is the one per-symbol faults act on.
	Symbols []string

	dns       *dnsDialer
	transport *http.Transport
	// late holds symbols added while running, with the simulator's last
	// aggregate id just before the add (the service's history of them
	// starts at or before the next id; see verify).
	late map[string]int64
	// spare are symbols of the recording the service does not stream yet.
	spare []string
	ref   *refClient

	mu     sync.Mutex
	timers []*scheduled
}

// addSymbol adds sym to the running service, noting the simulator's last
// aggregate id before the add: the service's history of a symbol added
// late starts with its warm-start backfill, at or before the next id.
func (t *Target) addSymbol(ctx context.Context, sym string) error {
	last, err := t.ref.lastAggID(ctx, sym)
	if err != nil {
		return err
	}
	if err := t.Service.AddSymbol(ctx, sym); err != nil {
		return fmt.Errorf("AddSymbol(%s): %w", sym, err)
	}
	t.mu.Lock()
	t.Symbols = append(t.Symbols, sym)
	t.late[sym] = last
	t.mu.Unlock()
	return nil
}

// symbols returns the symbols the service streams now.
func (t *Target) symbols() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.Symbols)
}

type scheduled struct {
	t    *time.Timer
	once sync.Once
	f    func()
}

func (s *scheduled) run() { s.once.Do(s.f) }

// After runs f after d, or when the scenario ends if that comes first, so
// a fault that ends itself (a REST hang released, a DNS outage over) never
// outlives its scenario.
func (t *Target) After(d time.Duration, f func()) {
	s := &scheduled{f: f}
	t.mu.Lock()
	s.t = time.AfterFunc(d, s.run)
	t.timers = append(t.timers, s)
	t.mu.Unlock()
}

// finish runs every scheduled action that has not run yet, at once, and
// waits for those that are running.
func (t *Target) finish() {
	t.mu.Lock()
	ts := slices.Clone(t.timers)
	t.timers = nil
	t.mu.Unlock()
	for _, s := range ts {
		s.t.Stop()
		s.run() // once: waits for a concurrent run to complete
	}
}

// dnsDialer dials TCP, or fails every dial with a name-resolution error
// while failing is set: the service sees exactly what its resolver would
// return for a host name that does not resolve, without a real resolver
// (the machines running the suite may have none).
type dnsDialer struct {
	d        net.Dialer
	failing  atomic.Bool
	failures atomic.Int64
}

func (d *dnsDialer) setFailing(v bool) { d.failing.Store(v) }

func (d *dnsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.failing.Load() {
		d.failures.Add(1)
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.OpError{Op: "dial", Net: network,
			Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}
	return d.d.DialContext(ctx, network, addr)
}
