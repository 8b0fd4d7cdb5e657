package shard_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/natstest"
	"github.com/orderflow/orderflow/shard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var failoverTTL = flag.Duration("failover-ttl", 1500*time.Millisecond, "lease TTL of TestFailoverWithinBound (the README's figure is measured with 6s)")

// ledger is the test's independent view of ownership, fed by the Acquire
// and Release callbacks: a symbol acquired while another instance still
// holds it is a violation.
type ledger struct {
	mu         sync.Mutex
	holder     map[string]string
	acquiredAt map[string]time.Time
	violations []string
}

func newLedger() *ledger {
	return &ledger{holder: map[string]string{}, acquiredAt: map[string]time.Time{}}
}

func (l *ledger) acquire(id string) func(context.Context, string) error {
	return func(_ context.Context, sym string) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if h := l.holder[sym]; h != "" {
			l.violations = append(l.violations, fmt.Sprintf("%s acquired %s while %s held it", id, sym, h))
		}
		l.holder[sym] = id
		l.acquiredAt[sym] = time.Now()
		return nil
	}
}

func (l *ledger) release(id string) func(context.Context, string) error {
	return func(_ context.Context, sym string) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if h := l.holder[sym]; h != id {
			l.violations = append(l.violations, fmt.Sprintf("%s released %s held by %q", id, sym, h))
		}
		delete(l.holder, sym)
		return nil
	}
}

func (l *ledger) snapshot() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := make(map[string]string, len(l.holder))
	for k, v := range l.holder {
		c[k] = v
	}
	return c
}

func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.violations {
		t.Error(v)
	}
}

// instance is one running Member with its own connection.
type instance struct {
	id     string
	m      *shard.Member
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

type fleet struct {
	t        *testing.T
	urls     []string
	ttl      time.Duration
	replicas int
	syms     []string
	led      *ledger
	all      []*instance
}

func (f *fleet) start(id string) *instance {
	f.t.Helper()
	// Each instance prefers another node first, as instances spread over
	// a cluster would.
	n := len(f.all) % len(f.urls)
	urls := append(slices.Clone(f.urls[n:]), f.urls[:n]...)
	nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.Name(id))
	if err != nil {
		f.t.Fatalf("%s: connect: %v", id, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := shard.New(shard.Config{JetStream: js, Market: market.Spot, Symbols: f.syms, ID: id, TTL: f.ttl,
		Replicas: f.replicas, Acquire: f.led.acquire(id), Release: f.led.release(id),
		Logger: testLogger(id)})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{id: id, m: m, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- m.Run(ctx) }()
	f.all = append(f.all, in)
	f.t.Cleanup(func() { in.stop(f.t) })
	return in
}

// stop ends Run (a graceful leave) and closes the connection.
func (in *instance) stop(t *testing.T) {
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("%s: Run: %v", in.id, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s: Run did not return", in.id)
	}
	in.nc.Close()
}

// crash cuts the instance off the bus without leaving: it can neither
// renew nor release, as when its process or host dies. (Its Run goes on
// and stops its symbols as their leases lapse, as a partitioned instance
// would.)
func (in *instance) crash() { in.nc.Close() }

func (f *fleet) live() []string {
	var ids []string
	for _, in := range f.all {
		if in.cancel != nil && !in.nc.IsClosed() {
			ids = append(ids, in.id)
		}
	}
	return ids
}

// converged: every symbol is held by its desired owner among the live
// instances, in the ledger and in the leases bucket.
func (f *fleet) converged(kv jetstream.KeyValue) bool {
	live := f.live()
	h := f.led.snapshot()
	for _, s := range f.syms {
		if h[s] != shard.Owner(live, s) {
			return false
		}
	}
	if kv == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range f.syms {
		e, err := kv.Get(ctx, "spot."+s)
		if err != nil || string(e.Value()) != h[s] {
			return false
		}
	}
	return true
}

func (f *fleet) waitConverged(kv jetstream.KeyValue, d time.Duration, what string) {
	f.t.Helper()
	waitFor(f.t, d, what, func() bool { return f.converged(kv) })
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	natstest.WaitFor(t, what, d, ok)
}

func symbols(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("SYM%02dUSDT", i)
	}
	return s
}

func leasesKV(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	_, js := natstest.Connect(t, url)
	var kv jetstream.KeyValue
	waitFor(t, 60*time.Second, "the leases bucket", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		kv, err = js.KeyValue(ctx, shard.LeasesBucket)
		return err == nil
	})
	return kv
}

