package sim

import (
	"sort"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// simBook is the simulator's own order simBook: one sorted slice per side with
// the best price at the end, so the frequent changes near the top move few
// elements. It is private on purpose: the simulator must not depend on the
// client-side simBook package it is used to test.
type simBook struct {
	bids []market.Level // ascending by price: best bid last
	asks []market.Level // descending by price: best ask last
}

// reset replaces the simBook with a snapshot given best-first per side.
func (b *simBook) reset(bids, asks []market.Level) {
	b.bids = b.bids[:0]
	b.asks = b.asks[:0]
	for i := len(bids) - 1; i >= 0; i-- {
		if bids[i].Qty != 0 {
			b.set(true, bids[i].Price, bids[i].Qty)
		}
	}
	for i := len(asks) - 1; i >= 0; i-- {
		if asks[i].Qty != 0 {
			b.set(false, asks[i].Price, asks[i].Qty)
		}
	}
}

// find returns the index of price p in the side and whether it is there.
func find(side []market.Level, bid bool, p fixed.Dec) (int, bool) {
	var i int
	if bid {
		i = sort.Search(len(side), func(k int) bool { return side[k].Price >= p })
	} else {
		i = sort.Search(len(side), func(k int) bool { return side[k].Price <= p })
	}
	return i, i < len(side) && side[i].Price == p
}

// set writes an absolute quantity at a price; zero removes the level.
func (b *simBook) set(bid bool, p, q fixed.Dec) {
	side := &b.asks
	if bid {
		side = &b.bids
	}
	s := *side
	i, ok := find(s, bid, p)
	switch {
	case ok && q == 0:
		s = append(s[:i], s[i+1:]...)
	case ok:
		s[i].Qty = q
	case q != 0:
		s = append(s, market.Level{})
		copy(s[i+1:], s[i:])
		s[i] = market.Level{Price: p, Qty: q}
	}
	*side = s
}

// apply applies a diff-depth event's levels.
func (b *simBook) apply(bids, asks []market.Level) {
	for _, l := range bids {
		b.set(true, l.Price, l.Qty)
	}
	for _, l := range asks {
		b.set(false, l.Price, l.Qty)
	}
}

// top appends up to limit levels of each side, best first.
func (b *simBook) top(limit int, bids, asks []market.Level) ([]market.Level, []market.Level) {
	for i := len(b.bids) - 1; i >= 0 && len(b.bids)-1-i < limit; i-- {
		bids = append(bids, b.bids[i])
	}
	for i := len(b.asks) - 1; i >= 0 && len(b.asks)-1-i < limit; i-- {
		asks = append(asks, b.asks[i])
	}
	return bids, asks
}

// best returns the best bid and ask levels (zero Level when a side is empty).
func (b *simBook) best() (bid, ask market.Level) {
	if n := len(b.bids); n > 0 {
		bid = b.bids[n-1]
	}
	if n := len(b.asks); n > 0 {
		ask = b.asks[n-1]
	}
	return bid, ask
}

// clone returns an independent copy.
func (b *simBook) clone() simBook {
	return simBook{
		bids: append([]market.Level(nil), b.bids...),
		asks: append([]market.Level(nil), b.asks...),
	}
}

// diffTo returns the levels that turn b into to: every level of b absent
// from to with quantity 0, every level of to that b lacks or holds at a
// different quantity with to's quantity. Both results are sorted as the
// sides are stored (best last).
func (b *simBook) diffTo(to *simBook) (bids, asks []market.Level) {
	return diffSide(b.bids, to.bids, true), diffSide(b.asks, to.asks, false)
}

func diffSide(from, to []market.Level, bid bool) []market.Level {
	var out []market.Level
	less := func(x, y fixed.Dec) bool { // order of storage
		if bid {
			return x < y
		}
		return x > y
	}
	i, j := 0, 0
	for i < len(from) || j < len(to) {
		switch {
		case j == len(to) || (i < len(from) && less(from[i].Price, to[j].Price)):
			out = append(out, market.Level{Price: from[i].Price})
			i++
		case i == len(from) || less(to[j].Price, from[i].Price):
			out = append(out, to[j])
			j++
		default:
			if from[i].Qty != to[j].Qty {
				out = append(out, to[j])
			}
			i++
			j++
		}
	}
	return out
}
