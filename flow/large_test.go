package flow

import (
	"math/big"
	"slices"
	"sort"
	"testing"

	"github.com/orderflow/orderflow/fixed"
)

// refLarge flags large trades by plain recomputation: the percentile is
// recomputed after trade c (1-based) when c == minSample or c - minSample
// is a multiple of every; it uses the last sample sizes as Rats.
func refLarge(trades []rawTrade, minNotional string, bp int64, sample, minSample, every int) (ids []int64, thresholds []string) {
	var thr *big.Rat
	minNot := mustRat(minNotional)
	for i, r := range trades {
		c := i + 1
		byNot := minNot.Sign() > 0 && ratMul(r.price(), r.qty()).Cmp(minNot) >= 0
		byPct := bp >= 0 && thr != nil && r.qty().Cmp(thr) > 0
		if byNot || byPct {
			ids = append(ids, r.T.ID)
			if thr != nil {
				thresholds = append(thresholds, exact(thr, 8))
			} else {
				thresholds = append(thresholds, "0")
			}
		}
		if bp < 0 || c < minSample || (c-minSample)%every != 0 {
			continue
		}
		lo := max(0, c-sample)
		qs := make([]*big.Rat, 0, c-lo)
		for _, s := range trades[lo:c] {
			qs = append(qs, s.qty())
		}
		sort.Slice(qs, func(a, b int) bool { return qs[a].Cmp(qs[b]) < 0 })
		// nearest rank: smallest k with k/n >= bp/10000
		k := 1
		for int64(k)*10000 < bp*int64(len(qs)) {
			k++
		}
		thr = qs[k-1]
	}
	return ids, thresholds
}

func TestLargeTradesMatchReference(t *testing.T) {
	tests := []struct {
		name string
		ds   dataset
		cfg  Config
		// reference parameters
		minNotional string
		bp          int64
	}{
		{"SpotBTCUSDTDefaults", datasets[0], Config{}, "0", 9900},
		{"SpotBTCUSDTNotionalOnly", datasets[0], Config{LargeNotional: fixed.MustParse("50000"), LargePercentile: -1}, "50000", -1},
		{"SpotBTCUSDTBothSmallSample", datasets[0], Config{LargeNotional: fixed.MustParse("100000"), LargePercentile: 99.5, LargeSample: 500, LargeMinSample: 300, LargeRecompute: 37}, "100000", 9950},
		{"USDMETHUSDTP95", datasets[1], Config{LargePercentile: 95, LargeSample: 2000, LargeRecompute: 250}, "0", 9500},
		{"DENTUSDTP90Sample100", datasets[3], Config{LargePercentile: 90, LargeSample: 100, LargeMinSample: 50, LargeRecompute: 10}, "0", 9000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trades := load(t, tc.ds)
			var called []LargeTrade
			cfg := tc.cfg
			cfg.LargeHistory = 1 << 20
			cfg.OnLarge = func(l LargeTrade) { called = append(called, l) }
			tk := NewTracker(tc.ds.symbol, cfg)
			eff := tk.Config()
			if th := tk.LargeThreshold(); th.Ready {
				t.Fatal("threshold ready before any trade")
			}
			feed(t, tk, trades[:eff.LargeMinSample-1])
			if th := tk.LargeThreshold(); th.Ready && tc.bp >= 0 {
				t.Fatalf("threshold ready after %d trades, min sample %d", eff.LargeMinSample-1, eff.LargeMinSample)
			}
			feed(t, tk, trades[eff.LargeMinSample-1:])
			if th := tk.LargeThreshold(); th.Enabled != (tc.bp >= 0) || th.Ready != (tc.bp >= 0) {
				t.Fatalf("threshold state %+v", th)
			}
			ids, thr := refLarge(trades, tc.minNotional, tc.bp, eff.LargeSample, eff.LargeMinSample, eff.LargeRecompute)
			got := tk.LargeTrades(0, nil)
			if len(ids) == 0 {
				t.Fatal("reference flags nothing: the case tests nothing")
			}
			if len(got) != len(ids) || len(called) != len(ids) {
				t.Fatalf("%d large trades (%d callbacks), want %d", len(got), len(called), len(ids))
			}
			for i := range got {
				if got[i] != called[i] {
					t.Fatalf("callback %d = %+v, ring has %+v", i, called[i], got[i])
				}
				eqInt(t, "ID", got[i].ID, ids[i])
				eq(t, "QtyThreshold", got[i].QtyThreshold.String(), thr[i])
				want := fixed.MulDec(got[i].Price, got[i].Qty)
				if got[i].Notional.Int128() != want {
					t.Errorf("notional %s", got[i].Notional)
				}
			}
			t.Logf("%d large trades of %d", len(got), len(trades))
		})
	}
	t.Run("RingBound", func(t *testing.T) {
		trades := load(t, datasets[0])
		tk := NewTracker("BTCUSDT", Config{LargeHistory: 5})
		feed(t, tk, trades)
		ids, _ := refLarge(trades, "0", 9900, DefaultLargeSample, DefaultLargeSample, DefaultLargeRecompute)
		got := tk.LargeTrades(0, nil)
		if len(got) != 5 {
			t.Fatalf("ring holds %d, want 5", len(got))
		}
		for i := range got {
			eqInt(t, "ID", got[i].ID, ids[len(ids)-5+i])
		}
		if two := tk.LargeTrades(2, nil); len(two) != 2 || two[1].ID != ids[len(ids)-1] {
			t.Errorf("LargeTrades(2) = %+v", two)
		}
	})
}

func TestSelectKthAgreesWithSort(t *testing.T) {
	trades := load(t, datasets[0])
	qs := make([]fixed.Dec, 0, len(trades))
	for _, r := range trades {
		qs = append(qs, r.T.Qty)
	}
	tests := []struct {
		name string
		s    []fixed.Dec
	}{
		{"RealSizes", qs},
		{"RealSizesSorted", slices.Sorted(slices.Values(qs))},
		{"AllEqual", slices.Repeat([]fixed.Dec{7}, 1000)},
		{"One", []fixed.Dec{3}},
		{"Descending", descending(qs[:999])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sorted := slices.Sorted(slices.Values(tc.s))
			for _, k := range []int{0, len(sorted) / 2, len(sorted) * 99 / 100, len(sorted) - 1} {
				work := slices.Clone(tc.s)
				if got := selectKth(work, k); got != sorted[k] {
					t.Errorf("k=%d: %v, want %v", k, got, sorted[k])
				}
			}
		})
	}
}

func descending(s []fixed.Dec) []fixed.Dec {
	out := slices.Sorted(slices.Values(s))
	slices.Reverse(out)
	return out
}
