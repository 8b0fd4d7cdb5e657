package bus_test

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/stacktest"
)

// publishedRun is one replay of a recording through a service into an
// embedded bus.
type publishedRun struct {
	b     *testBus
	pub   *bus.Publisher
	kind  market.Kind
	sym   string
	book  map[string][2][]market.Level // the service's final book per symbol
	bookU map[string]int64
	last  map[string]int64 // the service's last trade id per symbol
	bars  []flow.Bar       // the service's closed 1m bars (first symbol)
	large []flow.LargeTrade
}

// runToBus replays file through the simulator (as fast as the service
// reads, so nothing is dropped) into a service on the trade channel whose
// events a Publisher sends to an embedded JetStream, and waits until the
// service holds every recorded trade and the publisher has drained.
func runToBus(t *testing.T, file string, want []recTrade, lastU int64, pc bus.PublisherConfig) *publishedRun {
	t.Helper()
	b := mustBus(t, bus.StreamConfig{})
	f := stacktest.StartFeed(t, stacktest.FeedConfig{File: file, Conn: b.nc, Publisher: pc,
		Flow: flow.Config{BarIntervals: []time.Duration{time.Minute}}})
	srv, svc, pub := f.Sim, f.Service, f.Publisher
	out := &publishedRun{b: b, pub: pub, kind: srv.Market(), sym: srv.Symbols()[0],
		book: map[string][2][]market.Level{}, bookU: map[string]int64{}, last: map[string]int64{}}
	f.WaitCaughtUp(t, want[len(want)-1].ID, lastU)
	<-srv.Done()
	_ = svc.View(func(e *engine.Engine) error {
		for _, s := range e.Symbols() {
			if s.Name == out.sym {
				out.bars = s.Flow.Bars(time.Minute, 0)
				out.large = s.Flow.LargeTrades(0, nil)
			}
			out.last[s.Name] = s.Flow.Totals().LastID
			if s.Synced() {
				out.book[s.Name] = [2][]market.Level{s.Book().Bids(0, nil), s.Book().Asks(0, nil)}
				out.bookU[s.Name] = s.Book().UpdateID()
			}
		}
		return nil
	})
	f.StopService(t)
	if err := f.StopPublisher(); err != nil {
		t.Fatal(err)
	}
	st := pub.Stats()
	t.Logf("publisher: queued %v sent %d acked %d duplicates %d failed %d dropped %v", st.Queued, st.Sent, st.Acked, st.Duplicates, st.Failed, st.Dropped)
	for r, n := range st.Dropped {
		if n != 0 {
			t.Errorf("%d messages dropped (%s)", n, r)
		}
	}
	if st.Acked != st.Sent || st.Failed != 0 {
		t.Errorf("sent %d, acked %d, failed %d", st.Sent, st.Acked, st.Failed)
	}
	return out
}

// TestSimToBus replays real recordings (spot and USD-M) through the
// simulator, a service and the publisher into an embedded JetStream, then
// reads the stream back:
//   - every trade of the recording (read independently, with
//     encoding/json) is on the trades subject exactly once, in id order,
//     with its message id, exact price and quantity, taker side and times;
//   - a consumer that rebuilds the book from book.snapshot and book.delta
//     (a plain map, not package book) agrees with every periodic snapshot
//     and book.top on the way and ends equal to the service's book;
//   - publishing every trade again stores nothing new (JetStream dedupe).
func TestSimToBus(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		usdm       bool
	}{
		{"SpotBTCUSDT", "hft-spot-btcusdt-20240808.txt.gz", false},
		{"USDMBTCUSDT", "hft-usdm-btcusdt-20240718.txt.gz", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := stacktest.Testdata(tc.file)
			want, lastU := recordedTrades(t, file, tc.usdm)
			// Periodic snapshots every 10 s of exchange time, so the
			// replay checks the rebuilt book many times.
			r := runToBus(t, file, want, lastU, bus.PublisherConfig{SnapshotEvery: 10 * time.Second})
			checkTrades(t, r, want)
			checkBook(t, r)
			checkDerived(t, r)
			checkRepublish(t, r, want)
		})
	}
}

