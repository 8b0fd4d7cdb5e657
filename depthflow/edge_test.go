package depthflow

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

func lv(p, q string) market.Level {
	return market.Level{Price: fixed.MustParse(p), Qty: fixed.MustParse(q)}
}

func dec(s string) fixed.Dec { return fixed.MustParse(s) }

func vol(s string) flow.Volume { return flow.Volume(fixed.I128(int64(fixed.MustParse(s)))) }

type harness struct {
	t   *testing.T
	tr  *Tracker
	bk  *book.Book
	id  int64
	sig []Signal
}

// ladder returns n levels of qty from start, stepping by step (negative
// for bids).
func ladder(start, step string, n int, qty string) []market.Level {
	p, s := dec(start), dec(step)
	out := make([]market.Level, n)
	for i := range out {
		out[i] = market.Level{Price: p + fixed.Dec(i)*s, Qty: dec(qty)}
	}
	return out
}

func newHarness(t *testing.T, cfg Config, bids, asks []market.Level) *harness {
	t.Helper()
	h := &harness{t: t, bk: book.New(), id: 1}
	cfg.OnSignal = func(s Signal) { h.sig = append(h.sig, s) }
	h.tr = New("TEST", cfg)
	if err := h.bk.Reset(&market.DepthSnapshot{LastUpdateID: 1, Bids: bids, Asks: asks}); err != nil {
		t.Fatal(err)
	}
	h.tr.Reset(h.bk, 1000) // fewer levels than the limit: whole sides known
	return h
}

func (h *harness) depth(at int64, bids, asks []market.Level) {
	h.t.Helper()
	h.id++
	u := &market.DepthUpdate{EventTime: at, FirstID: h.id, FinalID: h.id, Bids: bids, Asks: asks}
	h.tr.BeforeDepth(u, h.bk)
	if err := h.bk.ApplyUpdate(u); err != nil {
		h.t.Fatal(err)
	}
	if err := h.tr.OnDepth(u, h.bk); err != nil {
		h.t.Fatal(err)
	}
}

// trade is a taker sell (hitting the bids) when sell, else a taker buy.
func (h *harness) trade(at int64, price, qty string, sell bool) {
	h.t.Helper()
	tr := market.Trade{ID: at, Price: dec(price), Qty: dec(qty), Time: at, BuyerMaker: sell}
	if err := h.tr.OnTrade(&tr); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) kinds(k SignalKind) []Signal {
	var out []Signal
	for _, s := range h.sig {
		if s.Kind == k {
			out = append(out, s)
		}
	}
	return out
}

// wallBook: ten bids 99.99..99.90 of 1 with 10 at 99.95 (a wall against
// 4 neighbours summing 4 with K=5: 10*4 >= 5*4; notional 999.5 >= 500),
// ten asks of 1. Walls are announced after minAge (negative: at once).
func wallBook(t *testing.T, minAge time.Duration) *harness {
	bids := ladder("99.99", "-0.01", 10, "1")
	bids[4].Qty = dec("10") // 99.95
	asks := ladder("100.01", "0.01", 10, "1")
	// WallMaxBps 10: the range reaches 99.90, the snapshot's worst bid, so
	// the whole range and every neighbourhood is known.
	return newHarness(t, Config{WallNeighbors: 4, WallFactor: 5, WallMaxBps: 10, WallMinNotional: dec("500"),
		WallMinAge: minAge}, bids, asks)
}

