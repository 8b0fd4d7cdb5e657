package flow

// An independent reference: plain loops over the decimal strings of the
// recordings with math/big.Rat, written without the package's code, so
// that every figure the tracker reports can be compared exactly.

import (
	"fmt"
	"math/big"
	"sort"
	"strings"
)

var (
	rat100 = big.NewRat(100, 1)
)

func ratAdd(a, b *big.Rat) *big.Rat { return new(big.Rat).Add(a, b) }
func ratSub(a, b *big.Rat) *big.Rat { return new(big.Rat).Sub(a, b) }
func ratMul(a, b *big.Rat) *big.Rat { return new(big.Rat).Mul(a, b) }

// exact formats r, which must be exact at scale digits, trimmed like
// fixed's formatting ("12.5", "0", "-3").
func exact(r *big.Rat, scale int) string {
	s := r.FloatString(scale)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	check := new(big.Rat)
	check.SetString(s)
	if check.Cmp(r) != 0 {
		panic(fmt.Sprintf("reference value %s is not exact at %d digits", r.RatString(), scale))
	}
	return s
}

// round8 rounds r to 8 decimals, half to even, via floor division.
func round8(r *big.Rat) string {
	x := ratMul(r, big.NewRat(100_000_000, 1))
	num, den := x.Num(), x.Denom()
	q, m := new(big.Int).DivMod(num, den, new(big.Int)) // floor, m >= 0
	twice := new(big.Int).Lsh(m, 1)
	switch c := twice.Cmp(den); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		q.Add(q, big.NewInt(1))
	}
	return exact(new(big.Rat).SetFrac(q, big.NewInt(100_000_000)), 8)
}

// refAgg is the reference sum over a set of trades.
type refAgg struct {
	trades, buys               int64
	buy, sell, buyNot, sellNot *big.Rat
	largest                    *rawTrade
}

func newAgg() refAgg {
	return refAgg{buy: new(big.Rat), sell: new(big.Rat), buyNot: new(big.Rat), sellNot: new(big.Rat)}
}

func (a *refAgg) add(r *rawTrade) {
	a.trades++
	q, n := r.qty(), ratMul(r.price(), r.qty())
	if !r.T.BuyerMaker {
		a.buys++
		a.buy.Add(a.buy, q)
		a.buyNot.Add(a.buyNot, n)
	} else {
		a.sell.Add(a.sell, q)
		a.sellNot.Add(a.sellNot, n)
	}
	if a.largest == nil || q.Cmp(a.largest.qty()) > 0 {
		a.largest = r
	}
}

func (a *refAgg) vol() *big.Rat      { return ratAdd(a.buy, a.sell) }
func (a *refAgg) notional() *big.Rat { return ratAdd(a.buyNot, a.sellNot) }
func (a *refAgg) vwap() string {
	if a.vol().Sign() == 0 {
		return "0"
	}
	return round8(new(big.Rat).Quo(a.notional(), a.vol()))
}
func (a *refAgg) avg() string {
	if a.trades == 0 {
		return "0"
	}
	return round8(new(big.Rat).Quo(a.vol(), big.NewRat(a.trades, 1)))
}

// refGroup floors p to a multiple of g (g nil: p itself).
func refGroup(p, g *big.Rat) *big.Rat {
	if g == nil {
		return p
	}
	x := new(big.Rat).Quo(p, g)
	fl := new(big.Int).Div(x.Num(), x.Denom()) // Euclidean: floor for positive
	return ratMul(new(big.Rat).SetInt(fl), g)
}

type refLevel struct {
	price, buy, sell *big.Rat
	buyImb, sellImb  bool
}

func (l *refLevel) vol() *big.Rat { return ratAdd(l.buy, l.sell) }