func checkTrades(t *testing.T, r *publishedRun, want []recTrade) {
	msgs := readAll(t, r.b, bus.Subject(r.kind, r.sym, bus.TopicTrades))
	if len(msgs) != len(want) {
		t.Errorf("%d trades on the bus, %d recorded", len(msgs), len(want))
	}
	for i := range min(len(msgs), len(want)) {
		var got bus.Trade
		if err := bus.DecodeTrade(msgs[i].data, &got); err != nil {
			t.Fatalf("trade %d: %v", i, err)
		}
		w := want[i]
		side := "buy"
		if w.BuyerMaker {
			side = "sell"
		}
		if got.ID != w.ID || !sameDec(got.Price.String(), w.Price) || !sameDec(got.Qty.String(), w.Qty) ||
			got.Side != side || got.TradeTime != w.Time || got.Time != w.EventTime || got.Symbol != r.sym || got.Market != r.kind.String() {
			t.Fatalf("trade %d: got %+v, recorded %+v", i, got, w)
		}
		if wantID := fmt.Sprintf("%s.%s.t.%d", r.kind, r.sym, w.ID); msgs[i].id != wantID {
			t.Fatalf("trade %d: message id %q, want %q", i, msgs[i].id, wantID)
		}
	}
}

// checkBook rebuilds the book the way docs/bus.md tells consumers to.
func checkBook(t *testing.T, r *publishedRun) {
	msgs := readAll(t, r.b, fmt.Sprintf("orderflow.%s.%s.book.*", r.kind, r.sym))
	var (
		bids, asks    map[fixed.Dec]fixed.Dec
		id            int64
		have          bool
		fresh         bool // no delta applied since the last sync snapshot
		syncs, checks int
		deltas, tops  int
	)
	apply := func(side map[fixed.Dec]fixed.Dec, ls []bus.Level) {
		for _, l := range ls {
			if l[1] == 0 {
				delete(side, l[0])
			} else {
				side[l[0]] = l[1]
			}
		}
	}
	load := func(ls []bus.Level) map[fixed.Dec]fixed.Dec {
		m := map[fixed.Dec]fixed.Dec{}
		apply(m, ls)
		return m
	}
	// best returns the n best levels of a side (all when n <= 0), best
	// first: a full sort for all, a bounded insertion for a top.
	best := func(side map[fixed.Dec]fixed.Dec, bid bool, n int) []bus.Level {
		better := func(a, b fixed.Dec) bool { return bid && a > b || !bid && a < b }
		if n <= 0 {
			ps := slices.Sorted(maps.Keys(side))
			if bid {
				slices.Reverse(ps)
			}
			out := make([]bus.Level, len(ps))
			for i, p := range ps {
				out[i] = bus.Level{p, side[p]}
			}
			return out
		}
		out := make([]bus.Level, 0, n+1)
		for p, q := range side {
			if len(out) == n && !better(p, out[n-1][0]) {
				continue
			}
			i := len(out)
			for i > 0 && better(p, out[i-1][0]) {
				i--
			}
			out = slices.Insert(out, i, bus.Level{p, q})
			if len(out) > n {
				out = out[:n]
			}
		}
		return out
	}
	for _, m := range msgs {
		v, err := bus.Decode(m.data)
		if err != nil {
			t.Fatalf("seq %d: %v", m.seq, err)
		}
		switch v := v.(type) {
		case *bus.BookSnapshot:
			if v.Reason != bus.ReasonPeriodic {
				bids, asks, id, have, fresh = load(v.Bids), load(v.Asks), v.LastUpdateID, true, true
				syncs++
				if want := fmt.Sprintf("%s.%s.s.%d", r.kind, r.sym, v.LastUpdateID); m.id != want {
					t.Fatalf("snapshot message id %q, want %q", m.id, want)
				}
				continue
			}
			if !have {
				t.Fatalf("seq %d: periodic snapshot before the first sync", m.seq)
			}
			if v.LastUpdateID != id || !slices.Equal(best(bids, true, 0), v.Bids) || !slices.Equal(best(asks, false, 0), v.Asks) {
				t.Fatalf("seq %d: periodic snapshot at %d differs from the book rebuilt at %d:\nbids %v\nasks %v", m.seq, v.LastUpdateID, id,
					levelDiff(best(bids, true, 0), v.Bids), levelDiff(best(asks, false, 0), v.Asks))
			}
			checks++
		case *bus.BookDelta:
			// The first delta after a sync may end at the snapshot's id
			// (USD-M's bridging event, u == lastUpdateId): it can carry
			// levels beyond the snapshot's depth, so it is applied.
			if !have || v.LastUpdateID < id || v.LastUpdateID == id && !fresh {
				continue
			}
			if r.kind == market.Spot && v.FirstUpdateID > id+1 {
				t.Fatalf("seq %d: delta %d..%d after %d: a gap without a resync", m.seq, v.FirstUpdateID, v.LastUpdateID, id)
			}
			if r.kind == market.USDM && (v.PrevUpdateID == nil || !fresh && *v.PrevUpdateID != id) {
				t.Fatalf("seq %d: USD-M delta %d without prev_update_id %d", m.seq, v.LastUpdateID, id)
			}
			fresh = false
			apply(bids, v.Bids)
			apply(asks, v.Asks)
			id = v.LastUpdateID
			deltas++
		case *bus.BookTop:
			if !have || v.LastUpdateID != id {
				t.Fatalf("seq %d: book.top at %d, rebuilt book at %d", m.seq, v.LastUpdateID, id)
			}
			if !slices.Equal(best(bids, true, 20), v.Bids) || !slices.Equal(best(asks, false, 20), v.Asks) {
				t.Fatalf("seq %d: book.top at %d differs from the rebuilt book", m.seq, id)
			}
			tops++
		default:
			t.Fatalf("seq %d: %T on a book subject", m.seq, v)
		}
	}
	t.Logf("book: %d syncs, %d deltas applied, %d periodic snapshots and %d tops checked", syncs, deltas, checks, tops)
	if syncs == 0 || deltas == 0 || checks == 0 || tops == 0 {
		t.Fatalf("too little checked: %d syncs, %d deltas, %d periodic snapshots, %d tops", syncs, deltas, checks, tops)
	}
	fb, ok := r.book[r.sym]
	if !ok {
		t.Fatal("the service's book is not synced at the end")
	}
	if id != r.bookU[r.sym] {
		t.Fatalf("rebuilt book at %d, the service's at %d", id, r.bookU[r.sym])
	}
	conv := func(ls []market.Level) []bus.Level {
		out := make([]bus.Level, len(ls))
		for i, l := range ls {
			out[i] = bus.Level{l.Price, l.Qty}
		}
		return out
	}
	if !slices.Equal(best(bids, true, 0), conv(fb[0])) || !slices.Equal(best(asks, false, 0), conv(fb[1])) {
		t.Fatal("the rebuilt book differs from the service's")
	}
}