func TestWallLifecycle(t *testing.T) {
	type step struct {
		at     int64
		trades []market.Trade // taker sells at the given price
		late   bool           // trades arrive after the depth update
		bids   []market.Level
	}
	sell := func(at int64, p, q string) market.Trade {
		return market.Trade{Time: at, Price: dec(p), Qty: dec(q), BuyerMaker: true}
	}
	cases := []struct {
		name   string
		steps  []step
		reason WallEnd
		pulled string
		filled string
		signal SignalKind
	}{
		{name: "PulledWithoutTrades", steps: []step{{at: 7000, bids: []market.Level{lv("99.95", "0")}}},
			reason: WallEndPulled, pulled: "10", filled: "0", signal: WallPulled},
		{name: "FilledByTrades", steps: []step{{at: 7000, trades: []market.Trade{sell(6990, "99.95", "10")}, bids: []market.Level{lv("99.95", "0")}}},
			reason: WallEndFilled, pulled: "0", filled: "10", signal: WallFilled},
		{name: "LateTradesStillFill", steps: []step{{at: 7000, late: true, trades: []market.Trade{sell(6990, "99.95", "6"), sell(6995, "99.95", "4")}, bids: []market.Level{lv("99.95", "0")}}},
			reason: WallEndFilled, pulled: "0", filled: "10", signal: WallFilled},
		{name: "MostlyCancelledIsPulled", steps: []step{{at: 7000, trades: []market.Trade{sell(6990, "99.95", "3")}, bids: []market.Level{lv("99.95", "0")}}},
			reason: WallEndPulled, pulled: "7", filled: "3", signal: WallPulled},
		// Below the hold rule (60% of 5x the neighbours' mean of 1).
		{name: "ShrunkBelowThreshold", steps: []step{{at: 7000, bids: []market.Level{lv("99.95", "2")}}},
			reason: WallEndPulled, pulled: "8", filled: "0", signal: WallPulled},
		// Neighbours' mean 4.5: 10 < 0.6*5*4.5.
		{name: "NeighboursGrewIsDiluted", steps: []step{{at: 7000, bids: []market.Level{lv("99.94", "8"), lv("99.96", "8")}}},
			reason: WallEndDiluted, pulled: "0", filled: "0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := wallBook(t, -1)
			h.depth(1000, []market.Level{lv("99.90", "1")}, nil)
			ws := h.tr.Walls(market.Buy, nil)
			if len(ws) != 1 || ws[0].Price != dec("99.95") || ws[0].Since != 1000 || ws[0].Qty != dec("10") || ws[0].Ratio != 10 {
				t.Fatalf("walls after first update: %+v", ws)
			}
			if !h.tr.WallsReady(market.Buy) {
				t.Fatal("walls not ready with 10 levels and 4 neighbours")
			}
			h.depth(5000, []market.Level{lv("99.90", "1")}, nil)
			if ws := h.tr.Walls(market.Buy, nil); len(ws) != 1 || ws[0].Stood() != 4*time.Second {
				t.Fatalf("walls after 4s: %+v", ws)
			}
			for _, s := range tc.steps {
				if !s.late {
					for _, tr := range s.trades {
						if err := h.tr.OnTrade(&tr); err != nil {
							t.Fatal(err)
						}
					}
				}
				h.depth(s.at, s.bids, nil)
				if s.late {
					for _, tr := range s.trades {
						if err := h.tr.OnTrade(&tr); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if ws := h.tr.Walls(market.Buy, nil); len(ws) != 0 {
				t.Fatalf("wall still standing: %+v", ws)
			}
			if got := h.tr.EndedWalls(0, nil); len(got) != 0 {
				t.Fatalf("ended wall reported before the next update: %+v", got)
			}
			h.depth(7100, nil, nil)
			got := h.tr.EndedWalls(0, nil)
			if len(got) != 1 {
				t.Fatalf("ended walls: %+v", got)
			}
			e := got[0]
			if e.Reason != tc.reason || e.Since != 1000 || e.End != 7000 || e.Pulled.Cmp(vol(tc.pulled)) != 0 || e.Filled.Cmp(vol(tc.filled)) != 0 {
				t.Fatalf("ended wall: %+v (reason %v)", e, e.Reason)
			}
			sigs := append(h.kinds(WallPulled), h.kinds(WallFilled)...)
			if tc.signal == 0 {
				if len(sigs) != 0 {
					t.Fatalf("unexpected wall signal %+v", sigs)
				}
				return
			}
			if len(sigs) != 1 || sigs[0].Kind != tc.signal || sigs[0].Price != dec("99.95") || sigs[0].Side != market.Buy ||
				sigs[0].Time != 7000 || sigs[0].Since != 1000 || sigs[0].Volume.Cmp(vol("10")) != 0 || sigs[0].Symbol != "TEST" {
				t.Fatalf("wall signal: %+v", sigs)
			}
		})
	}
}

func TestWallAnnouncedAfterMinAge(t *testing.T) {
	t.Run("ShortLivedIsNeverListed", func(t *testing.T) {
		h := wallBook(t, time.Second)
		h.depth(1000, nil, nil)
		if ws := h.tr.Walls(market.Buy, nil); len(ws) != 0 {
			t.Fatalf("a candidate of 0s listed: %+v", ws)
		}
		h.depth(1500, []market.Level{lv("99.95", "0")}, nil) // stood 0.5s
		h.depth(1600, nil, nil)
		if got := h.tr.EndedWalls(0, nil); len(got) != 0 || len(h.sig) != 0 || h.tr.Stats().WallsUnannounced != 1 {
			t.Fatalf("a candidate that stood 0.5s: ended %+v signals %+v stats %+v", got, h.sig, h.tr.Stats())
		}
	})
	t.Run("ListedOnceItStood", func(t *testing.T) {
		h := wallBook(t, time.Second)
		h.depth(1000, nil, nil)
		h.depth(1999, nil, nil)
		if ws := h.tr.Walls(market.Buy, nil); len(ws) != 0 {
			t.Fatalf("listed after 999ms: %+v", ws)
		}
		h.depth(2000, nil, nil)
		if ws := h.tr.Walls(market.Buy, nil); len(ws) != 1 || ws[0].Since != 1000 || ws[0].Stood() != time.Second {
			t.Fatalf("after 1s: %+v", ws)
		}
		h.depth(2500, []market.Level{lv("99.95", "0")}, nil)
		h.depth(2600, nil, nil)
		if got := h.tr.EndedWalls(0, nil); len(got) != 1 || got[0].Reason != WallEndPulled || len(h.kinds(WallPulled)) != 1 {
			t.Fatalf("ended %+v, signals %+v", got, h.sig)
		}
	})
}

func TestWallHysteresis(t *testing.T) {
	h := wallBook(t, -1)
	h.depth(1000, nil, nil)
	// 4 against neighbours of mean 1: below the entry rule (5x) but above
	// the hold rule (60% of 5x = 3x): still the same wall.
	h.depth(2000, []market.Level{lv("99.95", "4")}, nil)
	if ws := h.tr.Walls(market.Buy, nil); len(ws) != 1 || ws[0].Since != 1000 || ws[0].Qty != dec("4") || ws[0].PeakQty != dec("10") {
		t.Fatalf("a wall shrunk to 4x its neighbours: %+v", ws)
	}
	// A new level at 4x does not enter.
	h.depth(3000, []market.Level{lv("99.92", "4")}, nil)
	if ws := h.tr.Walls(market.Buy, nil); len(ws) != 1 || ws[0].Price != dec("99.95") {
		t.Fatalf("a new level at 4x became a wall: %+v", ws)
	}
	// Below 3x it ends; 4 would still hold against the neighbours, so the
	// decrease ended it: pulled.
	h.depth(4000, []market.Level{lv("99.95", "2")}, nil)
	h.depth(4100, nil, nil)
	got := h.tr.EndedWalls(0, nil)
	if len(got) != 1 || got[0].Reason != WallEndPulled || got[0].Pulled.Cmp(vol("2")) != 0 || got[0].End != 4000 {
		t.Fatalf("ended: %+v", got)
	}
	// Back to 4: not a wall again (entry needs 5x).
	h.depth(5000, []market.Level{lv("99.95", "4")}, nil)
	if ws := h.tr.Walls(market.Buy, nil); len(ws) != 0 {
		t.Fatalf("re-entered at 4x: %+v", ws)
	}
}

func TestWallMinNotional(t *testing.T) {
	bids := ladder("99.99", "-0.01", 10, "1")
	bids[4].Qty = dec("10") // 999.5 notional
	asks := ladder("100.01", "0.01", 10, "1")
	for _, tc := range []struct {
		floor string
		walls int
	}{{"999.5", 1}, {"999.50000001", 0}} {
		h := newHarness(t, Config{WallNeighbors: 4, WallFactor: 5, WallMaxBps: 10, WallMinNotional: dec(tc.floor), WallMinAge: -1}, bids, asks)
		h.depth(1000, nil, nil)
		if ws := h.tr.Walls(market.Buy, nil); len(ws) != tc.walls {
			t.Fatalf("floor %s: walls %+v, want %d", tc.floor, ws, tc.walls)
		}
		if tc.walls == 0 {
			continue
		}
		// The hold floor is 60%: 999.5*0.6 = 599.7, i.e. a quantity of 6 at
		// 99.95 (599.7) holds, 5.99999999 does not.
		h.depth(2000, []market.Level{lv("99.95", "6")}, nil)
		if ws := h.tr.Walls(market.Buy, nil); len(ws) != 1 {
			t.Fatalf("6 at the hold floor: %+v", ws)
		}
		h.depth(3000, []market.Level{lv("99.95", "5.99999999")}, nil)
		if ws := h.tr.Walls(market.Buy, nil); len(ws) != 0 {
			t.Fatalf("below the hold floor: %+v", ws)
		}
	}
}

func TestWallResetEndsWalls(t *testing.T) {
	h := wallBook(t, -1)
	h.depth(1000, nil, nil)
	h.tr.Reset(h.bk, 0)
	got := h.tr.EndedWalls(0, nil)
	if len(got) != 1 || got[0].Reason != WallEndReset || len(h.tr.Walls(market.Buy, nil)) != 0 {
		t.Fatalf("after reset: %+v", got)
	}
}

func TestWallsNeedNeighbours(t *testing.T) {
	bids := ladder("99.99", "-0.01", 4, "1")
	bids[1].Qty = dec("100")
	h := newHarness(t, Config{WallNeighbors: 4}, bids, ladder("100.01", "0.01", 10, "1"))
	h.depth(1000, nil, nil)
	if h.tr.WallsReady(market.Buy) || len(h.tr.Walls(market.Buy, nil)) != 0 {
		t.Fatalf("4 bids with 4 neighbours needed: ready %v walls %+v", h.tr.WallsReady(market.Buy), h.tr.Walls(market.Buy, nil))
	}
}

// absorbBook: the best bid 99.99 with qty 1; a reference bar with volume
// 10 over 5 prices, so avg = 2 and the default threshold (300%) is 6.
func absorbBook(t *testing.T, cfg Config, bar bool) *harness {
	h := newHarness(t, cfg, ladder("99.99", "-0.01", 30, "1"), ladder("100.01", "0.01", 30, "1"))
	if bar {
		b := &flow.Bar{Closed: true, Start: 0, End: 60_000, Volume: vol("10"), Footprint: make([]flow.FootprintLevel, 5)}
		h.tr.OnBar(time.Minute, b)
	}
	h.depth(100, nil, nil)
	return h
}

func TestAbsorption(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		bar   bool
		run   func(h *harness)
		fires bool
	}{
		{name: "RefilledBidFires", bar: true, fires: true, run: func(h *harness) {
			for i := range int64(6) { // six 1-lot sells, each refilled to 1
				h.trade(1000+i*1000, "99.99", "1", true)
				h.depth(1010+i*1000, []market.Level{lv("99.99", "1")}, nil)
			}
		}},
		{name: "NoReferenceBar", bar: false, run: func(h *harness) {
			for i := range int64(6) {
				h.trade(1000+i*1000, "99.99", "1", true)
				h.depth(1010+i*1000, []market.Level{lv("99.99", "1")}, nil)
			}
		}},
		{name: "NotRefilledDoesNotFire", bar: true, run: func(h *harness) {
			h.depth(500, []market.Level{lv("99.99", "100")}, nil)
			for i := range int64(6) { // the resting 100 is eaten, nothing added
				h.trade(1000+i*1000, "99.99", "1", true)
				h.depth(1010+i*1000, []market.Level{lv("99.99", fixed.Dec(int64(99-i)*int64(fixed.One)).String())}, nil)
			}
		}},
		{name: "BelowThreshold", bar: true, run: func(h *harness) {
			for i := range int64(5) {
				h.trade(1000+i*1000, "99.99", "1", true)
				h.depth(1010+i*1000, []market.Level{lv("99.99", "1")}, nil)
			}
		}},
		{name: "OldVolumeExpires", bar: true, run: func(h *harness) {
			for i := range int64(6) { // 3s apart: at most 4 in a 10s window
				h.trade(1000+i*3000, "99.99", "1", true)
				h.depth(1010+i*3000, []market.Level{lv("99.99", "1")}, nil)
			}
		}},
		{name: "PriceGaveWayResets", bar: true, run: func(h *harness) {
			for i := range int64(3) {
				h.trade(1000+i*1000, "99.99", "1", true)
				h.depth(1010+i*1000, []market.Level{lv("99.99", "1")}, nil)
			}
			h.depth(3500, []market.Level{lv("99.99", "0")}, nil) // best bid 99.98 < 99.99
			h.depth(3600, []market.Level{lv("99.99", "1")}, nil)
			for i := range int64(3) {
				h.trade(4000+i*1000, "99.99", "1", true)
				h.depth(4010+i*1000, []market.Level{lv("99.99", "1")}, nil)
			}
		}},
		{name: "MinVolumeFloor", bar: true, cfg: Config{AbsorptionMinVolume: dec("7")}, run: func(h *harness) {
			for i := range int64(6) {
				h.trade(1000+i*1000, "99.99", "1", true)
				h.depth(1010+i*1000, []market.Level{lv("99.99", "1")}, nil)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := absorbBook(t, tc.cfg, tc.bar)
			tc.run(h)
			got := h.kinds(Absorption)
			if !tc.fires {
				if len(got) != 0 {
					t.Fatalf("fired: %+v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one absorption, got %+v", got)
			}
			s := got[0]
			if s.Price != dec("99.99") || s.Side != market.Buy || s.Time != 6010 || s.Volume.Cmp(vol("6")) != 0 ||
				s.Threshold.Cmp(vol("6")) != 0 || s.Replenished.Cmp(vol("6")) != 0 || s.Strength != 3 || s.Since != 1010 {
				t.Fatalf("absorption: %+v", s)
			}
			// More of the same does not fire again.
			h.trade(6500, "99.99", "1", true)
			h.depth(6510, []market.Level{lv("99.99", "1")}, nil)
			if n := len(h.kinds(Absorption)); n != 1 {
				t.Fatalf("fired %d times", n)
			}
			if h.tr.AbsorptionReady() {
				t.Fatal("ready before a full window")
			}
			h.depth(10_100, nil, nil)
			if !h.tr.AbsorptionReady() {
				t.Fatal("not ready after the window and a bar")
			}
		})
	}
}

func TestLiquidityNearTouch(t *testing.T) {
	h := newHarness(t, Config{}, ladder("99.99", "-0.01", 30, "1"), ladder("100.01", "0.01", 30, "1"))
	h.trade(900, "99.97", "0.4", true)    // taker sell into the bid at 99.97
	h.trade(950, "100.02", "0.25", false) // taker buy, refilled below
	h.depth(1000, []market.Level{
		lv("99.98", "3"),  // +2 added
		lv("99.97", "0"),  // -1: 0.4 filled, 0.6 pulled
		lv("99.00", "50"), // far from the touch (99.99*0.999 = 99.89): ignored
	}, []market.Level{
		lv("100.01", "0.5"), // -0.5 pulled
		// 100.02 unchanged though 0.25 traded: 0.25 added back
	})
	ls, ok := h.tr.Liquidity(time.Minute)
	if !ok {
		t.Fatal("1m window missing")
	}
	want := map[string][2]flow.Volume{
		"bid added": {ls.BidAdded, vol("2")}, "bid pulled": {ls.BidPulled, vol("0.6")}, "bid filled": {ls.BidFilled, vol("0.4")},
		"ask added": {ls.AskAdded, vol("0.25")}, "ask pulled": {ls.AskPulled, vol("0.5")}, "ask filled": {ls.AskFilled, vol("0.25")},
	}
	for k, v := range want {
		if v[0].Cmp(v[1]) != 0 {
			t.Errorf("%s = %s, want %s", k, v[0], v[1])
		}
	}
	if ls.Ready || ls.Updates != 1 {
		t.Fatalf("ready after 1s: %+v", ls)
	}
	h.depth(61_000, nil, nil)
	if ls, _ := h.tr.Liquidity(time.Minute); !ls.Ready || ls.BidAdded.Sign() != 0 || ls.From != 2000 {
		t.Fatalf("at 61s: %+v (the 1s bucket has left the window)", ls)
	}
	t.Run("MissingBeforeIsNotReady", func(t *testing.T) {
		u := &market.DepthUpdate{EventTime: 62_000, FirstID: 100, FinalID: 100, Bids: []market.Level{lv("99.98", "1")}}
		if err := h.bk.ApplyUpdate(u); err != nil {
			t.Fatal(err)
		}
		if err := h.tr.OnDepth(u, h.bk); err != nil {
			t.Fatal(err)
		}
		ls, _ := h.tr.Liquidity(time.Minute)
		if ls.Ready || h.tr.Stats().MissingBefore != 1 || ls.BidPulled.Sign() != 0 {
			t.Fatalf("after an update without BeforeDepth: %+v %+v", ls, h.tr.Stats())
		}
	})
}

func TestBarSignals(t *testing.T) {
	h := newHarness(t, Config{}, ladder("99.99", "-0.01", 30, "1"), ladder("100.01", "0.01", 30, "1"))
	fp := []flow.FootprintLevel{{Price: dec("99"), BuyVolume: vol("0.1")}, {Price: dec("100"), BuyVolume: vol("5")}, {Price: dec("101"), SellVolume: vol("0.4")}}
	b := &flow.Bar{Closed: true, Start: 60_000, End: 120_000, High: dec("101"), Low: dec("99"), Volume: vol("5.5"), CVD: vol("-3"),
		Divergence: flow.BearishDivergence, HighExhausted: true, LowExhausted: true, Footprint: fp}
	h.tr.OnBar(time.Minute, b)
	d := h.kinds(Divergence)
	if len(d) != 1 || d[0].Side != market.Sell || d[0].Price != dec("101") || d[0].Time != 120_000 || d[0].Volume.Cmp(vol("-3")) != 0 || d[0].Divergence != flow.BearishDivergence {
		t.Fatalf("divergence: %+v", d)
	}
	e := h.kinds(Exhaustion)
	// avg = 5.5/3 = 1.83333333 (half-even at 1e-8)
	if len(e) != 2 || e[0].Side != market.Buy || e[0].Price != dec("101") || e[0].Volume.Cmp(vol("0.4")) != 0 || e[0].Threshold.Cmp(vol("1.83333333")) != 0 ||
		e[1].Side != market.Sell || e[1].Price != dec("99") || e[1].Volume.Cmp(vol("0.1")) != 0 {
		t.Fatalf("exhaustion: %+v", e)
	}
	if all := h.tr.Signals(0, nil); len(all) != 3 {
		t.Fatalf("ring holds %d", len(all))
	}
	h.tr.OnBar(time.Minute, &flow.Bar{Closed: false, Divergence: flow.BullishDivergence})
	if len(h.sig) != 3 {
		t.Fatal("an open bar signalled")
	}
}

func TestSignalRingBounded(t *testing.T) {
	h := newHarness(t, Config{SignalHistory: 2}, ladder("99.99", "-0.01", 30, "1"), ladder("100.01", "0.01", 30, "1"))
	for i := range int64(5) {
		h.tr.OnBar(time.Minute, &flow.Bar{Closed: true, End: i, Divergence: flow.BullishDivergence, Low: dec("1")})
	}
	got := h.tr.Signals(0, nil)
	if len(got) != 2 || got[0].Time != 3 || got[1].Time != 4 || h.tr.Stats().Signals[Divergence] != 5 {
		t.Fatalf("ring: %+v", got)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, Config{}, ladder("99.99", "-0.01", 30, "1"), ladder("100.01", "0.01", 30, "1"))
	for _, tc := range []struct {
		name string
		tr   market.Trade
	}{
		{"ZeroPrice", market.Trade{ID: 7, Qty: dec("1")}},
		{"NegativeQty", market.Trade{ID: 8, Price: dec("1"), Qty: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := h.tr.OnTrade(&tc.tr)
			if !errors.Is(err, ErrTrade) || !strings.Contains(err.Error(), "trade") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if h.tr.Stats().TradesRejected != 2 {
		t.Fatalf("rejected %d", h.tr.Stats().TradesRejected)
	}
	if err := h.tr.OnTrade(nil); !errors.Is(err, ErrNil) {
		t.Fatal(err)
	}
	if err := h.tr.OnDepth(nil, h.bk); !errors.Is(err, ErrNil) {
		t.Fatal(err)
	}
	h.tr.BeforeDepth(nil, nil) // must not panic
	// An empty book: metrics not ready, no walls, no panic.
	empty := book.New()
	u := &market.DepthUpdate{EventTime: 5, FinalID: 9}
	if err := h.tr.OnDepth(u, empty); err != nil {
		t.Fatal(err)
	}
	if m := h.tr.Metrics(); m.Ready || m.Bands[0].Ready {
		t.Fatalf("empty book: %+v", m)
	}
}

func TestConfig(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	err := Config{Bands: []int{-1}, WallFactor: -2, TouchBps: 20_000, LiquidityWindows: []time.Duration{time.Millisecond}}.Validate()
	for _, want := range []string{"Bands[0]=-1", "WallFactor=-2", "TouchBps=20000", "LiquidityWindows[0]=1ms"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want mention of %s", err, want)
		}
	}
	c := New("X", Config{Bands: []int{50, 10, 50, -3}, LiquidityWindows: []time.Duration{1500 * time.Millisecond}}).Config()
	if len(c.Bands) != 2 || c.Bands[0] != 10 || c.Bands[1] != 50 || c.LiquidityWindows[0] != 2*time.Second ||
		c.WallFactor != 5 || c.WallNeighbors != 20 || c.WallMaxBps != 100 || c.TouchBps != 10 || c.AbsorptionPercent != 300 {
		t.Fatalf("defaults: %+v", c)
	}
}
