package shard_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/feed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/natstest"
	"github.com/orderflow/orderflow/rest"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/shard"
	"github.com/orderflow/orderflow/sim"
)

// feedInstance is one `orderflow run --bus ... --shard` wired in process:
// a sharded service publishing on the bus, and its shard member.
type feedInstance struct {
	id     string
	nc     *nats.Conn // the publisher's
	lnc    *nats.Conn // the shard member's
	svc    *service.Service
	pub    *bus.Publisher
	m      *shard.Member
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func startFeed(t *testing.T, id, urls string, srv *sim.Server, syms []string, ttl time.Duration, led *ledger, log *slog.Logger) *feedInstance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &feedInstance{id: id, cancel: cancel}
	nc, err := bus.Connect(ctx, urls, bus.ConnectConfig{Name: id, ReconnectWait: 50 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	f.nc = nc
	f.pub, err = bus.NewPublisher(nc, bus.PublisherConfig{Market: srv.Market(), AckTimeout: 5 * time.Second,
		DrainTimeout: 3 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ws, restURL := srv.URL()
	f.svc, err = service.New(service.Config{Sharded: true, Market: srv.Market(), WSURL: ws, RESTURL: restURL,
		Logger: log, DialLimiter: feed.NewDialLimiter(1<<16, time.Second), LogTrades: -1, Backfill: 100})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.AddEventHook(f.pub.Hook)
	// The leases get a connection of their own: renewals must not queue
	// behind the publisher's stream of messages.
	f.lnc, err = bus.Connect(ctx, urls, bus.ConnectConfig{Name: id + "-leases", ReconnectWait: 50 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(f.lnc)
	if err != nil {
		t.Fatal(err)
	}
	acq, rel := shard.ServiceHooks(f.svc, js, srv.Market())
	la, lr := led.acquire(id), led.release(id)
	f.m, err = shard.New(shard.Config{JetStream: js, Market: srv.Market(), Symbols: syms, ID: id, TTL: ttl, Replicas: 3,
		Logger: log,
		Acquire: func(ctx context.Context, s string) error {
			if err := acq(ctx, s); err != nil {
				return err
			}
			return la(ctx, s)
		},
		Release: func(ctx context.Context, s string) error {
			// The ledger first: from here the symbol is no longer streamed
			// here (RemoveSymbol drops its state before it returns).
			lr(ctx, s)
			return rel(ctx, s)
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.wg.Go(func() {
		if err := f.pub.Run(ctx); err != nil {
			t.Logf("%s: publisher: %v", id, err)
		}
	})
	if err := f.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	f.wg.Go(func() {
		if err := f.m.Run(ctx); err != nil {
			t.Errorf("%s: member: %v", id, err)
		}
	})
	t.Cleanup(func() { f.stop(t) })
	return f
}

// crash is the process dying: the bus connection drops at once (no
// release, nothing more published) and the streams stop.
func (f *feedInstance) crash(t *testing.T) {
	f.nc.Close()
	f.lnc.Close()
	f.stop(t)
}

func (f *feedInstance) stop(t *testing.T) {
	f.once.Do(func() {
		f.cancel() // the member leaves (releases) and the publisher drains
		f.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.svc.Stop(ctx); err != nil {
			t.Errorf("%s: stop: %v", f.id, err)
		}
		f.nc.Close()
		f.lnc.Close()
	})
}

func e2eRecording(t *testing.T) *sim.Recording {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	r, err := sim.LoadRecording("", filepath.Join(filepath.Dir(file), "..", "testdata", "binance", "cryptofeed-spot-10sym-20210405.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// allTrades pages through every aggregate trade the simulator published
// for a symbol from id from on, through REST: the reference the bus is
// compared with.
func allTrades(t *testing.T, rc *rest.Client, sym string, from int64) []market.Trade {
	t.Helper()
	var out []market.Trade
	for {
		id := from
		page, err := rc.AggTrades(context.Background(), sym, rest.AggTradesQuery{FromID: &id, Limit: 1000}, nil)
		if err != nil {
			t.Fatalf("REST trades of %s from %d: %v", sym, from, err)
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out
		}
		from = page[len(page)-1].ID + 1
	}
}

// TestClusterFailoverEndToEnd is issue 10's test: three feed instances
// share eight symbols of a real recording over a three-node NATS cluster;
// during streaming one instance dies and the node leading the ORDERFLOW
// stream is killed. Every symbol keeps exactly one owner at a time (the
// ledger), ends with its desired owner among the survivors, and the
// trades on the bus, read back with a consumer, are every aggregate id
// the simulator published (REST, an independent path) from each symbol's
// first stored trade to its last: none missing, none twice, in order,
// with the recorded price, quantity and side. A query-tier service reads
// the cluster with the bus Source through the kills: each symbol's trade
// history is the REST reference in id order from the first stored trade
// (the Source restores the order of publishes retried across the leader
// change), and its totals (trades, buy and sell volume, VWAP) equal a
// math/big sum over the reference.
func TestClusterFailoverEndToEnd(t *testing.T) {
	dumpLogsOnFailure(t)
	rec := e2eRecording(t)
	// Under the race detector the three in-process servers run several
	// times slower, and replicating the feeds' messages three ways must
	// still keep up on a small shared machine: a slower market there.
	speed := 10.0
	if raceEnabled {
		speed = 3
	}
	srv, err := sim.New(sim.Config{Recording: rec, Speed: speed, Loop: true, WeightLimit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// NEOUSDC and RENBTCETH have no aggTrades in the recording.
	syms := slices.DeleteFunc(srv.Symbols(), func(s string) bool {
		return strings.HasPrefix(s, "NEO") || strings.HasPrefix(s, "RENBTC")
	})

	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := bus.Connect(ctx, c.URLs(), bus.ConnectConfig{Name: "test", ReconnectWait: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureStream(ctx, js, bus.StreamConfig{Replicas: 3, Retention: time.Hour, Memory: raceEnabled}); err != nil {
		t.Fatal(err)
	}

	// The query tier: one consumer service of every symbol, reading the
	// cluster from before the first publish to the end.
	cnc, err := bus.Connect(ctx, c.URLs(), bus.ConnectConfig{Name: "query", ReconnectWait: 50 * time.Millisecond, Logger: testLogger("query")})
	if err != nil {
		t.Fatal(err)
	}
	defer cnc.Close()
	qsrc, err := bus.NewSource(bus.SourceConfig{Conn: cnc, RetryWait: 200 * time.Millisecond, Logger: testLogger("query")})
	if err != nil {
		t.Fatal(err)
	}
	query, err := service.New(service.Config{Symbols: syms, Market: srv.Market(), Source: qsrc, LogTrades: -1,
		Logger: testLogger("query"), Flow: flow.Config{HistorySize: 1 << 20, HistoryMaxAge: 1000 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := query.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := query.Stop(sctx); err != nil {
			t.Errorf("query service: stop: %v", err)
		}
	}()

	ttl := 2 * time.Second
	if raceEnabled {
		ttl = shard.DefaultTTL
	}
	led := newLedger()
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	var feeds []*feedInstance
	for i := range 3 {
		// Each prefers another node, as instances spread over hosts would.
		u := append(slices.Clone(urls[i:]), urls[:i]...)
		id := fmt.Sprintf("feed%d", i+1)
		feeds = append(feeds, startFeed(t, id, strings.Join(u, ","), srv, syms, ttl, led, testLogger(id)))
	}
	live := func() []string {
		var ids []string
		for _, f := range feeds {
			if !f.nc.IsClosed() {
				ids = append(ids, f.id)
			}
		}
		return ids
	}
	converged := func() bool {
		h := led.snapshot()
		for _, s := range syms {
			if h[s] == "" || h[s] != shard.Owner(live(), s) {
				return false
			}
		}
		return true
	}
	// The simulator's REST: what it published, the reference.
	_, restURL := srv.URL()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	rc, err := rest.New(rest.Options{BaseURL: restURL, Market: srv.Market(), HTTPClient: hc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	lastErr := map[string]error{} // the latest failed lookup of each symbol
	lastOnBus := func(s string) int64 {
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		id, err := shard.LastTradeID(octx, js, srv.Market(), s)
		if err != nil {
			lastErr[s] = err
			return -1
		}
		return id
	}
	// waitPublished waits until the last trade on the bus of each symbol
	// is past marks[symbol]; on a timeout it says, for each symbol still
	// waited for, what the bus, the ledger, the owner's service and
	// publisher, and the simulator show.
	waitPublished := func(what string, symbols []string, marks map[string]int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			var behind []string
			for _, s := range symbols {
				if lastOnBus(s) <= marks[s] {
					behind = append(behind, s)
				}
			}
			if len(behind) == 0 {
				t.Logf("%s: after %v", what, time.Since(deadline.Add(-60*time.Second)).Round(time.Millisecond))
				return
			}
			if time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			owners := led.snapshot()
			var b strings.Builder
			for _, s := range behind {
				fmt.Fprintf(&b, "\n%s: on the bus %d (mark %d, last lookup error %v), owner %q", s, lastOnBus(s), marks[s], lastErr[s], owners[s])
				for _, f := range feeds {
					if f.id != owners[s] {
						continue
					}
					for _, ss := range f.svc.Status().Symbols {
						if ss.Symbol == s {
							fmt.Fprintf(&b, ", its service: %d trades, last id %d, book %s", ss.Trades, ss.LastTrade, ss.BookState)
						}
					}
					fmt.Fprintf(&b, ", its backfill %+v, publisher %+v", f.svc.Status().Backfill, f.pub.Stats())
				}
				if page, err := rc.AggTrades(ctx, s, rest.AggTradesQuery{Limit: 1}, nil); err == nil && len(page) == 1 {
					fmt.Fprintf(&b, ", simulator's latest trade %d", page[0].ID)
				} else {
					fmt.Fprintf(&b, ", simulator's latest trade: none (%v)", err)
				}
			}
			t.Fatalf("timed out after 60s waiting for %s (simulator clock %s, %+v):%s", what, srv.Now().UTC().Format(time.RFC3339Nano), srv.Stats(), b.String())
		}
	}
	waitFor(t, 60*time.Second, "the three instances to share the symbols", converged)
	waitPublished("trades of every symbol on the bus", syms, nil)

	// The instance owning the most symbols dies; then the node leading the
	// ORDERFLOW stream.
	victim := feeds[0]
	for _, f := range feeds {
		if len(f.m.Owned()) > len(victim.m.Owned()) {
			victim = f
		}
	}
	moved := victim.m.Owned()
	crashed := time.Now()
	victim.crash(t)
	node := c.StreamLeader(bus.StreamName)
	if node == nil {
		t.Fatal("no leader for the ORDERFLOW stream")
	}
	node.Kill()
	t.Logf("%s (owning %v) crashed and node %s (ORDERFLOW leader) killed", victim.id, moved, node.Name)
	waitFor(t, 60*time.Second, "the survivors to take the dead instance's symbols", converged)
	t.Logf("its %d symbols taken over %v after the crash (TTL %v)", len(moved), time.Since(crashed).Round(time.Millisecond), ttl)
	// Every taken-over symbol publishes again.
	marks := map[string]int64{}
	for _, s := range moved {
		marks[s] = lastOnBus(s)
	}
	waitPublished("trades of the taken-over symbols after the failover", moved, marks)

	// Stop the market and let the bus catch up with what was published.
	srv.Pause()
	latest := map[string]int64{}
	for _, s := range syms {
		page, err := rc.AggTrades(ctx, s, rest.AggTradesQuery{Limit: 1}, nil)
		if err != nil || len(page) != 1 {
			t.Fatalf("latest trade of %s: %v %v", s, page, err)
		}
		latest[s] = page[0].ID
	}
	waitFor(t, 60*time.Second, "the bus to hold every symbol's latest trade", func() bool {
		for _, s := range syms {
			if lastOnBus(s) != latest[s] {
				return false
			}
		}
		return true
	})

	// The consumer catches up with the bus.
	queried := func(s string) (tot flow.Totals, hist []market.Trade) {
		_ = query.ViewSymbol(s, func(e *engine.Symbol) error {
			tot, hist = e.Flow.Totals(), e.Flow.Trades(flow.TradeQuery{}, nil)
			return nil
		})
		return tot, hist
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var behind []string
		for _, s := range syms {
			if tot, _ := queried(s); tot.LastID != latest[s] {
				behind = append(behind, fmt.Sprintf("%s at %d of %d", s, tot.LastID, latest[s]))
			}
		}
		if len(behind) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the query service did not apply every symbol's latest trade within 90s: %v; source %+v", behind, qsrc.Stats())
		}
	}

	// Read every trade back from the stream, in stream order, each
	// stored message once. The cluster may still be settling after the
	// kill (a new leader, its ephemeral consumers moving): a read that
	// fails ("no responders") resumes with a new consumer at the stream
	// sequence after the last message read, until a generous deadline.
	got := map[string][]bus.Trade{}
	filter := bus.MarketSubjects(srv.Market(), bus.TopicTrades)
	var lastSeq uint64 // stream sequence of the last message read
	total := -1        // trades stored, counted once the first consumer is up
	read := 0
	var readErrs []error
	readDeadline := time.Now().Add(60 * time.Second)
	for total < 0 || read < total {
		if time.Now().After(readDeadline) {
			t.Fatalf("reading the trades back: %d of %d after 60s; errors %v", read, total, readErrs)
		}
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
		if lastSeq > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, lastSeq+1
		}
		cons, err := js.OrderedConsumer(ctx, bus.StreamName, cfg)
		if err != nil {
			readErrs = append(readErrs, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if total < 0 {
			info, err := cons.Info(ctx)
			if err != nil {
				readErrs = append(readErrs, err)
				time.Sleep(200 * time.Millisecond)
				continue
			}
			total = int(info.NumPending)
		}
		for read < total {
			batch, err := cons.Fetch(min(total-read, 1000), jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				readErrs = append(readErrs, err)
				break
			}
			for m := range batch.Messages() {
				md, err := m.Metadata()
				if err != nil {
					t.Fatalf("metadata of %s: %v", m.Subject(), err)
				}
				if md.Sequence.Stream <= lastSeq {
					t.Fatalf("stream sequence %d read after %d", md.Sequence.Stream, lastSeq)
				}
				lastSeq = md.Sequence.Stream
				var tr bus.Trade
				if err := bus.DecodeTrade(m.Data(), &tr); err != nil {
					t.Fatalf("decode %s: %v", m.Subject(), err)
				}
				got[tr.Symbol] = append(got[tr.Symbol], tr)
				read++
			}
			if err := batch.Error(); err != nil {
				readErrs = append(readErrs, err)
				break
			}
		}
	}
	if len(readErrs) > 0 {
		t.Logf("reading back: %d reads resumed after %v", len(readErrs), readErrs)
	}
	for _, f := range feeds {
		t.Logf("%s: publisher %+v", f.id, f.pub.Stats())
	}
	inversions := 0
	for _, s := range syms {
		g := got[s]
		if len(g) == 0 {
			t.Errorf("%s: no trade on the bus", s)
			continue
		}
		// Every id once: each published trade from the first stored one
		// on, with its recorded fields.
		first := g[0].ID
		byID := map[int64]bus.Trade{}
		for i, b := range g {
			if _, dup := byID[b.ID]; dup {
				t.Errorf("%s: id %d on the bus twice", s, b.ID)
			}
			byID[b.ID] = b
			first = min(first, b.ID)
			if i > 0 && b.ID < g[i-1].ID {
				inversions++
				t.Logf("%s: id %d stored after %d", s, b.ID, g[i-1].ID)
			}
		}
		want := allTrades(t, rc, s, first)
		checkConsumer(t, s, queried, g[0].ID, want)
		if len(byID) != len(want) {
			t.Errorf("%s: %d distinct trades on the bus from id %d, the simulator published %d", s, len(byID), first, len(want))
		}
		for _, w := range want {
			b, ok := byID[w.ID]
			if !ok {
				t.Errorf("%s: id %d missing on the bus", s, w.ID)
				continue
			}
			side := "buy"
			if w.BuyerMaker {
				side = "sell"
			}
			if b.Price != w.Price || b.Qty != w.Qty || b.Side != side || b.TradeTime != w.Time {
				t.Errorf("%s: trade %d on the bus %+v, published %+v", s, w.ID, b, w)
			}
		}
	}
	t.Logf("query service's source: %+v", qsrc.Stats())
	led.check(t)
	var st shard.Status
	for _, f := range feeds {
		s := f.m.Status()
		st.Acquired += s.Acquired
		st.Released += s.Released
		st.Lost += s.Lost
	}
	n := 0
	for _, g := range got {
		n += len(g)
	}
	// Order is the publisher's matter (a publish retried after a failure
	// can be stored after later ones): counted and shown, not asserted.
	t.Logf("%d trades of %d symbols on the bus, each id once; %d stored out of id order; leases acquired %d, handed over %d, lost %d",
		n, len(syms), inversions, st.Acquired, st.Released, st.Lost)
}

// checkConsumer compares a query service's trades of sym with the REST
// reference from id from on (the first trade stored on the bus, where the
// consumer starts): the history (id, price, quantity, side, time) in id
// order, and the totals against a plain math/big loop over the reference.
func checkConsumer(t *testing.T, sym string, queried func(string) (flow.Totals, []market.Trade), from int64, ref []market.Trade) {
	t.Helper()
	ref = slices.DeleteFunc(slices.Clone(ref), func(tr market.Trade) bool { return tr.ID < from })
	tot, hist := queried(sym)
	if len(hist) != len(ref) {
		t.Errorf("%s: the query service holds %d trades from id %d, the simulator published %d", sym, len(hist), from, len(ref))
	}
	for i := range min(len(hist), len(ref)) {
		g, w := hist[i], ref[i]
		if g.ID != w.ID || g.Price != w.Price || g.Qty != w.Qty || g.BuyerMaker != w.BuyerMaker || g.Time != w.Time {
			t.Errorf("%s: query service's trade %d: %d %s %s maker=%v %d; published %d %s %s maker=%v %d", sym, i,
				g.ID, g.Price, g.Qty, g.BuyerMaker, g.Time, w.ID, w.Price, w.Qty, w.BuyerMaker, w.Time)
			break
		}
	}
	// Reference totals: raw fixed-point units (1e-8) summed with big.Int;
	// VWAP = sum(price*qty)/sum(qty), rounded half to even at 1e-8.
	buy, sell, notional := new(big.Int), new(big.Int), new(big.Int)
	for _, tr := range ref {
		q := big.NewInt(int64(tr.Qty))
		if tr.BuyerMaker {
			sell.Add(sell, q)
		} else {
			buy.Add(buy, q)
		}
		notional.Add(notional, new(big.Int).Mul(big.NewInt(int64(tr.Price)), q))
	}
	vol := new(big.Int).Add(buy, sell)
	vwap := new(big.Int)
	if vol.Sign() > 0 {
		var r big.Int
		vwap.QuoRem(notional, vol, &r)
		switch c := new(big.Int).Lsh(&r, 1).Cmp(vol); {
		case c > 0, c == 0 && vwap.Bit(0) == 1:
			vwap.Add(vwap, big.NewInt(1))
		}
	}
	dec := func(v flow.Volume) *big.Int {
		d, ok := v.Dec()
		if !ok {
			t.Fatalf("%s: volume %s out of range", sym, v)
		}
		return big.NewInt(int64(d))
	}
	if tot.Trades != int64(len(ref)) || dec(tot.BuyVolume).Cmp(buy) != 0 || dec(tot.SellVolume).Cmp(sell) != 0 ||
		big.NewInt(int64(tot.VWAP)).Cmp(vwap) != 0 {
		t.Errorf("%s: query service's totals: %d trades, buy %s, sell %s, VWAP %s; reference %d trades, buy %s, sell %s, VWAP %s (1e-8 units)",
			sym, tot.Trades, tot.BuyVolume, tot.SellVolume, tot.VWAP, len(ref), buy, sell, vwap)
	}
}