// Many goroutines race Create on the same key: one wins each round, and
// no write at a revision another instance holds is accepted. This is the
// primitive the leases stand on, checked on our server build.
func TestLeaseCreateRace(t *testing.T) {
	n := natstest.StartNode(t)
	_, js := natstest.Connect(t, n.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, leases, err := shard.Buckets(ctx, js, 5*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	const racers, rounds = 16, 20
	for round := range rounds {
		var wins atomic.Int32
		var winRev atomic.Uint64
		var wg sync.WaitGroup
		for g := range racers {
			wg.Go(func() {
				rev, err := leases.Create(ctx, "spot.BTCUSDT", fmt.Appendf(nil, "g%d", g))
				switch {
				case err == nil:
					wins.Add(1)
					winRev.Store(rev)
				case !errors.Is(err, jetstream.ErrKeyExists):
					t.Errorf("round %d: racer %d: %v", round, g, err)
				}
			})
		}
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("round %d: %d racers won the same key", round, w)
		}
		rev := winRev.Load()
		// The losers' idea of the revision is stale: refused.
		if _, err := leases.Update(ctx, "spot.BTCUSDT", []byte("loser"), rev-1); !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			t.Fatalf("round %d: update at a stale revision: %v", round, err)
		}
		if err := leases.Delete(ctx, "spot.BTCUSDT", jetstream.LastRevision(rev)); err != nil {
			t.Fatalf("round %d: delete at the held revision: %v", round, err)
		}
	}
}

// Eight instances start at once and race for 16 symbols, then one leaves,
// one dies and two join: at no time do two instances hold a symbol (the
// ledger sees every Acquire and Release), and each round of changes ends
// with every symbol held by its desired owner.
func TestLeaseExclusivityUnderChurn(t *testing.T) {
	n := natstest.StartNode(t)
	f := &fleet{t: t, urls: []string{n.URL()}, ttl: 900 * time.Millisecond, replicas: 1, syms: symbols(16), led: newLedger()}
	for i := range 8 {
		f.start(fmt.Sprintf("m%d", i+1))
	}
	kv := leasesKV(t, n.URL())
	f.waitConverged(kv, 30*time.Second, "8 racing instances to converge")
	f.all[0].stop(t)
	f.waitConverged(kv, 30*time.Second, "convergence after m1 left")
	f.all[1].crash()
	f.start("m9")
	f.start("m10")
	f.waitConverged(kv, 30*time.Second, "convergence after m2 died and m9, m10 joined")
	f.led.check(t)
	var st shard.Status
	for _, in := range f.all {
		s := in.m.Status()
		st.Acquired += s.Acquired
		st.Released += s.Released
		st.Lost += s.Lost
	}
	t.Logf("acquired %d, handed over %d, lost %d", st.Acquired, st.Released, st.Lost)
	if lost := f.all[1].m.Status().Lost; lost == 0 && len(f.all[1].m.Owned()) != 0 {
		t.Errorf("the dead instance still counts %v as owned", f.all[1].m.Owned())
	}
}

