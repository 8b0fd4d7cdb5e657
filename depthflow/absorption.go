package depthflow

import (
	"math/bits"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// absEvent is taker volume into, or quantity added back at, one price at
// one update time. gen ties it to the episode (absAgg) it was counted in.
type absEvent struct {
	t     int64
	gen   uint64
	side  market.Side
	price fixed.Dec
	vol   fixed.Int128
	repl  fixed.Int128
}

// absAgg sums the live events of one price and side since the book last
// moved through it.
type absAgg struct {
	side  market.Side
	price fixed.Dec
	gen   uint64
	vol   fixed.Int128
	repl  fixed.Int128
	fired bool
}

type absorption struct {
	ring  []absEvent
	head  int
	n     int
	aggs  []absAgg
	gen   uint64
	start int64 // first update since New or Reset
	have  bool
}

func (a *absorption) reset() {
	a.head, a.n, a.aggs, a.have = 0, 0, a.aggs[:0], false
}

func (a *absorption) find(side market.Side, price fixed.Dec) int {
	for i := range a.aggs {
		if a.aggs[i].price == price && a.aggs[i].side == side {
			return i
		}
	}
	return -1
}

func (a *absorption) push(e absEvent, st *Stats, limit int) {
	if a.n == len(a.ring) {
		if len(a.ring) >= limit {
			a.pop()
			st.AbsorptionOverflow++
		} else {
			// Grow, unrolling the ring (warm-up only).
			nr := make([]absEvent, min(max(2*len(a.ring), 256), limit))
			for i := range a.n {
				nr[i] = a.ring[(a.head+i)%len(a.ring)]
			}
			a.ring, a.head = nr, 0
		}
	}
	a.ring[(a.head+a.n)%len(a.ring)] = e
	a.n++
}

// pop removes the oldest event and takes it out of its episode.
func (a *absorption) pop() {
	e := &a.ring[a.head]
	a.head = (a.head + 1) % len(a.ring)
	a.n--
	i := a.find(e.side, e.price)
	if i < 0 || a.aggs[i].gen != e.gen {
		return
	}
	g := &a.aggs[i]
	g.vol = g.vol.Sub(e.vol)
	g.repl = g.repl.Sub(e.repl)
	if g.vol.Sign() <= 0 {
		g.fired = false
		if g.repl.Sign() <= 0 {
			a.del(i)
		}
	}
}

func (a *absorption) del(i int) {
	last := len(a.aggs) - 1
	a.aggs[i] = a.aggs[last]
	a.aggs = a.aggs[:last]
}

// expire drops events at or before now - W.
func (a *absorption) expire(now, windowMs int64) {
	if !a.have {
		a.have, a.start = true, now
	}
	cut := now - windowMs
	for a.n > 0 && a.ring[a.head].t <= cut {
		a.pop()
	}
}

func (a *absorption) trade(side market.Side, price, qty fixed.Dec, at int64, st *Stats, limit int) {
	i := a.find(side, price)
	if i < 0 {
		a.gen++
		a.aggs = append(a.aggs, absAgg{side: side, price: price, gen: a.gen})
		i = len(a.aggs) - 1
	}
	g := &a.aggs[i]
	g.vol = g.vol.AddDec(qty)
	a.push(absEvent{t: at, gen: g.gen, side: side, price: price, vol: fixed.I128(int64(qty))}, st, limit)
}

// replenish counts quantity added back at a price, and reports whether it
// was counted: only while the price has live taker volume (added before
// any trade hit the price is not replenishment).
func (a *absorption) replenish(side market.Side, price fixed.Dec, add fixed.Int128, at int64, st *Stats, limit int) bool {
	i := a.find(side, price)
	if i < 0 || a.aggs[i].vol.Sign() == 0 {
		return false
	}
	g := &a.aggs[i]
	g.repl = g.repl.Add(add)
	a.push(absEvent{t: at, gen: g.gen, side: side, price: price, repl: add}, st, limit)
	return true
}

// firstTrade returns the time of the oldest live trade event of g (the
// ring is in update order). Called only when a signal fires.
func (a *absorption) firstTrade(g *absAgg) int64 {
	for k := range a.n {
		e := &a.ring[(a.head+k)%len(a.ring)]
		if e.gen == g.gen && e.side == g.side && e.price == g.price && e.vol.Sign() > 0 {
			return e.t
		}
	}
	return 0
}

// through reports whether the book, as fetched at the last update, has
// moved through price on side: a bid price above the best bid, an ask
// price below the best ask, or an empty side.
func (t *Tracker) through(side market.Side, price fixed.Dec) bool {
	if side == market.Buy {
		return len(t.bids) == 0 || t.bids[0].Price < price
	}
	return len(t.asks) == 0 || t.asks[0].Price > price
}

// breaks ends the episodes of prices the book has moved through: a bid
// price above the best bid, an ask price below the best ask (or an empty
// side). Their events stay in the ring under a stale gen and are ignored.
func (a *absorption) breaks(t *Tracker, now int64) {
	for i := 0; i < len(a.aggs); {
		g := &a.aggs[i]
		if t.through(g.side, g.price) {
			a.del(i)
			continue
		}
		i++
	}
}

// mulSmall returns a*k for a small non-negative k on sums far below 2^120.
func mulSmall(a fixed.Int128, k int64) fixed.Int128 {
	hi, lo := bits.Mul64(a.Lo, uint64(k))
	return fixed.Int128{Hi: a.Hi*k + int64(hi), Lo: lo}
}

// evaluate fires absorption for episodes that meet every condition (see
// Absorption).
func (a *absorption) evaluate(t *Tracker, b *book.Book, now int64) {
	if !t.refReady {
		return
	}
	cfg := &t.cfg
	limit := mulSmall(t.refVolume, cfg.AbsorptionPercent)
	for i := range a.aggs {
		g := &a.aggs[i]
		if g.fired || g.vol.Sign() <= 0 {
			continue
		}
		if mulSmall(mulSmall(g.vol, 100), t.refLevels).Cmp(limit) < 0 {
			continue
		}
		if g.vol.Cmp(fixed.I128(int64(cfg.AbsorptionMinVolume))) < 0 {
			continue
		}
		if mulSmall(g.repl, 100).Cmp(mulSmall(g.vol, cfg.ReplenishPercent)) < 0 {
			continue
		}
		q, ok := b.Level(g.side, g.price)
		if !ok || q <= 0 {
			continue
		}
		g.fired = true
		thr, _ := divRound(limit, 100*t.refLevels)
		avg := toFloat(t.refVolume) / float64(t.refLevels)
		t.emit(Signal{Kind: Absorption, Time: now, Price: g.price, Side: g.side,
			Strength: toFloat(g.vol) / avg, Volume: flow.Volume(g.vol), Resting: q,
			Threshold: flow.Volume(fixed.I128(int64(thr))), Replenished: flow.Volume(g.repl), Since: a.firstTrade(g)})
	}
}

// toFloat converts without allocating (display and ratios only).
func toFloat(a fixed.Int128) float64 {
	if a.Hi < 0 {
		return -toFloat(a.Neg())
	}
	return float64(a.Hi)*(1<<64) + float64(a.Lo)
}

// AbsorptionReady reports whether absorption is judged over full windows:
// a reference bar of Config.AbsorptionBar has closed and a whole
// AbsorptionWindow of updates has passed since New or the last Reset.
// Without a bar it cannot fire; before a full window it fires only when
// the shorter span already qualifies.
func (t *Tracker) AbsorptionReady() bool {
	return t.refReady && t.abs.have && t.lastTime-t.abs.start >= t.cfg.AbsorptionWindow.Milliseconds()
}
