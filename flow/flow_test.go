package flow

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// feed adds every trade and fails on a refusal.
func feed(tb testing.TB, tk *Tracker, trades []rawTrade) {
	tb.Helper()
	for i := range trades {
		if err := tk.Add(&trades[i].T); err != nil {
			tb.Fatalf("trade %d: %v", i, err)
		}
	}
}

func eq(t *testing.T, what string, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func eqInt(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

func TestRecordingFacts(t *testing.T) {
	// Facts stated in testdata/binance/SOURCES.md.
	btc := load(t, datasets[0])
	if len(btc) != 19_904 {
		t.Fatalf("spot BTCUSDT 08+09: %d trades, want 19,904", len(btc))
	}
	eqInt(t, "first id", btc[0].T.ID, 3735683259)
	eqInt(t, "last id", btc[len(btc)-1].T.ID, 3735703162)
	vis := load(t, datasets[2])
	eqInt(t, "vision rows", int64(len(vis)), 5000)
	sells := 0
	for _, r := range vis {
		if r.T.BuyerMaker {
			sells++
		}
	}
	eqInt(t, "vision buyer-maker rows", int64(sells), 2003)
	eqInt(t, "DENTUSDT aggTrades", int64(len(load(t, datasets[3]))), 716)
}

func TestTotalsMatchReference(t *testing.T) {
	for _, ds := range datasets {
		t.Run(ds.name, func(t *testing.T) {
			trades := load(t, ds)
			tk := NewTracker(ds.symbol, Config{})
			feed(t, tk, trades)
			ref := newAgg()
			high, low := trades[0].price(), trades[0].price()
			for i := range trades {
				ref.add(&trades[i])
				if p := trades[i].price(); p.Cmp(high) > 0 {
					high = p
				} else if p.Cmp(low) < 0 {
					low = p
				}
			}
			got := tk.Totals()
			eqInt(t, "Trades", got.Trades, int64(len(trades)))
			eqInt(t, "BuyTrades", got.BuyTrades, ref.buys)
			eqInt(t, "SellTrades", got.SellTrades, ref.trades-ref.buys)
			eq(t, "BuyVolume", got.BuyVolume.String(), exact(ref.buy, 8))
			eq(t, "SellVolume", got.SellVolume.String(), exact(ref.sell, 8))
			eq(t, "Volume", got.Volume.String(), exact(ref.vol(), 8))
			eq(t, "BuyNotional", got.BuyNotional.String(), exact(ref.buyNot, 16))
			eq(t, "SellNotional", got.SellNotional.String(), exact(ref.sellNot, 16))
			eq(t, "Delta", got.Delta.String(), exact(ratSub(ref.buy, ref.sell), 8))
			eq(t, "CVD", got.CVD.String(), exact(ratSub(ref.buy, ref.sell), 8))
			eq(t, "VWAP", got.VWAP.String(), ref.vwap())
			eq(t, "High", got.High.String(), exact(high, 8))
			eq(t, "Low", got.Low.String(), exact(low, 8))
			eq(t, "Last", got.Last.String(), exact(trades[len(trades)-1].price(), 8))
			eqInt(t, "Rejected", got.Rejected.Total(), 0)
		})
	}
}

func TestResetCVD(t *testing.T) {
	trades := load(t, datasets[0])
	half := len(trades) / 2
	cut := trades[half].T.Time
	// Reference: delta of trades at or after the first trade time > cut.
	anchorTrade := half
	for anchorTrade < len(trades) && trades[anchorTrade].T.Time <= cut {
		anchorTrade++
	}
	future := trades[anchorTrade].T.Time
	refFrom := func(from int64, start int) string {
		d := new(big.Rat)
		for i := start; i < len(trades); i++ {
			if trades[i].T.Time < from {
				continue
			}
			if trades[i].T.BuyerMaker {
				d.Sub(d, trades[i].qty())
			} else {
				d.Add(d, trades[i].qty())
			}
		}
		return exact(d, 8)
	}
	t.Run("FutureAnchor", func(t *testing.T) {
		tk := NewTracker("BTCUSDT", Config{})
		feed(t, tk, trades[:half+1])
		if got := tk.ResetCVD(future); got != future {
			t.Fatalf("anchor %d, want %d", got, future)
		}
		feed(t, tk, trades[half+1:])
		tot := tk.Totals()
		eq(t, "CVD", tot.CVD.String(), refFrom(future, 0))
		eqInt(t, "CVDFrom", tot.CVDFrom, future)
	})
	t.Run("PastAnchorMeansNow", func(t *testing.T) {
		tk := NewTracker("BTCUSDT", Config{})
		feed(t, tk, trades[:half+1])
		if got := tk.ResetCVD(cut - 60_000); got != cut {
			t.Fatalf("anchor %d, want the latest time %d", got, cut)
		}
		feed(t, tk, trades[half+1:])
		eq(t, "CVD", tk.Totals().CVD.String(), refFrom(0, half+1))
	})
}

func TestRejects(t *testing.T) {
	trades := load(t, datasets[0])
	a, b := trades[100].T, trades[101].T
	if b.Time <= a.Time {
		// Find a pair with strictly increasing time for the time test.
		for i := 101; i < len(trades); i++ {
			if trades[i].T.Time > a.Time {
				b = trades[i].T
				break
			}
		}
	}
	mod := func(tr market.Trade, f func(*market.Trade)) market.Trade { f(&tr); return tr }
	tests := []struct {
		name  string
		trade market.Trade
		want  error
		field string
		count func(Rejected) int64
	}{
		{"DuplicateID", b, ErrDuplicate, "ID", func(r Rejected) int64 { return r.Duplicate }},
		{"IDGoesBack", a, ErrOutOfOrder, "ID", func(r Rejected) int64 { return r.OutOfOrder }},
		{"TimeGoesBack", mod(b, func(t *market.Trade) { t.ID += 1000; t.Time = a.Time - 1 }), ErrTimeBackwards, "Time", func(r Rejected) int64 { return r.TimeBackwards }},
		{"ZeroQty", mod(b, func(t *market.Trade) { t.ID += 1000; t.Qty = 0 }), ErrInvalidTrade, "Qty", func(r Rejected) int64 { return r.Invalid }},
		{"NegativePrice", mod(b, func(t *market.Trade) { t.ID += 1000; t.Price = -1 }), ErrInvalidTrade, "Price", func(r Rejected) int64 { return r.Invalid }},
		{"OtherSymbol", mod(b, func(t *market.Trade) { t.ID += 1000; t.Symbol = "ETHUSDT" }), ErrWrongSymbol, "Symbol", func(r Rejected) int64 { return r.WrongSymbol }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := NewTracker("btcusdt", Config{}) // case-insensitive symbol
			if err := tk.Add(&a); err != nil {
				t.Fatal(err)
			}
			if err := tk.Add(&b); err != nil {
				t.Fatal(err)
			}
			before := tk.Totals()
			err := tk.Add(&tc.trade)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var re *RejectError
			if !errors.As(err, &re) || re.Field != tc.field || re.ID != tc.trade.ID || re.LastID != b.ID {
				t.Fatalf("err = %#v, want field %s id %d last %d", err, tc.field, tc.trade.ID, b.ID)
			}
			after := tk.Totals()
			if tc.count(after.Rejected) != 1 || after.Rejected.Total() != 1 {
				t.Errorf("Rejected = %+v, want one %s", after.Rejected, tc.name)
			}
			after.Rejected = before.Rejected
			if after != before {
				t.Errorf("a refused trade changed the totals:\n got %+v\nwant %+v", after, before)
			}
			if n := tk.HistoryLen(); n != 2 {
				t.Errorf("history holds %d trades, want 2", n)
			}
		})
	}
}

// refWindow is the reference window: trades up to k whose time is in the
// window's bucket range.
func refWindow(trades []rawTrade, k int, d time.Duration, at int64) refAgg {
	endSec := at / 1000
	start := (endSec - int64(d/time.Second) + 1) * 1000
	agg := newAgg()
	for i := 0; i <= k; i++ {
		if trades[i].T.Time >= start && trades[i].T.Time <= at {
			agg.add(&trades[i])
		}
	}
	return agg
}

func checkWindow(t *testing.T, ws WindowStats, ref refAgg) {
	t.Helper()
	eqInt(t, "Trades", ws.Trades, ref.trades)
	eqInt(t, "BuyTrades", ws.BuyTrades, ref.buys)
	eq(t, "BuyVolume", ws.BuyVolume.String(), exact(ref.buy, 8))
	eq(t, "SellVolume", ws.SellVolume.String(), exact(ref.sell, 8))
	eq(t, "Delta", ws.Delta.String(), exact(ratSub(ref.buy, ref.sell), 8))
	eq(t, "Notional", ws.Notional.String(), exact(ref.notional(), 16))
	eq(t, "BuyNotional", ws.BuyNotional.String(), exact(ref.buyNot, 16))
	eq(t, "VWAP", ws.VWAP.String(), ref.vwap())
	eq(t, "AvgTradeSize", ws.AvgTradeSize.String(), ref.avg())
	if ref.largest != nil {
		eqInt(t, "Largest.ID", ws.Largest.ID, ref.largest.T.ID)
		eq(t, "Largest.Qty", ws.Largest.Qty.String(), exact(ref.largest.qty(), 8))
	}
	if ref.trades > 0 {
		bf, _ := new(big.Rat).Quo(ref.buy, ref.vol()).Float64()
		if d := ws.BuyRatio - bf; d > 1e-12 || d < -1e-12 {
			t.Errorf("BuyRatio = %v, want %v", ws.BuyRatio, bf)
		}
	}
}

func TestWindowsMatchReference(t *testing.T) {
	// Every 997th trade is checked against the reference; with -short (the
	// race stage of make test, which then runs this package in full without
	// -race) every 4,999th, as each check is a plain loop over the tape.
	stride := 997
	if testing.Short() {
		stride = 4999
	}
	for _, ds := range datasets {
		t.Run(ds.name, func(t *testing.T) {
			trades := load(t, ds)
			tk := NewTracker(ds.symbol, Config{})
			checks := 0
			for k := range trades {
				if err := tk.Add(&trades[k].T); err != nil {
					t.Fatal(err)
				}
				if k%stride != 0 && k != len(trades)-1 {
					continue
				}
				at := trades[k].T.Time
				for _, d := range DefaultWindows {
					ws, ok := tk.Window(d)
					if !ok {
						t.Fatalf("Window(%v) not ok", d)
					}
					ref := refWindow(trades, k, d, at)
					checkWindow(t, ws, ref)
					covered := time.Duration(at-trades[0].T.Time) * time.Millisecond
					if ws.Complete != (covered >= d) || ws.Covered != min(covered, d) {
						t.Errorf("after %d trades, %v: Complete=%v Covered=%v; tape covers %v", k+1, d, ws.Complete, ws.Covered, covered)
					}
					checks++
				}
			}
			// Later times passed by the caller: the window slides past the tape.
			last := len(trades) - 1
			for _, later := range []int64{1_500, 30_000, 240_000} {
				at := trades[last].T.Time + later
				ws, ok := tk.WindowAt(time.Minute, at)
				if !ok {
					t.Fatalf("WindowAt(+%d) not ok", later)
				}
				checkWindow(t, ws, refWindow(trades, last, time.Minute, at))
			}
			if _, ok := tk.WindowAt(time.Minute, trades[last].T.Time-2000); ok {
				t.Error("WindowAt before the latest second answered")
			}
			if _, ok := tk.Window(2 * time.Minute); ok {
				t.Error("Window of an unconfigured length answered")
			}
			t.Logf("%d window checks", checks)
		})
	}
}

func TestWindowReadiness(t *testing.T) {
	trades := load(t, datasets[0])
	tk := NewTracker("BTCUSDT", Config{})
	if _, ok := tk.Window(time.Minute); ok {
		t.Fatal("Window answered before any trade")
	}
	first := trades[0].T.Time
	var k int
	for k = 0; trades[k].T.Time-first < 2*60_000; k++ {
		feed(t, tk, trades[k:k+1])
	}
	at := trades[k-1].T.Time
	covered := time.Duration(at-first) * time.Millisecond
	tests := []struct {
		name     string
		window   time.Duration
		complete bool
		covered  time.Duration
	}{
		{"OneMinuteComplete", time.Minute, true, time.Minute},
		{"FiveMinutesPartial", 5 * time.Minute, false, covered},
		{"OneHourPartial", time.Hour, false, covered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws, ok := tk.Window(tc.window)
			if !ok {
				t.Fatal("not ok")
			}
			if ws.Complete != tc.complete || ws.Covered != tc.covered {
				t.Errorf("Complete=%v Covered=%v, want %v %v", ws.Complete, ws.Covered, tc.complete, tc.covered)
			}
			if covered < 119*time.Second || covered >= 2*time.Minute {
				t.Errorf("tape covers %v, want just under 2m", covered)
			}
		})
	}
	t.Run("AdvanceCompletes", func(t *testing.T) {
		tk.Advance(first + 5*60_000)
		ws, _ := tk.Window(5 * time.Minute)
		if !ws.Complete || ws.Covered != 5*time.Minute {
			t.Errorf("after Advance: Complete=%v Covered=%v", ws.Complete, ws.Covered)
		}
		checkWindow(t, ws, refWindow(trades, k-1, 5*time.Minute, first+5*60_000))
	})
}

