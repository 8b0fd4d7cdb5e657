package book

import (
	"slices"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// TestInsertIntoNearTombstone: an insertion next to no tombstone shifts
// into the nearest one within reach, above or below, and otherwise shifts
// to the end of the side; the side stays exactly the reference's levels in
// every case, on both sides.
func TestInsertIntoNearTombstone(t *testing.T) {
	half := func(p int64) fixed.Dec { return fixed.Dec(p*int64(fixed.One) + int64(fixed.One)/2) }
	whole := func(p int64) fixed.Dec { return fixed.Dec(p * int64(fixed.One)) }
	for _, side := range []market.Side{market.Buy, market.Sell} {
		t.Run(side.String(), func(t *testing.T) {
			var b Book
			ref := map[fixed.Dec]fixed.Dec{}
			set := func(p, q fixed.Dec) {
				t.Helper()
				if err := b.Apply(side, p, q); err != nil {
					t.Fatal(err)
				}
				if q == 0 {
					delete(ref, p)
				} else {
					ref[p] = q
				}
				var want []market.Level
				for p, q := range ref {
					want = append(want, market.Level{Price: p, Qty: q})
				}
				slices.SortFunc(want, func(x, y market.Level) int {
					if side == market.Buy {
						return int(y.Price - x.Price) // best (highest) first
					}
					return int(x.Price - y.Price)
				})
				if got := slices.Collect(b.Levels(side)); !slices.Equal(got, want) {
					t.Fatalf("after %s@%s: levels differ from the reference\n got %v\nwant %v", q, p, got, want)
				}
				if b.Len(side) != len(ref) {
					t.Fatalf("Len %d, want %d", b.Len(side), len(ref))
				}
				for p, q := range ref {
					if got, ok := b.Level(side, p); !ok || got != q {
						t.Fatalf("Level(%s) = %s %v, want %s", p, got, ok, q)
					}
				}
			}
			tombs := func() int {
				if side == market.Buy {
					return b.bidTomb
				}
				return b.askTomb
			}
			for p := int64(1000); p <= 1100; p++ {
				set(whole(p), whole(p-990))
			}
			set(whole(1060), 0)
			set(whole(1020), 0)
			if tombs() != 2 {
				t.Fatalf("%d tombstones, want 2", tombs())
			}
			// Between two live levels: one tombstone is 20 levels away on
			// each side; the search toward the best finds its own first.
			set(half(1040), 7)
			if tombs() != 1 {
				t.Fatalf("after the first insert: %d tombstones, want 1 (one reused)", tombs())
			}
			// The tombstone left is now only on the far side of this one.
			set(half(1030), 8)
			if tombs() != 0 {
				t.Fatalf("after the second insert: %d tombstones, want 0", tombs())
			}
			// No tombstone left: the ordinary shift.
			set(half(1050), 9)
			set(half(1099), 10)
			set(half(1000), 11)
			// A tombstone out of reach (over 48 levels away) is not used.
			set(whole(1001), 0)
			set(half(1090), 12)
			if tombs() != 1 {
				t.Fatalf("a tombstone %d levels away was used", 89)
			}
		})
	}
}
