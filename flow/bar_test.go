package flow

import (
	"math/big"
	"testing"
	"time"

	"github.com/orderflow/orderflow/fixed"
)

type refBar struct {
	start                   int64
	trades                  []rawTrade
	agg                     refAgg
	cvd, maxDelta, minDelta *big.Rat
	levels                  []*refLevel
	stacked                 []refStack
}

// refBars splits trades into epoch-aligned bars of ms milliseconds.
func refBars(trades []rawTrade, ms int64, g *big.Rat, pct int64, minRun int) []*refBar {
	var out []*refBar
	cvd := new(big.Rat)
	var cur *refBar
	var delta *big.Rat
	for i := range trades {
		r := &trades[i]
		start := r.T.Time - r.T.Time%ms
		if cur == nil || cur.start != start {
			cur = &refBar{start: start, agg: newAgg()}
			out = append(out, cur)
			delta = new(big.Rat)
		}
		cur.trades = append(cur.trades, *r)
		cur.agg.add(r)
		if r.T.BuyerMaker {
			cvd = ratSub(cvd, r.qty())
			delta = ratSub(delta, r.qty())
		} else {
			cvd = ratAdd(cvd, r.qty())
			delta = ratAdd(delta, r.qty())
		}
		cur.cvd = cvd
		if cur.maxDelta == nil || delta.Cmp(cur.maxDelta) > 0 {
			cur.maxDelta = delta
		}
		if cur.minDelta == nil || delta.Cmp(cur.minDelta) < 0 {
			cur.minDelta = delta
		}
	}
	for _, b := range out {
		b.levels = refFootprint(b.trades, g)
		b.stacked = refImbalances(b.levels, g, pct, minRun)
	}
	return out
}

func checkBar(t *testing.T, got *Bar, want *refBar) {
	t.Helper()
	tr := want.trades
	eqInt(t, "Start", got.Start, want.start)
	eqInt(t, "End", got.End, want.start+60_000)
	eq(t, "Open", got.Open.String(), tr[0].P[:len(got.Open.String())])
	eq(t, "Open", got.Open.String(), exact(tr[0].price(), 8))
	eq(t, "Close", got.Close.String(), exact(tr[len(tr)-1].price(), 8))
	high, low := tr[0].price(), tr[0].price()
	for _, r := range tr {
		if r.price().Cmp(high) > 0 {
			high = r.price()
		}
		if r.price().Cmp(low) < 0 {
			low = r.price()
		}
	}
	eq(t, "High", got.High.String(), exact(high, 8))
	eq(t, "Low", got.Low.String(), exact(low, 8))
	eqInt(t, "FirstID", got.FirstID, tr[0].T.ID)
	eqInt(t, "LastID", got.LastID, tr[len(tr)-1].T.ID)
	eqInt(t, "Trades", got.Trades, want.agg.trades)
	eqInt(t, "BuyTrades", got.BuyTrades, want.agg.buys)
	eq(t, "Volume", got.Volume.String(), exact(want.agg.vol(), 8))
	eq(t, "BuyVolume", got.BuyVolume.String(), exact(want.agg.buy, 8))
	eq(t, "SellVolume", got.SellVolume.String(), exact(want.agg.sell, 8))
	eq(t, "Delta", got.Delta.String(), exact(ratSub(want.agg.buy, want.agg.sell), 8))
	eq(t, "MaxDelta", got.MaxDelta.String(), exact(want.maxDelta, 8))
	eq(t, "MinDelta", got.MinDelta.String(), exact(want.minDelta, 8))
	eq(t, "CVD", got.CVD.String(), exact(want.cvd, 8))
	eq(t, "Notional", got.Notional.String(), exact(want.agg.notional(), 16))
	eq(t, "VWAP", got.VWAP.String(), want.agg.vwap())
	if len(got.Footprint) != len(want.levels) {
		t.Fatalf("bar %d: %d footprint levels, want %d", got.Start, len(got.Footprint), len(want.levels))
	}
	for i, l := range got.Footprint {
		w := want.levels[i]
		eq(t, "level price", l.Price.String(), exact(w.price, 8))
		eq(t, "level buy", l.BuyVolume.String(), exact(w.buy, 8))
		eq(t, "level sell", l.SellVolume.String(), exact(w.sell, 8))
		if l.BuyImbalance != w.buyImb || l.SellImbalance != w.sellImb {
			t.Errorf("bar %d level %s: imbalance buy=%v sell=%v, want %v %v", got.Start, l.Price, l.BuyImbalance, l.SellImbalance, w.buyImb, w.sellImb)
		}
	}
	p := refPOC(want.levels)
	eq(t, "POC", got.POC.String(), exact(want.levels[p].price, 8))
	eq(t, "POCVolume", got.POCVolume.String(), exact(want.levels[p].vol(), 8))
	if len(got.Stacked) != len(want.stacked) {
		t.Fatalf("bar %d: stacked %+v, want %+v", got.Start, got.Stacked, want.stacked)
	}
	for i, s := range got.Stacked {
		w := want.stacked[i]
		if (s.Side == 0) != w.buy || s.Low.String() != w.low || s.High.String() != w.high || s.Levels != w.n {
			t.Errorf("bar %d stacked[%d] = %+v, want %+v", got.Start, i, s, w)
		}
	}
}