// refFootprint builds the sorted footprint of trades.
func refFootprint(trades []rawTrade, g *big.Rat) []*refLevel {
	byKey := map[string]*refLevel{}
	for i := range trades {
		r := &trades[i]
		p := refGroup(r.price(), g)
		k := p.RatString()
		l := byKey[k]
		if l == nil {
			l = &refLevel{price: p, buy: new(big.Rat), sell: new(big.Rat)}
			byKey[k] = l
		}
		if r.T.BuyerMaker {
			l.sell.Add(l.sell, r.qty())
		} else {
			l.buy.Add(l.buy, r.qty())
		}
	}
	out := make([]*refLevel, 0, len(byKey))
	for _, l := range byKey {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].price.Cmp(out[j].price) < 0 })
	return out
}

// refPOC returns the index of the highest volume, lowest price on ties.
func refPOC(levels []*refLevel) int {
	best := 0
	for i := len(levels) - 1; i >= 0; i-- { // scan down so the lowest wins ties
		if levels[i].vol().Cmp(levels[best].vol()) >= 0 {
			best = i
		}
	}
	return best
}

type refStack struct {
	buy       bool
	low, high string
	n         int
}

// refImbalances flags diagonal imbalances by looking the neighbour up by
// price, then collects stacked runs.
func refImbalances(levels []*refLevel, g *big.Rat, pct int64, minRun int) []refStack {
	byKey := map[string]*refLevel{}
	for _, l := range levels {
		byKey[l.price.RatString()] = l
	}
	pr := big.NewRat(pct, 1)
	neighbour := func(i, dir int) *refLevel {
		j := i + dir
		if j < 0 || j >= len(levels) {
			return nil
		}
		if g == nil {
			return levels[j]
		}
		want := ratAdd(levels[i].price, ratMul(g, big.NewRat(int64(dir), 1)))
		if l := byKey[want.RatString()]; l != nil {
			return l
		}
		return &refLevel{price: want, buy: new(big.Rat), sell: new(big.Rat)}
	}
	for i, l := range levels {
		if nb := neighbour(i, -1); nb != nil && l.buy.Sign() > 0 {
			l.buyImb = ratMul(l.buy, rat100).Cmp(ratMul(nb.sell, pr)) >= 0
		}
		if nb := neighbour(i, +1); nb != nil && l.sell.Sign() > 0 {
			l.sellImb = ratMul(l.sell, rat100).Cmp(ratMul(nb.buy, pr)) >= 0
		}
	}
	var out []refStack
	for _, buy := range []bool{true, false} {
		run := 0
		for i := 0; i <= len(levels); i++ {
			on := i < len(levels) && ((buy && levels[i].buyImb) || (!buy && levels[i].sellImb))
			if on && run > 0 && g != nil && ratSub(levels[i].price, levels[i-1].price).Cmp(g) != 0 {
				// A price gap ends the run; this level starts a new one.
				if run >= minRun {
					out = append(out, refStack{buy, exact(levels[i-run].price, 8), exact(levels[i-1].price, 8), run})
				}
				run = 0
			}
			if on {
				run++
				continue
			}
			if run >= minRun {
				out = append(out, refStack{buy, exact(levels[i-run].price, 8), exact(levels[i-1].price, 8), run})
			}
			run = 0
		}
	}
	return out
}

// refValueArea returns the low and high prices and the area volume.
func refValueArea(levels []*refLevel, pct int64) (lo, hi int, area *big.Rat) {
	total := new(big.Rat)
	for _, l := range levels {
		total.Add(total, l.vol())
	}
	goal := ratMul(total, big.NewRat(pct, 100))
	p := refPOC(levels)
	lo, hi = p, p
	area = levels[p].vol()
	for area.Cmp(goal) < 0 {
		canDown, canUp := lo > 0, hi < len(levels)-1
		if !canDown && !canUp {
			break
		}
		down := canDown && (!canUp || levels[lo-1].vol().Cmp(levels[hi+1].vol()) >= 0)
		if down {
			lo--
			area = ratAdd(area, levels[lo].vol())
		} else {
			hi++
			area = ratAdd(area, levels[hi].vol())
		}
	}
	return lo, hi, area
}