func TestTradeHistory(t *testing.T) {
	trades := load(t, datasets[0])
	tests := []struct {
		name   string
		size   int
		maxAge time.Duration
		q      func(last int64) TradeQuery
	}{
		{"AllKept", 0, 0, func(int64) TradeQuery { return TradeQuery{} }},
		{"SizeBound", 1000, 0, func(int64) TradeQuery { return TradeQuery{} }},
		{"AgeBound", 0, 90 * time.Second, func(int64) TradeQuery { return TradeQuery{} }},
		{"TimeRange", 0, 0, func(last int64) TradeQuery { return TradeQuery{From: last - 120_000, To: last - 60_000} }},
		{"MinQty", 0, 0, func(int64) TradeQuery { return TradeQuery{MinQty: fixed.MustParse("0.1")} }},
		{"MinNotional", 0, 0, func(int64) TradeQuery { return TradeQuery{MinNotional: fixed.MustParse("10000")} }},
		{"SellsLimited", 0, 0, func(int64) TradeQuery { return TradeQuery{Side: TakerSells, Limit: 25} }},
		{"BuysAboveQty", 500, 0, func(int64) TradeQuery { return TradeQuery{Side: TakerBuys, MinQty: fixed.MustParse("0.01")} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := NewTracker("BTCUSDT", Config{HistorySize: tc.size, HistoryMaxAge: tc.maxAge})
			feed(t, tk, trades)
			cfg := tk.Config()
			last := trades[len(trades)-1].T.Time
			q := tc.q(last)
			got := tk.Trades(q, nil)
			// Reference over the raw list.
			keepFrom := max(0, len(trades)-cfg.HistorySize)
			minTime := max(q.From, last-cfg.HistoryMaxAge.Milliseconds())
			minQty := mustRat(q.MinQty.String())
			minNot := mustRat(q.MinNotional.String())
			var want []int64
			for _, r := range trades[keepFrom:] {
				if r.T.Time < minTime || (q.To != 0 && r.T.Time >= q.To) || r.qty().Cmp(minQty) < 0 ||
					ratMul(r.price(), r.qty()).Cmp(minNot) < 0 ||
					(q.Side == TakerBuys && r.T.BuyerMaker) || (q.Side == TakerSells && !r.T.BuyerMaker) {
					continue
				}
				want = append(want, r.T.ID)
			}
			if q.Limit > 0 && len(want) > q.Limit {
				want = want[len(want)-q.Limit:]
			}
			if len(want) == 0 {
				t.Fatal("reference selects nothing: the case tests nothing")
			}
			if len(got) != len(want) {
				t.Fatalf("%d trades, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].ID != want[i] {
					t.Fatalf("trade %d: id %d, want %d", i, got[i].ID, want[i])
				}
			}
			if tk.HistoryLen() > cfg.HistorySize {
				t.Errorf("history holds %d > %d", tk.HistoryLen(), cfg.HistorySize)
			}
		})
	}
}

func TestVolumeFormatting(t *testing.T) {
	tests := []struct {
		name  string
		v     Volume
		text  string
		float float64
	}{
		{"Zero", Volume{}, "0", 0},
		{"OneSatoshi", Volume(fixed.I128(1)), "0.00000001", 1e-8},
		{"MinusOneSatoshi", Volume(fixed.I128(-1)), "-0.00000001", -1e-8},
		{"Negative", Volume(fixed.I128(-1_234_500_000)), "-12.345", -12.345},
		{"Beyond64Bits", Volume(fixed.Mul(1<<62, 8)), "368934881474.19103232", 368934881474.19103232},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := tc.v.MarshalText()
			eq(t, "text", string(b), tc.text)
			if tc.v.Float64() != tc.float {
				t.Errorf("Float64 = %v, want %v", tc.v.Float64(), tc.float)
			}
		})
	}
}