func TestBarsMatchReference(t *testing.T) {
	tests := []struct {
		name  string
		ds    dataset
		group string // "" = raw price
	}{
		{"SpotBTCUSDTRawPrice", datasets[0], ""},
		{"SpotBTCUSDTGroup1USD", datasets[0], "1"},
		{"SpotBTCUSDTGroup5USD", datasets[0], "5"},
		{"USDMETHUSDTRawPrice", datasets[1], ""},
		{"USDMETHUSDTGroup0.25", datasets[1], "0.25"},
		{"VisionBTCUSDTGroup2USD", datasets[2], "2"},
		{"DENTUSDTRawPrice", datasets[3], ""},
		{"DENTUSDTGroup0.00001", datasets[3], "0.00001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trades := load(t, tc.ds)
			var g *big.Rat
			cfg := Config{}
			if tc.group != "" {
				g = mustRat(tc.group)
				cfg.PriceGroup = fixed.MustParse(tc.group)
			}
			var emitted []Bar
			cfg.OnBarClose = func(iv time.Duration, b *Bar) {
				if iv != time.Minute || !b.Closed {
					t.Errorf("OnBarClose(%v, closed=%v)", iv, b.Closed)
				}
				emitted = append(emitted, b.Clone())
			}
			tk := NewTracker(tc.ds.symbol, cfg)
			feed(t, tk, trades)
			cur, ok := tk.CurrentBar(time.Minute)
			if !ok {
				t.Fatal("no open bar")
			}
			tk.Flush()
			ref := refBars(trades, 60_000, g, DefaultImbalancePercent, DefaultStackedImbalanceMin)
			if len(emitted) != len(ref) {
				t.Fatalf("%d bars emitted, want %d", len(emitted), len(ref))
			}
			imb, stacks := 0, 0
			for i := range ref {
				checkBar(t, &emitted[i], ref[i])
				for _, l := range emitted[i].Footprint {
					if l.BuyImbalance || l.SellImbalance {
						imb++
					}
				}
				stacks += len(emitted[i].Stacked)
			}
			if imb == 0 {
				t.Error("no imbalance in the whole recording: the imbalance check tests nothing")
			}
			t.Logf("%d bars, %d imbalanced levels, %d stacked imbalances", len(ref), imb, stacks)
			// The open bar seen before Flush is the last bar, not yet closed.
			if cur.Closed {
				t.Error("CurrentBar reports Closed")
			}
			cur.Closed = true
			checkBar(t, &cur, ref[len(ref)-1])
			kept := tk.Bars(time.Minute, 0)
			if len(kept) != len(ref) {
				t.Fatalf("Bars kept %d, want %d", len(kept), len(ref))
			}
			for i := range kept {
				checkBar(t, &kept[i], ref[i])
			}
			if last3 := tk.Bars(time.Minute, 3); len(last3) != 3 || last3[0].Start != ref[len(ref)-3].start {
				t.Errorf("Bars(1m, 3) = %d bars from %d", len(last3), last3[0].Start)
			}
		})
	}
}

func TestBarRingRecyclesAndBounds(t *testing.T) {
	trades := load(t, datasets[0])
	var emitted []int64
	tk := NewTracker("BTCUSDT", Config{BarHistory: 4, BarIntervals: []time.Duration{time.Minute, 5 * time.Minute}, OnBarClose: func(iv time.Duration, b *Bar) {
		if iv == time.Minute {
			emitted = append(emitted, b.Start)
		}
	}})
	feed(t, tk, trades)
	tk.Flush()
	ref := refBars(trades, 60_000, nil, DefaultImbalancePercent, DefaultStackedImbalanceMin)
	kept := tk.Bars(time.Minute, 0)
	if len(kept) != 4 {
		t.Fatalf("kept %d bars, want 4", len(kept))
	}
	// The kept bars are the last four, intact although their storage was
	// recycled from evicted bars.
	for i := range kept {
		checkBar(t, &kept[i], ref[len(ref)-4+i])
	}
	if len(emitted) != len(ref) {
		t.Fatalf("emitted %d, want %d", len(emitted), len(ref))
	}
	ref5 := refBars(trades, 300_000, nil, DefaultImbalancePercent, DefaultStackedImbalanceMin)
	kept5 := tk.Bars(5*time.Minute, 0)
	if len(kept5) != len(ref5) {
		t.Fatalf("5m bars: %d, want %d", len(kept5), len(ref5))
	}
	for i := range kept5 {
		eqInt(t, "5m Start", kept5[i].Start, ref5[i].start)
		eqInt(t, "5m Trades", kept5[i].Trades, ref5[i].agg.trades)
		eq(t, "5m Delta", kept5[i].Delta.String(), exact(ratSub(ref5[i].agg.buy, ref5[i].agg.sell), 8))
		eq(t, "5m POC", kept5[i].POC.String(), exact(ref5[i].levels[refPOC(ref5[i].levels)].price, 8))
	}
}

