package bus

import (
	"cmp"
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/engine/enginetest"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// recMsg is one message a publisher sends for a recording's symbol.
type recMsg struct {
	topic Topic
	data  []byte
	trade market.Trade // topic TopicTrades
	u     int64        // topic TopicBookDelta: last update id
}

// publishedMessages runs a recording through an engine (the publisher's
// side) and returns the messages a publisher sends for each symbol, in
// publish order, and the engine at the end.
func publishedMessages(tb testing.TB, name string, k market.Kind) (map[string][]recMsg, *engine.Engine) {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	rec := filepath.Join(filepath.Dir(file), "..", "testdata", "binance", name)
	msgs := map[string][]recMsg{}
	e, err := enginetest.Publish(engine.Config{}, []string{rec}, enginetest.Outputs{
		Trade: func(s *engine.Symbol, tr *market.Trade) {
			msgs[s.Name] = append(msgs[s.Name], recMsg{topic: TopicTrades, data: AppendTrade(nil, k, tr), trade: *tr})
		},
		Book: func(s *engine.Symbol, _ *market.DepthSnapshot, _, _ fixed.Dec) {
			msgs[s.Name] = append(msgs[s.Name], recMsg{topic: TopicBookSnapshot,
				data: AppendBookSnapshot(nil, k, s.Name, 0, s.Book(), ReasonSync)})
		},
		Delta: func(s *engine.Symbol, u *market.DepthUpdate) {
			msgs[s.Name] = append(msgs[s.Name], recMsg{topic: TopicBookDelta, data: AppendBookDelta(nil, k, s.Name, u), u: u.FinalID})
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return msgs, e
}

// recordingMessages returns the published messages of the recording's
// symbol with the most trades, in publish order, and the publishing
// engine's final state of the symbol.
func recordingMessages(t *testing.T, name string, k market.Kind) (string, []recMsg, enginetest.State) {
	t.Helper()
	msgs, e := publishedMessages(t, name, k)
	var sym string
	trades := func(s string) int {
		return len(slices.DeleteFunc(slices.Clone(msgs[s]), func(m recMsg) bool { return m.topic != TopicTrades }))
	}
	for s := range msgs {
		if sym == "" || trades(s) > trades(sym) || (trades(s) == trades(sym) && s < sym) {
			sym = s
		}
	}
	return sym, msgs[sym], enginetest.Capture(e.Symbol(sym), enginetest.Options{NoHistory: true, NoDepthFlow: true})
}

// permute models publishes retried across a leader change: a share of the
// trades and book diffs is stored up to maxShift messages later than
// published, never past a full book.
func permute(msgs []recMsg, share float64, maxShift int, seed uint64) []recMsg {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	type keyed struct {
		key float64
		m   recMsg
	}
	nextSnap := make([]int, len(msgs))
	next := len(msgs)
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].topic == TopicBookSnapshot {
			next = i
		}
		nextSnap[i] = next
	}
	ks := make([]keyed, len(msgs))
	for i, m := range msgs {
		ks[i] = keyed{float64(i), m}
		if m.topic != TopicBookSnapshot && rng.Float64() < share {
			to := min(i+1+rng.IntN(maxShift), nextSnap[i]-1)
			ks[i].key = float64(to) + 0.5
		}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return cmp.Compare(a.key, b.key) })
	out := make([]recMsg, len(ks))
	for i := range ks {
		out[i] = ks[i].m
	}
	return out
}

// sinkService starts a service driven by the test through a handler of
// src for sym.
func sinkService(t testing.TB, k market.Kind, sym string, src *Source) (*service.Service, *handler) {
	t.Helper()
	ss := &sinkSource{got: make(chan *service.Sink, 1)}
	svc, err := service.New(service.Config{Symbols: []string{sym}, Market: k, Source: ss, LogTrades: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	sink := <-ss.got
	symSink, ok := sink.Symbol(sym)
	if !ok {
		t.Fatal("no sink for the symbol")
	}
	return svc, newHandler(src, sink, symSink, k)
}

func testSource(maxHeld int) *Source {
	return &Source{cfg: SourceConfig{MaxHeld: maxHeld, HoldTime: time.Hour}, log: slog.New(slog.DiscardHandler)}
}

func symbolState(t *testing.T, svc *service.Service, sym string) enginetest.State {
	t.Helper()
	var st enginetest.State
	if err := svc.ViewSymbol(sym, func(e *engine.Symbol) error {
		st = enginetest.Capture(e, enginetest.Options{NoHistory: true, NoDepthFlow: true})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

// wantTrades returns the recording's trades of msgs sorted by id (the
// order the exchange made them), leaving out the ids in skip.
func wantTrades(msgs []recMsg, skip map[int64]bool) []market.Trade {
	var ts []market.Trade
	for _, m := range msgs {
		if m.topic == TopicTrades && !skip[m.trade.ID] {
			ts = append(ts, m.trade)
		}
	}
	slices.SortFunc(ts, func(a, b market.Trade) int { return cmp.Compare(a.ID, b.ID) })
	return ts
}

// checkTrades compares a consumer's trade history (id, price, qty, side,
// time) with want's tail, and its totals' count and last id with want.
func checkTrades(t *testing.T, st enginetest.State, want []market.Trade) {
	t.Helper()
	if st.Totals.Trades != int64(len(want)) || st.Totals.LastID != want[len(want)-1].ID {
		t.Fatalf("totals: %d trades, last %d; want %d, last %d", st.Totals.Trades, st.Totals.LastID, len(want), want[len(want)-1].ID)
	}
	if len(st.Trades) == 0 || len(st.Trades) > len(want) {
		t.Fatalf("history of %d trades, %d sent", len(st.Trades), len(want))
	}
	tail := want[len(want)-len(st.Trades):]
	for i, g := range st.Trades {
		w := tail[i]
		if g.ID != w.ID || g.Price != w.Price || g.Qty != w.Qty || g.BuyerMaker != w.BuyerMaker || g.Time != w.Time {
			t.Fatalf("history[%d] = %d %s %s maker=%v %d; want %d %s %s maker=%v %d", i, g.ID, g.Price, g.Qty, g.BuyerMaker, g.Time,
				w.ID, w.Price, w.Qty, w.BuyerMaker, w.Time)
		}
	}
}

// TestSourceReordersRetriedPublishes feeds a real recording's messages to
// the source's handler with trades and book diffs stored out of order (as
// after publishes retried across a JetStream leader change): the consumer
// must end with the trades in id order (the history equals the sorted
// input) and the publisher's exact book, nothing counted as a gap.
func TestSourceReordersRetriedPublishes(t *testing.T) {
	for _, tc := range []struct {
		file string
		k    market.Kind
	}{
		{"cryptofeed-spot-10sym-20210405.txt.gz", market.Spot},
		{"cryptofeed-usdm-5sym-20210405.txt.gz", market.USDM},
	} {
		t.Run(tc.k.String(), func(t *testing.T) {
			sym, msgs, pubState := recordingMessages(t, tc.file, tc.k)
			mixed := permute(msgs, 0.05, 40, 7)
			var moved int
			for i := range msgs {
				if &msgs[i].data[0] != &mixed[i].data[0] {
					moved++
				}
			}
			if moved == 0 {
				t.Fatal("permutation left the order alone")
			}
			src := testSource(10_000)
			svc, h := sinkService(t, tc.k, sym, src)
			subjects := map[Topic]string{}
			for _, tp := range []Topic{TopicTrades, TopicBookDelta, TopicBookSnapshot} {
				subjects[tp] = Subject(tc.k, sym, tp)
			}
			for _, m := range mixed {
				h.handle(subjects[m.topic], m.data)
			}
			st := src.Stats()
			t.Logf("%s: %d messages, %d moved; stats %+v", sym, len(msgs), moved, st)
			if st.Reordered == 0 || st.GapSkipped != 0 || st.Gaps != 0 || st.Invalid != 0 || st.Duplicates != 0 {
				t.Fatalf("stats %+v", st)
			}
			if len(h.heldTrades) != 0 || len(h.heldDeltas) != 0 {
				t.Fatalf("still held: %d trades, %d diffs", len(h.heldTrades), len(h.heldDeltas))
			}
			got := symbolState(t, svc, sym)
			checkTrades(t, got, wantTrades(msgs, nil))
			if !got.Synced || got.UpdateID != pubState.UpdateID || !slices.Equal(got.Bids, pubState.Bids) || !slices.Equal(got.Asks, pubState.Asks) {
				t.Fatalf("book synced=%v at %d (%d bids, %d asks); publisher's at %d (%d bids, %d asks)", got.Synced, got.UpdateID,
					len(got.Bids), len(got.Asks), pubState.UpdateID, len(pubState.Bids), len(pubState.Asks))
			}
		})
	}
}

// TestSourceGivesUpOnLostMessages: trades and a book diff missing from the
// stream (never arriving) are waited for only up to MaxHeld messages, or
// HoldTime of exchange time; then the held trades are applied in order and
// the missing ids counted, and the book takes the gap path (dropped until
// the next full book).
func TestSourceGivesUpOnLostMessages(t *testing.T) {
	sym, msgs, _ := recordingMessages(t, "cryptofeed-spot-10sym-20210405.txt.gz", market.Spot)
	// Lose three trades (two adjacent) and one diff, away from the ends.
	var tradeIdx, deltaIdx []int
	for i, m := range msgs {
		switch m.topic {
		case TopicTrades:
			tradeIdx = append(tradeIdx, i)
		case TopicBookDelta:
			deltaIdx = append(deltaIdx, i)
		}
	}
	if len(tradeIdx) < 200 || len(deltaIdx) < 100 {
		t.Fatalf("recording too short: %d trades, %d diffs", len(tradeIdx), len(deltaIdx))
	}
	lost := map[int]bool{tradeIdx[50]: true, tradeIdx[120]: true, tradeIdx[121]: true, deltaIdx[len(deltaIdx)/2]: true}
	skip := map[int64]bool{}
	var kept []recMsg
	for i, m := range msgs {
		if lost[i] {
			if m.topic == TopicTrades {
				skip[m.trade.ID] = true
			}
			continue
		}
		kept = append(kept, m)
	}
	for _, bound := range []struct {
		name     string
		maxHeld  int
		holdTime time.Duration
	}{{"MaxHeld", 20, time.Hour}, {"HoldTime", 10_000, time.Millisecond}} {
		t.Run(bound.name, func(t *testing.T) {
			src := &Source{cfg: SourceConfig{MaxHeld: bound.maxHeld, HoldTime: bound.holdTime}, log: slog.New(slog.DiscardHandler)}
			svc, h := sinkService(t, market.Spot, sym, src)
			for _, m := range kept {
				h.handle(Subject(market.Spot, sym, m.topic), m.data)
			}
			// The trades after the last loss are applied once the bound is
			// passed; at the end of the recording none may be held any more
			// (more than 20 trades, over more than 1 ms, follow each loss).
			st := src.Stats()
			t.Logf("%s: stats %+v", sym, st)
			if st.GapSkipped != int64(len(skip))+1 || st.Gaps != 1 || st.Invalid != 0 {
				t.Fatalf("stats %+v; want gap_skipped %d (trade ids) + 1 (diff gap), 1 gap", st, len(skip))
			}
			if len(h.heldTrades) != 0 {
				t.Fatalf("%d trades still held", len(h.heldTrades))
			}
			checkTrades(t, symbolState(t, svc, sym), wantTrades(msgs, skip))
		})
	}
}

// TestSourceReleasesHeldTradeOfQuietSymbol: a trade is lost and the next
// one held; then the symbol trades no more (the later trades are left
// out), only book diffs come. The wait ends by the exchange time of those
// diffs (HoldTime), not at a next trade that never comes: the held trade
// is applied and the lost id counted.
func TestSourceReleasesHeldTradeOfQuietSymbol(t *testing.T) {
	sym, msgs, _ := recordingMessages(t, "cryptofeed-spot-10sym-20210405.txt.gz", market.Spot)
	var tradeIdx []int
	for i, m := range msgs {
		if m.topic == TopicTrades {
			tradeIdx = append(tradeIdx, i)
		}
	}
	lostAt, held := tradeIdx[len(tradeIdx)/2], tradeIdx[len(tradeIdx)/2+1]
	heldTrade := msgs[held].trade
	const hold = time.Second
	var fed []recMsg
	var later int64 // exchange time of the last diff fed
	for i, m := range msgs {
		switch {
		case i == lostAt, m.topic == TopicTrades && i > held:
			continue
		case m.topic == TopicBookDelta:
			var d BookDelta
			if err := DecodeBookDelta(m.data, &d); err != nil {
				t.Fatal(err)
			}
			later = d.Time
		}
		fed = append(fed, m)
	}
	// The diffs after the held trade must reach past HoldTime for the
	// check to mean anything.
	if later-heldTrade.EventTime <= hold.Milliseconds() {
		t.Fatalf("the recording's diffs after %s's trade %d span %d ms, want > %v", sym, heldTrade.ID, later-heldTrade.EventTime, hold)
	}
	src := &Source{cfg: SourceConfig{MaxHeld: 10_000, HoldTime: hold}, log: slog.New(slog.DiscardHandler)}
	svc, h := sinkService(t, market.Spot, sym, src)
	for _, m := range fed {
		h.handle(Subject(market.Spot, sym, m.topic), m.data)
	}
	if len(h.heldTrades) != 0 {
		t.Fatalf("%d trades still held at the end of the recording", len(h.heldTrades))
	}
	if st := src.Stats(); st.GapSkipped != 1 || st.Invalid != 0 {
		t.Fatalf("stats %+v, want gap_skipped 1 (the lost id)", st)
	}
	var want []market.Trade
	for _, m := range fed {
		if m.topic == TopicTrades {
			want = append(want, m.trade)
		}
	}
	checkTrades(t, symbolState(t, svc, sym), want)
}