// An instance that stops renewing loses its symbols to the others within
// the bound TTL + TTL/3, and not before its leases expire.
func TestFailoverWithinBound(t *testing.T) {
	n := natstest.StartNode(t)
	ttl := *failoverTTL
	f := &fleet{t: t, urls: []string{n.URL()}, ttl: ttl, replicas: 1, syms: symbols(12), led: newLedger()}
	for i := range 3 {
		f.start(fmt.Sprintf("m%d", i+1))
	}
	kv := leasesKV(t, n.URL())
	f.waitConverged(kv, 30*time.Second, "3 instances to converge")
	victim := f.all[0]
	moved := victim.m.Owned()
	if len(moved) == 0 {
		t.Fatal("the victim owns nothing: nothing to fail over (spread broken?)")
	}
	crashed := time.Now()
	victim.crash()
	var took time.Duration
	waitFor(t, 10*ttl+10*time.Second, "the dead instance's symbols to move", func() bool {
		h := f.led.snapshot()
		for _, s := range moved {
			if h[s] == "" || h[s] == victim.id {
				return false
			}
		}
		took = time.Since(crashed)
		return true
	})
	f.waitConverged(kv, 30*time.Second, "convergence over the survivors")
	f.led.check(t)
	bound := ttl + ttl/3
	t.Logf("failover of %d symbols: %v after the crash (TTL %v, bound %v)", len(moved), took.Round(time.Millisecond), ttl, bound)
	// The last renewal was at most TTL/3 before the crash: the leases
	// cannot have been free before 2/3 of the TTL.
	if took < 2*ttl/3 {
		t.Errorf("symbols moved %v after the crash: before their leases could expire", took)
	}
	// Generous on a loaded machine: the bound plus one more TTL.
	if took > bound+ttl {
		t.Errorf("failover took %v, bound %v", took, bound)
	}
}

// A member joining takes exactly the symbols it is now the desired owner
// of; no other symbol changes hands.
func TestJoinMovesMinimally(t *testing.T) {
	n := natstest.StartNode(t)
	f := &fleet{t: t, urls: []string{n.URL()}, ttl: time.Second, replicas: 1, syms: symbols(30), led: newLedger()}
	for i := range 3 {
		f.start(fmt.Sprintf("m%d", i+1))
	}
	kv := leasesKV(t, n.URL())
	f.waitConverged(kv, 30*time.Second, "3 instances to converge")
	before := f.led.snapshot()
	var released0 int64
	for _, in := range f.all {
		released0 += in.m.Status().Released
	}
	f.start("m4")
	f.waitConverged(kv, 30*time.Second, "convergence with m4")
	after := f.led.snapshot()
	moved := 0
	for _, s := range f.syms {
		if after[s] != before[s] {
			moved++
			if after[s] != "m4" {
				t.Errorf("%s moved %s -> %s", s, before[s], after[s])
			}
		}
	}
	var released, lost int64
	for _, in := range f.all[:3] {
		st := in.m.Status()
		released += st.Released
		lost += st.Lost
	}
	if moved == 0 {
		t.Error("m4 took nothing")
	}
	if released-released0 != int64(moved) || lost != 0 {
		t.Errorf("%d symbols moved but the old members handed over %d and lost %d", moved, released-released0, lost)
	}
	t.Logf("m4 joined: %d of %d symbols moved", moved, len(f.syms))
	f.led.check(t)
}

