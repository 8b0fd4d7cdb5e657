package flow

import (
	"math/big"
	"testing"

	"github.com/orderflow/orderflow/fixed"
)

func checkProfile(t *testing.T, p Profile, trades []rawTrade, g *big.Rat, pct int64) {
	t.Helper()
	levels := refFootprint(trades, g)
	if len(p.Levels) != len(levels) {
		t.Fatalf("%d levels, want %d", len(p.Levels), len(levels))
	}
	total := new(big.Rat)
	for i, l := range p.Levels {
		eq(t, "price", l.Price.String(), exact(levels[i].price, 8))
		eq(t, "buy", l.BuyVolume.String(), exact(levels[i].buy, 8))
		eq(t, "sell", l.SellVolume.String(), exact(levels[i].sell, 8))
		total.Add(total, levels[i].vol())
	}
	eq(t, "Volume", p.Volume.String(), exact(total, 8))
	poc := refPOC(levels)
	eq(t, "POC", p.POC.String(), exact(levels[poc].price, 8))
	lo, hi, area := refValueArea(levels, pct)
	eq(t, "ValueAreaLow", p.ValueAreaLow.String(), exact(levels[lo].price, 8))
	eq(t, "ValueAreaHigh", p.ValueAreaHigh.String(), exact(levels[hi].price, 8))
	eq(t, "ValueAreaVolume", p.ValueAreaVolume.String(), exact(area, 8))
	// The area holds at least pct% and dropping either edge would not.
	if ratMul(area, big.NewRat(100, 1)).Cmp(ratMul(total, big.NewRat(pct, 1))) < 0 {
		t.Errorf("value area %s below %d%% of %s", exact(area, 8), pct, exact(total, 8))
	}
	eqInt(t, "FirstTime", p.FirstTime, trades[0].T.Time)
	eqInt(t, "LastTime", p.LastTime, trades[len(trades)-1].T.Time)
}

func TestSessionProfileMatchesReference(t *testing.T) {
	tests := []struct {
		name  string
		ds    dataset
		group string
		pct   int64
	}{
		// The spot BTCUSDT recording crosses 2024-08-09 00:00 UTC: the
		// session profile must hold only the new day's trades.
		{"SpotBTCUSDTAcrossMidnightRaw", datasets[0], "", 0},
		{"SpotBTCUSDTAcrossMidnightGroup1", datasets[0], "1", 0},
		{"USDMETHUSDTGroup0.05VA80", datasets[1], "0.05", 80},
		{"VisionBTCUSDTRaw", datasets[2], "", 0},
		{"DENTUSDTRawVA50", datasets[3], "", 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trades := load(t, tc.ds)
			cfg := Config{ValueAreaPercent: tc.pct}
			var g *big.Rat
			if tc.group != "" {
				cfg.PriceGroup = fixed.MustParse(tc.group)
				g = mustRat(tc.group)
			}
			tk := NewTracker(tc.ds.symbol, cfg)
			feed(t, tk, trades)
			p, ok := tk.SessionProfile()
			if !ok {
				t.Fatal("no session profile")
			}
			day := trades[len(trades)-1].T.Time / 86_400_000 * 86_400_000
			eqInt(t, "From", p.From, day)
			var session []rawTrade
			for _, r := range trades {
				if r.T.Time >= day {
					session = append(session, r)
				}
			}
			checkProfile(t, p, session, g, tk.Config().ValueAreaPercent)
		})
	}
}

func TestRangeProfileMatchesReference(t *testing.T) {
	trades := load(t, datasets[0])
	first := trades[0].T.Time - trades[0].T.Time%60_000
	tests := []struct {
		name     string
		from, to int64 // minutes after the first bar's start; to < 0: open
		group    string
	}{
		{"MiddleSixMinutes", 2, 8, ""},
		{"OpenEndedIncludesOpenBar", 9, -1, ""},
		{"WholeTapeGroup5", 0, -1, "5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}
			var g *big.Rat
			if tc.group != "" {
				cfg.PriceGroup = fixed.MustParse(tc.group)
				g = mustRat(tc.group)
			}
			tk := NewTracker("BTCUSDT", cfg)
			feed(t, tk, trades)
			from, to := first+tc.from*60_000, int64(0)
			if tc.to >= 0 {
				to = first + tc.to*60_000
			}
			p, ok := tk.Profile(from, to)
			if !ok {
				t.Fatal("no profile")
			}
			var in []rawTrade
			for _, r := range trades {
				if r.T.Time >= from && (to == 0 || r.T.Time < to) {
					in = append(in, r)
				}
			}
			checkProfile(t, p, in, g, DefaultValueAreaPercent)
		})
	}
	t.Run("EmptyRange", func(t *testing.T) {
		tk := NewTracker("BTCUSDT", Config{})
		feed(t, tk, trades)
		if _, ok := tk.Profile(first-600_000, first); ok {
			t.Error("profile of a range without bars answered")
		}
	})
}
