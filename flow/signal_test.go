package flow

import (
	"math/big"
	"testing"
	"time"
)

func TestSignalsMatchReference(t *testing.T) {
	tests := []struct {
		name     string
		ds       dataset
		lookback int
		pct      int64
		minLv    int
	}{
		{"SpotBTCUSDTLookback3", datasets[0], 3, 20, 5},
		{"SpotBTCUSDTLookback2Exhaustion50", datasets[0], 2, 50, 10},
		{"USDMETHUSDTLookback2", datasets[1], 2, 30, 5},
		{"VisionBTCUSDTLookback4", datasets[2], 4, 20, 5},
	}
	divergences, exhausted := 0, 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trades := load(t, tc.ds)
			var bars []Bar
			tk := NewTracker(tc.ds.symbol, Config{DivergenceLookback: tc.lookback, ExhaustionPercent: tc.pct, ExhaustionMinLevels: tc.minLv,
				OnBarClose: func(_ time.Duration, b *Bar) { bars = append(bars, b.Clone()) }})
			feed(t, tk, trades)
			tk.Flush()
			ref := refBars(trades, 60_000, nil, DefaultImbalancePercent, DefaultStackedImbalanceMin)
			if len(bars) != len(ref) {
				t.Fatalf("%d bars, want %d", len(bars), len(ref))
			}
			signals := 0
			for i, rb := range ref {
				highs, lows := rb.trades[0].price(), rb.trades[0].price()
				for _, r := range rb.trades {
					if r.price().Cmp(highs) > 0 {
						highs = r.price()
					}
					if r.price().Cmp(lows) < 0 {
						lows = r.price()
					}
				}
				want := NoDivergence
				if i >= tc.lookback {
					newHigh, newLow := true, true
					for _, p := range ref[i-tc.lookback : i] {
						for _, r := range p.trades {
							if r.price().Cmp(highs) >= 0 {
								newHigh = false
							}
							if r.price().Cmp(lows) <= 0 {
								newLow = false
							}
						}
					}
					// Bearish: new high and CVD not strictly above every earlier CVD.
					allAbove := true
					allBelow := true
					for _, p := range ref[i-tc.lookback : i] {
						if rb.cvd.Cmp(p.cvd) <= 0 {
							allAbove = false
						}
						if rb.cvd.Cmp(p.cvd) >= 0 {
							allBelow = false
						}
					}
					switch {
					case newHigh && !allAbove:
						want = BearishDivergence
					case newLow && !allBelow:
						want = BullishDivergence
					}
				}
				if bars[i].Divergence != want {
					t.Errorf("bar %d: divergence %q, want %q", bars[i].Start, bars[i].Divergence, want)
				}
				lv := rb.levels
				n := int64(len(lv))
				ex := func(l *refLevel) bool {
					if int(n) < tc.minLv {
						return false
					}
					// vol(extreme) <= pct% of (total / n)
					avg := new(big.Rat).Quo(rb.agg.vol(), big.NewRat(n, 1))
					return l.vol().Cmp(ratMul(avg, big.NewRat(tc.pct, 100))) <= 0
				}
				if bars[i].HighExhausted != ex(lv[len(lv)-1]) || bars[i].LowExhausted != ex(lv[0]) {
					t.Errorf("bar %d: exhausted high=%v low=%v, want %v %v", bars[i].Start, bars[i].HighExhausted, bars[i].LowExhausted, ex(lv[len(lv)-1]), ex(lv[0]))
				}
				if bars[i].Divergence != NoDivergence || bars[i].HighExhausted || bars[i].LowExhausted {
					signals++
				}
				if bars[i].Divergence != NoDivergence {
					divergences++
				}
				if bars[i].HighExhausted || bars[i].LowExhausted {
					exhausted++
				}
			}
			if signals == 0 {
				t.Error("no signal in the recording: the case tests nothing")
			}
			t.Logf("%d of %d bars carry a signal", signals, len(bars))
		})
	}
	if divergences == 0 || exhausted == 0 {
		t.Errorf("over all cases: %d divergences, %d exhausted bars; both must occur for the test to mean anything", divergences, exhausted)
	}
	t.Logf("over all cases: %d divergences, %d exhausted bars", divergences, exhausted)
}