// checkRepublish sends every recorded trade again through a second
// publisher (a failed-over owner would): JetStream stores nothing new and
// acknowledges each as a duplicate.
func checkRepublish(t *testing.T, r *publishedRun, want []recTrade) {
	subj := bus.Subject(r.kind, r.sym, bus.TopicTrades)
	before := countSubject(t, r.b, subj)
	pub, err := bus.NewPublisher(r.b.nc, bus.PublisherConfig{Market: r.kind, Logger: stacktest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		tr := market.Trade{Symbol: r.sym, ID: w.ID, FirstID: w.ID, LastID: w.ID, Price: fixed.MustParse(w.Price),
			Qty: fixed.MustParse(w.Qty), Time: w.Time, EventTime: w.EventTime, BuyerMaker: w.BuyerMaker}
		pub.Hook(service.Event{Symbol: r.sym, Trade: &tr})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run drains the queue at once and returns
	if err := pub.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st := pub.Stats()
	if st.Duplicates != uint64(len(want)) || st.Acked != uint64(len(want)) {
		t.Errorf("republished %d trades: %d acked, %d duplicates", len(want), st.Acked, st.Duplicates)
	}
	if after := countSubject(t, r.b, subj); after != before {
		t.Errorf("republishing changed the trades subject from %d to %d messages", before, after)
	}
}

func countSubject(t *testing.T, b *testBus, subj string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subj]
}

// levelDiff lists the levels of got and want that differ.
func levelDiff(got, want []bus.Level) []string {
	g, w := map[fixed.Dec]fixed.Dec{}, map[fixed.Dec]fixed.Dec{}
	for _, l := range got {
		g[l[0]] = l[1]
	}
	for _, l := range want {
		w[l[0]] = l[1]
	}
	var out []string
	for p, q := range g {
		if wq, ok := w[p]; !ok || wq != q {
			out = append(out, fmt.Sprintf("%s: rebuilt %s, published %s", p, q, wq))
		}
	}
	for p, q := range w {
		if _, ok := g[p]; !ok {
			out = append(out, fmt.Sprintf("%s: rebuilt none, published %s", p, q))
		}
	}
	slices.Sort(out)
	return out
}

// checkDerived: the bars, large trades and bar signals on the bus are the
// service's own (what its HTTP API serves), in order, with their ids.
func checkDerived(t *testing.T, r *publishedRun) {
	var bars []client.Bar
	for _, m := range readAll(t, r.b, bus.Subject(r.kind, r.sym, bus.TopicBars)) {
		v, err := bus.Decode(m.data)
		if err != nil {
			t.Fatal(err)
		}
		b := v.(*bus.Bar)
		want := fmt.Sprintf("%s.%s.b.1m.%d", r.kind, r.sym, b.Start)
		if b.Revised {
			// Late trades amended the bar after it was published: the
			// revision has its own id and replaces the bar.
			want += fmt.Sprintf(".r%d", b.LateTrades)
		}
		if m.id != want || b.Time != b.End {
			t.Fatalf("bar message id %q time %d, want %q and the bar's end %d", m.id, b.Time, want, b.End)
		}
		if b.Revised {
			if len(bars) == 0 || bars[len(bars)-1].Start != b.Start {
				t.Fatalf("revision of bar %d does not follow it", b.Start)
			}
			bars[len(bars)-1] = b.Bar
			continue
		}
		bars = append(bars, b.Bar)
	}
	if len(r.bars) == 0 || len(bars) < len(r.bars) {
		t.Fatalf("%d bars on the bus, the service kept %d", len(bars), len(r.bars))
	}
	for i := range r.bars {
		want := client.FromBar(&r.bars[i], true)
		if got := bars[len(bars)-len(r.bars)+i]; !reflect.DeepEqual(got, want) {
			t.Fatalf("bar %d: bus %+v, service %+v", i, got, want)
		}
	}
	var large []client.LargeTrade
	for _, m := range readAll(t, r.b, bus.Subject(r.kind, r.sym, bus.TopicLarge)) {
		v, err := bus.Decode(m.data)
		if err != nil {
			t.Fatal(err)
		}
		l := v.(*bus.Large)
		if want := fmt.Sprintf("%s.%s.l.%d", r.kind, r.sym, l.ID); m.id != want {
			t.Fatalf("large trade message id %q, want %q", m.id, want)
		}
		large = append(large, l.LargeTrade)
	}
	if len(large) < len(r.large) {
		t.Fatalf("%d large trades on the bus, the service kept %d", len(large), len(r.large))
	}
	for i := range r.large {
		if got, want := large[len(large)-len(r.large)+i], client.FromLarge(&r.large[i]); got != want {
			t.Fatalf("large trade %d: bus %+v, service %+v", i, got, want)
		}
	}
	var signals []client.Signal
	for _, m := range readAll(t, r.b, bus.Subject(r.kind, r.sym, bus.TopicSignals)) {
		v, err := bus.Decode(m.data)
		if err != nil {
			t.Fatal(err)
		}
		signals = append(signals, v.(*bus.Signal).Signal)
	}
	// No depthflow in this service: every signal is a bar signal. A bar
	// closed in time has exactly its signals; a bar late trades amended
	// (revised) had its signals at close plus those each revision gained,
	// with the delta and CVD of then: each of its final signals is among
	// them.
	if len(bars) == len(r.bars) {
		byBar := map[int64][]client.Signal{}
		for _, s := range signals {
			byBar[s.BarStart] = append(byBar[s.BarStart], s)
		}
		same := func(a, b client.Signal) bool {
			return a.Kind == b.Kind && a.Side == b.Side && a.Price == b.Price && a.High == b.High && a.Levels == b.Levels
		}
		for i := range r.bars {
			b := &r.bars[i]
			want, got := client.BarSignals(b), byBar[b.Start]
			if b.LateTrades == 0 {
				if len(want) != len(got) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
					t.Fatalf("bar %d: %d signals on the bus, %d from the service's bar", b.Start, len(got), len(want))
				}
				continue
			}
			for _, w := range want {
				if !slices.ContainsFunc(got, func(g client.Signal) bool { return same(g, w) }) {
					t.Fatalf("revised bar %d: signal %s %s at %s not on the bus", b.Start, w.Kind, w.Side, w.Price)
				}
			}
		}
	}
	t.Logf("derived: %d bars, %d large trades, %d signals checked", len(r.bars), len(r.large), len(signals))
}