func TestAdvanceClosesBarsOnTime(t *testing.T) {
	trades := load(t, datasets[0])
	var closed []int64
	tk := NewTracker("BTCUSDT", Config{OnBarClose: func(_ time.Duration, b *Bar) { closed = append(closed, b.Start) }})
	feed(t, tk, trades[:100])
	start := trades[99].T.Time - trades[99].T.Time%60_000
	tk.Advance(start + 59_999)
	if len(closed) != 0 {
		t.Fatalf("closed %v before the bar's end", closed)
	}
	tk.Advance(start + 60_000)
	if len(closed) != 1 || closed[0] != start {
		t.Fatalf("closed %v, want [%d]", closed, start)
	}
	if _, ok := tk.CurrentBar(time.Minute); ok {
		t.Error("a bar is still open after Advance past its end")
	}
}

// TestImbalanceRules pins the documented edge rules on a hand-built
// footprint (prices and volumes are arbitrary: this checks the rule
// definitions, the real-data tests check the arithmetic).
func TestImbalanceRules(t *testing.T) {
	d := fixed.MustParse
	lv := func(p, buy, sell string) FootprintLevel {
		return FootprintLevel{Price: d(p), BuyVolume: Volume(fixed.I128(int64(d(buy)))), SellVolume: Volume(fixed.I128(int64(d(sell))))}
	}
	tests := []struct {
		name    string
		group   fixed.Dec
		fp      []FootprintLevel
		buyImb  []bool
		sellImb []bool
		stacked int
	}{
		{"ExactlyThreeTimesIsImbalanced", 0,
			[]FootprintLevel{lv("10", "0", "1"), lv("11", "3", "0")},
			[]bool{false, true}, []bool{false, false}, 0},
		{"JustBelowRatioIsNot", 0,
			[]FootprintLevel{lv("10", "0", "1"), lv("11", "2.99999999", "0")},
			[]bool{false, false}, []bool{false, false}, 0},
		{"ZeroNeighbourCounts", 0,
			[]FootprintLevel{lv("10", "5", "0"), lv("11", "1", "0")},
			[]bool{false, true}, []bool{false, false}, 0},
		{"SellSideMirror", 0,
			[]FootprintLevel{lv("10", "0", "3"), lv("11", "1", "0")},
			[]bool{false, false}, []bool{true, false}, 0},
		{"EdgesNeverImbalanced", 0,
			[]FootprintLevel{lv("10", "9", "9")},
			[]bool{false}, []bool{false}, 0},
		{"GroupGapMeansZeroNeighbour", d("1"),
			[]FootprintLevel{lv("10", "0", "100"), lv("12", "1", "0")},
			[]bool{false, true}, []bool{true, false}, 0},
		{"StackOfThree", 0,
			[]FootprintLevel{lv("10", "0", "1"), lv("11", "3", "1"), lv("12", "3", "1"), lv("13", "3", "0")},
			[]bool{false, true, true, true}, []bool{false, false, false, false}, 1},
		{"GapBreaksStack", d("1"),
			[]FootprintLevel{lv("10", "0", "1"), lv("11", "3", "1"), lv("13", "3", "1"), lv("14", "3", "0")},
			[]bool{false, true, true, true}, []bool{false, true, false, false}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := markImbalances(tc.fp, nil, tc.group, DefaultImbalancePercent, DefaultStackedImbalanceMin)
			for i, l := range tc.fp {
				if l.BuyImbalance != tc.buyImb[i] || l.SellImbalance != tc.sellImb[i] {
					t.Errorf("level %s: buy=%v sell=%v, want %v %v", l.Price, l.BuyImbalance, l.SellImbalance, tc.buyImb[i], tc.sellImb[i])
				}
			}
			if len(st) != tc.stacked {
				t.Errorf("stacked %+v, want %d runs", st, tc.stacked)
			}
		})
	}
}
