package service

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/market"
)

// The snapshot gate's spacing is the weight of one snapshot over the
// per-minute budget, at most 250 ms (Binance: spot 6,000; USD-M 2,400), with the weights
// of BINANCE.md's table: spot 5 (<= 100 levels), 25 (<= 500), 50 (<= 1000),
// 250 (<= 5000); USD-M 2 (<= 50), 5 (100), 10 (500), 20 (1000).
func TestSnapshotSpacingFitsTheWeightBudget(t *testing.T) {
	cases := []struct {
		name  string
		kind  market.Kind
		limit int
		perS  float64 // snapshots per second the budget pays for
	}{
		{"Spot100", market.Spot, 100, 6000.0 / 5 / 60},
		{"Spot500", market.Spot, 500, 6000.0 / 25 / 60},
		{"Spot1000", market.Spot, 1000, 6000.0 / 50 / 60},
		{"Spot5000", market.Spot, 5000, 6000.0 / 250 / 60},
		{"USDM50", market.USDM, 50, 2400.0 / 2 / 60},
		{"USDM1000", market.USDM, 1000, 2400.0 / 20 / 60},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := snapshotSpacing(tc.kind, tc.limit)
			// Heavy snapshots keep the 250 ms spacing; the weight
			// limiter paces them.
			want := min(250*time.Millisecond, time.Duration(float64(time.Second)/tc.perS))
			if d := got - want; d < -time.Microsecond || d > time.Microsecond {
				t.Fatalf("spacing %v, want %v (%.2f snapshots/s)", got, want, tc.perS)
			}
		})
	}
	// 1,000 spot books of 100 levels sync within a minute at this pace.
	if n := time.Minute / snapshotSpacing(market.Spot, 100); n < 1000 {
		t.Fatalf("%d snapshots a minute, want >= 1000", n)
	}
}