// Three instances on a three-node cluster (buckets with 3 replicas): the
// node leading the leases bucket dies. Leases keep being renewed on the
// other two, every symbol keeps one owner, and the node rejoins.
func TestClusterLosesNode(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	ttl := 3 * time.Second
	if raceEnabled {
		ttl = 2 * ttl
	}
	f := &fleet{t: t, urls: urls, ttl: ttl, replicas: 3, syms: symbols(24), led: newLedger()}
	m4Gets := 0
	for _, s := range f.syms {
		if shard.Owner([]string{"m1", "m2", "m3", "m4"}, s) == "m4" {
			m4Gets++
		}
	}
	if m4Gets == 0 {
		t.Fatal("m4 would own none of the symbols: the rejoin check would prove nothing")
	}
	for i := range 3 {
		f.start(fmt.Sprintf("m%d", i+1))
	}
	kv := leasesKV(t, c.URLs())
	f.waitConverged(kv, 60*time.Second, "3 instances on the cluster to converge")
	revs := map[string]uint64{}
	for _, in := range f.all {
		for s, r := range in.m.Status().Owned {
			revs[s] = r
		}
	}
	victim := c.StreamLeader("KV_" + shard.LeasesBucket)
	if victim == nil {
		t.Fatal("no leader for the leases bucket")
	}
	killed := time.Now()
	victim.Kill()
	// Every lease renewed after the kill, by its same owner.
	waitFor(t, 60*time.Second, "renewals after the node's loss", func() bool {
		for _, in := range f.all {
			st := in.m.Status()
			for s, r := range st.Owned {
				if r <= revs[s] {
					return false
				}
			}
			if len(st.Owned) == 0 {
				return false
			}
		}
		return true
	})
	renewed := time.Since(killed)
	f.waitConverged(kv, 60*time.Second, "convergence with a node down")
	var lost int64
	for _, in := range f.all {
		lost += in.m.Status().Lost
	}
	t.Logf("node %s (leases leader) killed: every lease renewed %v later; leases lost meanwhile: %d", victim.Name, renewed.Round(time.Millisecond), lost)
	victim.Restart()
	c.WaitReady(t)
	m4 := f.start("m4")
	f.waitConverged(kv, 60*time.Second, "convergence after the node rejoined and m4 joined")
	if got := len(m4.m.Owned()); got != m4Gets {
		t.Errorf("m4 owns %d symbols, want %d", got, m4Gets)
	}
	f.led.check(t)
}

var verbose = flag.Bool("shard.log", false, "log the members")

func testLogger(id string) *slog.Logger {
	if *verbose {
		return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("id", id)
	}
	return slog.New(slog.NewTextHandler(&testLogs, nil)).With("id", id)
}

// testLogs keeps the members' and services' latest log lines, so a test
// that fails on a machine where it cannot be re-run with -shard.log still
// shows what they did (dumpLogsOnFailure).
var testLogs = logRing{max: 400}

type logRing struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, strings.TrimRight(string(p), "\n"))
	if len(r.lines) > 2*r.max {
		r.lines = append(r.lines[:0], r.lines[len(r.lines)-r.max:]...)
	}
	return len(p), nil
}

// dumpLogsOnFailure starts the ring afresh for t and logs its last lines
// if t fails.
func dumpLogsOnFailure(t *testing.T) {
	testLogs.mu.Lock()
	testLogs.lines = nil
	testLogs.mu.Unlock()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		testLogs.mu.Lock()
		defer testLogs.mu.Unlock()
		tail := testLogs.lines[max(len(testLogs.lines)-testLogs.max, 0):]
		t.Logf("last %d log lines of the members and services:\n%s", len(tail), strings.Join(tail, "\n"))
	})
}

// A member configured with another TTL than the existing bucket's runs on
// the bucket's: it renews often enough and gives up before the server
// frees its leases.
func TestMemberAdoptsBucketTTL(t *testing.T) {
	n := natstest.StartNode(t)
	_, js := natstest.Connect(t, n.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := shard.Buckets(ctx, js, time.Second, 1); err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, urls: []string{n.URL()}, ttl: 20 * time.Second, replicas: 1, syms: symbols(4), led: newLedger()}
	in := f.start("m1")
	kv := leasesKV(t, n.URL())
	f.waitConverged(kv, 20*time.Second, "m1 to own every symbol")
	revs := in.m.Status().Owned
	// With the configured 20 s the first renewal would come after 6.7 s;
	// on the bucket's 1 s it comes within a third of a second.
	waitFor(t, 5*time.Second, "renewals at the bucket's pace", func() bool {
		for s, r := range in.m.Status().Owned {
			if r <= revs[s] {
				return false
			}
		}
		return true
	})
	f.led.check(t)
}
