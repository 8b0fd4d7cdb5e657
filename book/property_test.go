package book

import (
	"fmt"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// refBook is the naive reference: a map per side, sorted on every read.
type refBook struct {
	side [2]map[fixed.Dec]fixed.Dec // indexed by market.Side
	id   int64
}

func newRef() *refBook {
	return &refBook{side: [2]map[fixed.Dec]fixed.Dec{{}, {}}}
}

func (r *refBook) apply(s market.Side, p, q fixed.Dec) {
	if q == 0 {
		delete(r.side[s], p)
		return
	}
	r.side[s][p] = q
}

// levels returns side s best first.
func (r *refBook) levels(s market.Side) []market.Level {
	ps := slices.Sorted(maps.Keys(r.side[s]))
	if s == market.Buy {
		slices.Reverse(ps)
	}
	out := make([]market.Level, 0, len(ps))
	for _, p := range ps {
		out = append(out, market.Level{Price: p, Qty: r.side[s][p]})
	}
	return out
}

func ratDec(d fixed.Dec) *big.Rat { return new(big.Rat).SetFrac64(int64(d), int64(fixed.One)) }

// within computes depth and notional within bps of the mid with big.Rat,
// independently of the book's integer bounds.
func (r *refBook) within(bps int) (q [2]*big.Int, n [2]*big.Int, ok bool) {
	bids, asks := r.levels(market.Buy), r.levels(market.Sell)
	if len(bids) == 0 || len(asks) == 0 || bps < 0 {
		return q, n, false
	}
	mid := new(big.Rat).Add(ratDec(bids[0].Price), ratDec(asks[0].Price))
	mid.Quo(mid, big.NewRat(2, 1))
	lo := new(big.Rat).Mul(mid, big.NewRat(int64(10000-bps), 10000))
	hi := new(big.Rat).Mul(mid, big.NewRat(int64(10000+bps), 10000))
	for s := range 2 {
		q[s], n[s] = new(big.Int), new(big.Int)
	}
	for _, l := range bids {
		if ratDec(l.Price).Cmp(lo) >= 0 {
			q[0].Add(q[0], big.NewInt(int64(l.Qty)))
			n[0].Add(n[0], new(big.Int).Mul(big.NewInt(int64(l.Price)), big.NewInt(int64(l.Qty))))
		}
	}
	for _, l := range asks {
		if ratDec(l.Price).Cmp(hi) <= 0 {
			q[1].Add(q[1], big.NewInt(int64(l.Qty)))
			n[1].Add(n[1], new(big.Int).Mul(big.NewInt(int64(l.Price)), big.NewInt(int64(l.Qty))))
		}
	}
	return q, n, true
}

// agree checks every read of b against r and returns the first difference.
func agree(b *Book, r *refBook, rng *rand.Rand) error {
	if b.UpdateID() != r.id {
		return fmt.Errorf("UpdateID %d, want %d", b.UpdateID(), r.id)
	}
	for _, s := range []market.Side{market.Buy, market.Sell} {
		want := r.levels(s)
		var got []market.Level
		if s == market.Buy {
			got = b.Bids(0, nil)
		} else {
			got = b.Asks(0, nil)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s levels:\n got %v\nwant %v", s, got, want)
		}
		if b.Len(s) != len(want) {
			return fmt.Errorf("%s Len %d, want %d", s, b.Len(s), len(want))
		}
		if it := slices.Collect(b.Levels(s)); !slices.Equal(it, want) {
			return fmt.Errorf("%s Levels iterator differs", s)
		}
		n := rng.IntN(len(want) + 3)
		var top []market.Level
		if s == market.Buy {
			top = b.Bids(n, []market.Level{{Price: 1, Qty: 1}})
		} else {
			top = b.Asks(n, []market.Level{{Price: 1, Qty: 1}})
		}
		wantTop := append([]market.Level{{Price: 1, Qty: 1}}, want[:min(max(n, 0), len(want))]...)
		if n == 0 {
			wantTop = append([]market.Level{{Price: 1, Qty: 1}}, want...)
		}
		if !slices.Equal(top, wantTop) {
			return fmt.Errorf("%s top %d: got %v want %v", s, n, top, wantTop)
		}
		best, ok := b.BestBid()
		if s == market.Sell {
			best, ok = b.BestAsk()
		}
		if ok != (len(want) > 0) || (ok && best != want[0]) {
			return fmt.Errorf("%s best %v %v", s, best, ok)
		}
		// Point lookups: present and absent prices.
		for range 5 {
			p := fixed.Dec(rng.Int64N(int64(fixed.One)*3)) + 99*fixed.One
			if len(want) > 0 && rng.IntN(2) == 0 {
				p = want[rng.IntN(len(want))].Price
			}
			q, ok := b.Level(s, p)
			wq, wok := r.side[s][p]
			if q != wq || ok != wok {
				return fmt.Errorf("%s Level(%s) = %s %v, want %s %v", s, p, q, ok, wq, wok)
			}
		}
	}
	bids, asks := r.levels(market.Buy), r.levels(market.Sell)
	both := len(bids) > 0 && len(asks) > 0
	if c := b.Crossed(); c != (both && bids[0].Price >= asks[0].Price) {
		return fmt.Errorf("Crossed %v", c)
	}
	sp, ok := b.Spread()
	if ok != both || (ok && sp != asks[0].Price-bids[0].Price) {
		return fmt.Errorf("Spread %s %v", sp, ok)
	}
	mid, ok := b.Mid()
	if ok != both {
		return fmt.Errorf("Mid ok %v", ok)
	}
	if ok {
		// mid at 1e-9 = (bid + ask) * 1e9 / 2 / 1e8
		want := new(big.Int).Mul(big.NewInt(int64(bids[0].Price)+int64(asks[0].Price)), big.NewInt(5))
		if mid.Big().Cmp(want) != 0 {
			return fmt.Errorf("Mid %s, want %s", mid, want)
		}
		mp, _ := b.Microprice()
		num := new(big.Rat).Add(new(big.Rat).Mul(ratDec(bids[0].Price), ratDec(asks[0].Qty)), new(big.Rat).Mul(ratDec(asks[0].Price), ratDec(bids[0].Qty)))
		wmp, _ := num.Quo(num, new(big.Rat).Add(ratDec(bids[0].Qty), ratDec(asks[0].Qty))).Float64()
		if math.Abs(mp-wmp) > 1e-12*math.Abs(wmp) {
			return fmt.Errorf("Microprice %v, want %v", mp, wmp)
		}
	}
	allBps := []int{-1, 0, 1, 3, 10, 25, 100, 1000, 9999, 10000, 20000, math.MaxInt32}
	for range 2 {
		bps := allBps[rng.IntN(len(allBps))]
		bq, aq, ok := b.DepthWithin(bps)
		bn, an, ok2 := b.NotionalWithin(bps)
		wq, wn, wok := r.within(bps)
		if ok != wok || ok2 != wok {
			return fmt.Errorf("within %d bps: ok %v %v, want %v", bps, ok, ok2, wok)
		}
		if !ok {
			continue
		}
		if bq.Big().Cmp(wq[0]) != 0 || aq.Big().Cmp(wq[1]) != 0 {
			return fmt.Errorf("DepthWithin(%d) = %s/%s, want %s/%s", bps, bq, aq, wq[0], wq[1])
		}
		if bn.Big().Cmp(wn[0]) != 0 || an.Big().Cmp(wn[1]) != 0 {
			return fmt.Errorf("NotionalWithin(%d) = %s/%s, want %s/%s", bps, bn, an, wn[0], wn[1])
		}
	}
	// A full snapshot of the reference agrees with the book.
	ref := &market.DepthSnapshot{LastUpdateID: r.id, Bids: bids, Asks: asks}
	if m := b.Compare(ref, 0); m != nil {
		return fmt.Errorf("Compare with the reference: %v", m)
	}
	var snap market.DepthSnapshot
	b.Snapshot(0, &snap)
	if snap.LastUpdateID != r.id || !slices.Equal(snap.Bids, bids) || !slices.Equal(snap.Asks, asks) {
		return fmt.Errorf("Snapshot differs from the reference")
	}
	return nil
}

// priceTick is the price grid of the current seed: 0.01, or 1e-8 and 3e-8
// so that mids and band bounds fall between representable prices.
var priceTick fixed.Dec

// genPrice draws a price on a priceTick grid around 100, bids mostly below 100.00
// and asks above, so that levels are inserted, changed and removed often;
// cross > 0 lets it cross to the other side.
func genPrice(rng *rand.Rand, s market.Side, cross bool) fixed.Dec {
	tick := priceTick
	off := fixed.Dec(rng.IntN(150)+1) * tick
	if cross {
		off = -fixed.Dec(rng.IntN(5)) * tick
	}
	if s == market.Buy {
		return 100*fixed.One - off
	}
	return 100*fixed.One + off
}

func genQty(rng *rand.Rand) fixed.Dec {
	switch rng.IntN(4) {
	case 0:
		return fixed.Dec(rng.Int64N(math.MaxInt64/4)) + 1 // huge: exercises Int128 sums
	case 1:
		return 1 // 1e-8
	}
	return fixed.Dec(rng.Int64N(1000*int64(fixed.One))) + 1
}

// TestBookAgreesWithNaiveReference drives the book and the naive map book
// with the same seeded random streams (inserts, changes, deletes, deletes of
// absent levels, crossing prices, batched updates and snapshot resets) and
// compares every read after every step.
func TestBookAgreesWithNaiveReference(t *testing.T) {
	seeds := uint64(12)
	if testing.Short() {
		seeds = 3 // one per tick size; the race stage of make test
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprintf("Seed%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x6f72646572))
			priceTick = []fixed.Dec{fixed.One / 100, 1, 3}[seed%3]
			b, r := New(), newRef()
			var u market.DepthUpdate
			for step := range 1000 {
				side := market.Side(rng.IntN(2))
				op := rng.IntN(100)
				var desc string
				switch {
				case op < 40: // insert or change
					p, q := genPrice(rng, side, false), genQty(rng)
					desc = fmt.Sprintf("set %s %s@%s", side, q, p)
					if err := b.Apply(side, p, q); err != nil {
						t.Fatal(err)
					}
					r.apply(side, p, q)
				case op < 55: // change an existing level
					lv := r.levels(side)
					if len(lv) == 0 {
						continue
					}
					p, q := lv[rng.IntN(len(lv))].Price, genQty(rng)
					desc = fmt.Sprintf("change %s %s@%s", side, q, p)
					_ = b.Apply(side, p, q)
					r.apply(side, p, q)
				case op < 70: // delete an existing level, often the best
					lv := r.levels(side)
					if len(lv) == 0 {
						continue
					}
					i := rng.IntN(len(lv))
					if rng.IntN(2) == 0 {
						i = 0
					}
					desc = fmt.Sprintf("delete %s %s", side, lv[i].Price)
					_ = b.Apply(side, lv[i].Price, 0)
					r.apply(side, lv[i].Price, 0)
				case op < 78: // delete an absent level
					p := genPrice(rng, side, false)
					if _, ok := r.side[side][p]; ok {
						continue
					}
					desc = fmt.Sprintf("delete absent %s %s", side, p)
					_ = b.Apply(side, p, 0)
				case op < 83: // crossing price
					p, q := genPrice(rng, side, true), genQty(rng)
					desc = fmt.Sprintf("cross %s %s@%s", side, q, p)
					_ = b.Apply(side, p, q)
					r.apply(side, p, q)
				case op < 97: // a batched depth update
					u.Bids, u.Asks = u.Bids[:0], u.Asks[:0]
					u.FinalID = r.id + int64(rng.IntN(10)) + 1
					for range rng.IntN(12) {
						s := market.Side(rng.IntN(2))
						l := market.Level{Price: genPrice(rng, s, rng.IntN(20) == 0), Qty: genQty(rng)}
						if rng.IntN(3) == 0 {
							l.Qty = 0
						}
						if s == market.Buy {
							u.Bids = append(u.Bids, l)
						} else {
							u.Asks = append(u.Asks, l)
						}
					}
					desc = fmt.Sprintf("update %+v", u)
					if err := b.ApplyUpdate(&u); err != nil {
						t.Fatal(err)
					}
					for _, l := range u.Bids {
						r.apply(market.Buy, l.Price, l.Qty)
					}
					for _, l := range u.Asks {
						r.apply(market.Sell, l.Price, l.Qty)
					}
					r.id = u.FinalID
				default: // reset from a shuffled, uncrossed snapshot with zero levels
					snap := &market.DepthSnapshot{LastUpdateID: r.id + 100}
					nr := newRef()
					nr.id = snap.LastUpdateID
					for range rng.IntN(300) {
						s := market.Side(rng.IntN(2))
						l := market.Level{Price: genPrice(rng, s, false), Qty: genQty(rng)}
						if _, dup := nr.side[s][l.Price]; dup {
							continue
						}
						if rng.IntN(10) == 0 {
							l.Qty = 0
						}
						if s == market.Buy {
							snap.Bids = append(snap.Bids, l)
						} else {
							snap.Asks = append(snap.Asks, l)
						}
						nr.side[s][l.Price] = l.Qty
						nr.apply(s, l.Price, l.Qty) // drops the zero levels
					}
					desc = "reset"
					if err := b.Reset(snap); err != nil {
						t.Fatal(err)
					}
					r = nr
				}
				if err := agree(b, r, rng); err != nil {
					t.Fatalf("step %d (%s): %v", step, desc, err)
				}
			}
		})
	}
}
