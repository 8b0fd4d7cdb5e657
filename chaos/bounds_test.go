package chaos

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/feed"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// heapInuse returns HeapInuse after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC() // the second cycle frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// countFDs counts this process's open file descriptors.
func countFDs(t testing.TB) int {
	t.Helper()
	n := openFDs()
	if n < 0 {
		t.Fatal("cannot count file descriptors: the bound test needs Linux /proc")
	}
	return n
}

// TestBoundsReconnectCycles drops the service's connection 30 times and
// checks that neither file descriptors nor goroutines grow from cycle to
// cycle, and that both are back to where they were once everything stops.
func TestBoundsReconnectCycles(t *testing.T) {
	h := newTestHarness(t, nil)
	if _, err := h.Recording(SpotBTC); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fd0, g0 := countFDs(t), runtime.NumGoroutine()
	ignore := goleak.IgnoreCurrent()
	s, err := h.open(ctx, SpotBTC, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.warmUp(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := FaultByName("drop-reset")
	if err != nil {
		t.Fatal(err)
	}
	const warm, cycles = 5, 30
	var fdWarm, gWarm int
	for i := range cycles {
		if _, _, err := s.inject(ctx, &f); err != nil {
			t.Fatalf("cycle %d: %v", i+1, err)
		}
		if i+1 == warm {
			fdWarm, gWarm = countFDs(t), runtime.NumGoroutine()
		}
	}
	// Connections being torn down can hold a descriptor or a goroutine for a
	// moment: allow a handful, not one per cycle.
	fdEnd, gEnd := countFDs(t), runtime.NumGoroutine()
	t.Logf("after %d cycles: fds %d (after %d: %d, before start: %d); goroutines %d (after %d: %d, before start: %d)",
		cycles, fdEnd, warm, fdWarm, fd0, gEnd, warm, gWarm, g0)
	if fdEnd > fdWarm+4 {
		t.Errorf("file descriptors grew from %d after %d reconnects to %d after %d", fdWarm, warm, fdEnd, cycles)
	}
	if gEnd > gWarm+6 {
		t.Errorf("goroutines grew from %d after %d reconnects to %d after %d", gWarm, warm, gEnd, cycles)
	}
	v, err := s.verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.missing+v.duplicates+v.mismatches != 0 {
		t.Errorf("after %d reconnects: missing %d duplicates %d mismatches %d: %v", cycles, v.missing, v.duplicates, v.mismatches, v.reasons)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if n, detail := settleGoroutines(g0, ignore, 5*time.Second); n > 0 {
		t.Errorf("%d goroutines left after stop: %s", n, detail)
	}
	deadline := time.Now().Add(3 * time.Second)
	for countFDs(t) > fd0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := countFDs(t); n > fd0 {
		t.Errorf("file descriptors: %d before the simulator and service started, %d after they stopped", fd0, n)
	}
}

// TestBoundsTradeFlood floods the service: 8 copies of spot BTCUSDT
// replayed unpaced (as fast as the service reads, so nothing is dropped),
// looping. The heap, measured after collections, must not grow with the
// trades processed: rings and books are bounded, only the simulator's own
// trade list (one per recorded symbol, shared by the copies) grows.
func TestBoundsTradeFlood(t *testing.T) {
	h := newTestHarness(t, nil)
	rec, err := h.Recording(SpotBTC)
	if err != nil {
		t.Fatal(err)
	}
	const copies = 8
	// A short send queue: unpaced, the replay waits for room instead of
	// dropping, and fewer frames in flight make the heap samples steadier.
	srv, err := sim.New(sim.Config{Recording: rec, Speed: -1, Loop: true, Fanout: copies, Paused: true, WeightLimit: 1 << 30, SendQueue: 256})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	}()
	ws, rest := srv.URL()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	logs := newLogRing(nil, 10)
	svc, err := service.New(service.Config{Symbols: srv.Symbols(), Market: market.Spot, WSURL: ws, RESTURL: rest,
		StaleTimeout: 5 * time.Second, LogTrades: -1,
		// Two bars a series (each bar keeps a footprint as long as the
		// largest seen) and a one-minute session profile (it holds every
		// price traded in the session): both fill during the warm-up, so
		// what remains to measure is growth that has no bound.
		Flow:       flow.Config{BarHistory: 2, LargeHistory: 100, ProfileSession: time.Minute},
		HTTPClient: &http.Client{Transport: tr}, Logger: slog.New(logs),
		DialLimiter: feed.NewDialLimiter(300, 5*time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := svc.Stop(sctx); err != nil {
			t.Error(err)
		}
	}()
	if !waitFor(ctx, 10*time.Second, func() bool {
		st := svc.Status()
		return len(st.Streams) > 0 && st.Streams[0].State == feed.StateConnected.String()
	}) {
		t.Fatalf("not connected: %+v", svc.Status())
	}
	srv.Play()
	time.Sleep(time.Second) // warm-up: books synced, rings filling
	type point struct {
		heap   uint64
		trades int64
	}
	var pts []point
	for range 9 {
		time.Sleep(700 * time.Millisecond)
		pts = append(pts, point{heapInuse(), svc.Status().Engine.Trades})
	}
	// Frames in flight (depth frames up to 35 KB) make single samples noisy,
	// upwards: compare the lowest of the first four with the lowest of the
	// last four, which a leak raises and a spike does not.
	low := func(p []point) point {
		return slices.MinFunc(p, func(a, b point) int { return cmp.Compare(a.heap, b.heap) })
	}
	first, last := low(pts[1:5]), low(pts[len(pts)-4:])
	first.trades, last.trades = pts[1].trades, pts[len(pts)-2].trades
	trades := last.trades - first.trades
	var series []string
	for _, p := range pts {
		series = append(series, mib(p.heap))
	}
	growth := int64(last.heap) - int64(first.heap)
	st := svc.Status()
	t.Logf("flood: %d symbols, %d trades processed while measured (%d in all, %.0f/s), heap %s -> %s (growth %+d B, %.1f B/trade; samples %v); engine %+v; simulator %s",
		copies, trades, st.Engine.Trades, float64(trades)/(700*time.Millisecond*time.Duration(len(pts)-3)).Seconds(),
		mib(first.heap), mib(last.heap), growth, float64(growth)/float64(max(trades, 1)), series, st.Engine, simSummary(srv.Stats()))
	// Unpaced, even a loaded 2-core CI machine passes thousands of trades a
	// second (runs here: 2,000 to 47,000/s); fewer means the flood never came.
	if trades < 2_000 {
		t.Fatalf("only %d trades while measuring: not a flood (warnings: %v)", trades, logs.last(5))
	}
	// The simulator's list grows by one aggTrade (64 B, up to twice that
	// with slice growth) per 8 trades the service processes; allow 32 B a
	// trade and 8 MiB of slack (runs measured 1.4 to 3.7 MiB): a per-trade
	// leak in the service shows above it.
	if limit := max(8<<20, 32*trades); growth > limit {
		t.Errorf("heap grew %d B over %d trades (limit %d B)", growth, trades, limit)
	}
}

// TestBoundsDeepBook loads a synthetic book of 100,000 levels a side into
// the engine (a bound test, not a metric: real snapshots have at most
// 5,000), applies 20,000 diff frames through the real decoder, and checks
// the book against a map kept alongside, the memory it takes, and that the
// updates do not grow it.
func TestBoundsDeepBook(t *testing.T) {
	const (
		n     = 100_000
		ups   = 3_000
		sym   = "DEEPUSDT"
		tick  = fixed.Dec(1_000_000)         // 0.01
		base  = fixed.Dec(5_000_000_000_000) // 50000.00
		unitQ = fixed.Dec(10_000_000)        // 0.1
	)
	e := engine.New(engine.Config{Market: market.Spot, MarketKnown: true, NoBookHistory: true})
	e.AddSymbol(sym, market.Spot, true)
	ref := [2]map[fixed.Dec]fixed.Dec{{}, {}} // bids, asks
	frame := func(id int64, bid bool, p, q fixed.Dec) []byte {
		lv := fmt.Sprintf(`[["%s","%s"]]`, p, q)
		b, a := lv, "[]"
		if !bid {
			b, a = a, b
		}
		return fmt.Appendf(nil, `{"e":"depthUpdate","E":%d,"s":"%s","U":%d,"u":%d,"b":%s,"a":%s}`, 1_700_000_000_000+id, sym, id, id, b, a)
	}
	// The first event starts the sync; the snapshot then covers it.
	if _, err := e.HandleFrame(frame(1000, true, base, unitQ), market.Spot, true); err != nil {
		t.Fatal(err)
	}
	snap := &market.DepthSnapshot{Symbol: sym, LastUpdateID: 1000, Bids: make([]market.Level, n), Asks: make([]market.Level, n)}
	for i := range n {
		q := unitQ * fixed.Dec(1+i%9)
		snap.Bids[i] = market.Level{Price: base - fixed.Dec(i)*tick, Qty: q}
		snap.Asks[i] = market.Level{Price: base + fixed.Dec(i+1)*tick, Qty: q}
	}
	h0 := heapInuse()
	if err := e.ApplySnapshot(snap, market.Spot, true); err != nil {
		t.Fatal(err)
	}
	h1 := heapInuse() // the snapshot is still alive: the difference is the book
	for i := range n {
		ref[0][snap.Bids[i].Price] = snap.Bids[i].Qty
		ref[1][snap.Asks[i].Price] = snap.Asks[i].Qty
	}
	snap = nil
	h1b := heapInuse()
	bk := e.Symbol(sym).Book()
	if !e.Symbol(sym).Synced() || bk.Len(market.Buy) != n || bk.Len(market.Sell) != n {
		t.Fatalf("after the snapshot: synced %v, %d bids, %d asks; want %d a side", e.Symbol(sym).Synced(), bk.Len(market.Buy), bk.Len(market.Sell), n)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	deepest := [2]fixed.Dec{base - fixed.Dec(n-1)*tick, base + fixed.Dec(n)*tick}
	id := int64(1000)
	start := time.Now()
	for k := range ups {
		side := k % 2
		bid := side == 0
		var p, q fixed.Dec
		i := fixed.Dec(rng.IntN(n))
		switch k % 3 {
		case 0, 1: // change a quantity (or add a level inside the range)
			p = base - i*tick
			if !bid {
				p = base + (i+1)*tick
			}
			q = unitQ * fixed.Dec(1+rng.IntN(50))
		case 2: // remove the deepest level, add one beyond it: depth stays n
			p = deepest[side]
			id++
			if _, err := e.HandleFrame(frame(id, bid, p, 0), market.Spot, true); err != nil {
				t.Fatal(err)
			}
			delete(ref[side], p)
			if bid {
				p = p - 2*tick
				deepest[side] = p
			} else {
				p = p + 2*tick
				deepest[side] = p
			}
			q = unitQ
		}
		id++
		if _, err := e.HandleFrame(frame(id, bid, p, q), market.Spot, true); err != nil {
			t.Fatal(err)
		}
		ref[side][p] = q
	}
	elapsed := time.Since(start)
	h2 := heapInuse() // the reference maps are alive for both h1b and h2
	if got := e.Symbol(sym).Book().UpdateID(); got != id {
		t.Fatalf("book at update id %d, want %d (stats %+v)", got, id, e.Symbol(sym).Sync.Stats())
	}
	for side, s := range []market.Side{market.Buy, market.Sell} {
		if got := bk.Len(s); got != len(ref[side]) {
			t.Fatalf("%v side: %d levels, reference %d", s, got, len(ref[side]))
		}
		prev := fixed.Dec(0)
		i := 0
		for lv := range bk.Levels(s) {
			if want, ok := ref[side][lv.Price]; !ok || want != lv.Qty {
				t.Fatalf("%v level %d: %v x %v, reference has %v (%v)", s, i, lv.Price, lv.Qty, want, ok)
			}
			if i > 0 && ((s == market.Buy && lv.Price >= prev) || (s == market.Sell && lv.Price <= prev)) {
				t.Fatalf("%v level %d: %v not beyond %v", s, i, lv.Price, prev)
			}
			prev = lv.Price
			i++
		}
	}
	if bk.Crossed() {
		t.Fatal("book crossed")
	}
	levelBytes := int64(2 * n * 16) // two sides of {price, qty int64}
	t.Logf("deep book: %d levels a side take %s of heap (%.1f B/level); %d updates in %v (%v each: removing and adding the deepest level moves the whole sorted slice), heap growth over them %s",
		n, mib(h1-h0), float64(int64(h1)-int64(h0))/float64(2*n), ups+ups/3, elapsed, elapsed/time.Duration(ups+ups/3), fmt.Sprintf("%+d B", int64(h2)-int64(h1b)))
	// Sorted slices grown by append hold at most twice what they use.
	if growth := int64(h1) - int64(h0); growth > 2*levelBytes+4<<20 {
		t.Errorf("a %d-level book took %d B of heap; want at most %d", 2*n, growth, 2*levelBytes+4<<20)
	}
	if growth := int64(h2) - int64(h1b); growth > 4<<20 {
		t.Errorf("%d updates on a constant-depth book grew the heap by %d B", ups, growth)
	}
}
