package depthflow

import (
	"math"
	"math/bits"
	"time"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// Wall is a resting level far larger than the levels around it, that has
// stood long enough to mean something.
//
// Definition: take one side's levels best first, L0, L1, ... (the whole
// book side, so neighbourhoods reach past the scanned range). The
// neighbourhood of Li is the N = WallNeighbors levels nearest to it in that
// order: Li-N/2 .. Li+N/2 without Li, shifted to stay within the side (at
// the touch it is the N levels behind it). Li is judged when it lies within
// WallMaxBps of the mid (a bid p >= mid*(1-bps/10000), an ask p <=
// mid*(1+bps/10000)) and its whole neighbourhood (and so Li) lies inside the
// book's known range (book.Book.KnownRange); a side with at most N levels
// has none. With K = WallFactor, H = WallHoldPercent and M =
// WallMinNotional, a judged level is a candidate at an update when
//
//	entry: qty*N >= K * (sum of the neighbourhood's quantities)
//	       and price*qty >= M
//
// or, if it was a candidate at the previous update (hysteresis),
//
//	hold:  qty*N*100 >= K*H * (sum of the neighbourhood's quantities)
//	       and price*qty*100 >= M*H
//
// all compared exactly. A candidate is a wall (announced: listed by Walls,
// kept in EndedWalls when it ends, signalled when pulled or filled) once
// it has been a candidate at every update from Since to an update at least
// WallMinAge later. The neighbours' mean rather than their median: the
// neighbourhood sum slides along the side in O(1) per level, and a second
// large level nearby raises the mean, so a cluster of large levels is not
// reported level by level.
//
// Calibration, on the bundled BTCUSDT and ETHUSDT recordings (spot and
// USD-M, 6 to 11 minutes each): K=5 over 20 neighbours alone made 9,500 to
// 26,600 walls and 780 to 1,470 pulled/filled signals per recording, half
// of them standing under a second. A notional floor of 500,000 USDT, 20s
// of standing and a 60% hold rule leave 2 (BTCUSDT) and 14 (ETHUSDT)
// announced walls on spot, and 31 to 89 on USD-M, with 2 to 64 signals a
// recording (measured by BenchmarkWallCounts). K mattered least: the
// notional floor and the age remove the noise.
type Wall struct {
	Side  market.Side `json:"side"`
	Price fixed.Dec   `json:"price"`
	Qty   fixed.Dec   `json:"qty"`
	// PeakQty is the largest quantity seen while it was a wall.
	PeakQty fixed.Dec `json:"peakQty"`
	// Since is the time (ms) of the update at which it first became a
	// candidate, Updated the time of the last update at which it still was
	// one; a listed wall has Updated - Since >= WallMinAge.
	Since   int64 `json:"since"`
	Updated int64 `json:"updated"`
	// Ratio is Qty over the neighbours' mean at Updated (display only).
	Ratio float64 `json:"ratio"`
}

// Stood returns how long the wall has stood: Updated - Since.
func (w Wall) Stood() time.Duration { return time.Duration(w.Updated-w.Since) * time.Millisecond }

// WallEnd says why a wall stopped being one.
type WallEnd uint8

// Wall end reasons. At the update where a wall stops qualifying (the hold
// rule of Wall fails), with q0 its quantity at the previous update, q1 now
// and v the taker volume matched to this update at its price: if the level
// is gone (q1 = 0), or q1 < q0 while q0 would still pass the hold rule's
// neighbourhood test against the current neighbours, the decrease d = q0 -
// q1 ended it, split into filled f = min(v, d) and cancelled c = d - f:
// WallEndPulled when c > f, else WallEndFilled. Otherwise
// WallEndOutOfRange when the price is no longer judged (beyond WallMaxBps
// of the mid, or its neighbourhood leaves the known range), else
// WallEndDiluted (its neighbours grew, or its notional fell below the hold
// floor). WallEndReset: the book was resynced. Only announced walls are
// reported as ended.
const (
	WallEndPulled WallEnd = iota + 1
	WallEndFilled
	WallEndDiluted
	WallEndOutOfRange
	WallEndReset
)

var endNames = [...]string{"", "pulled", "filled", "diluted", "out_of_range", "reset"}

// String names the reason.
func (e WallEnd) String() string {
	if int(e) < len(endNames) && e != 0 {
		return endNames[e]
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (e WallEnd) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// EndedWall is a wall that stopped being one.
type EndedWall struct {
	Wall
	// End is the time of the update at which it stopped qualifying.
	End    int64   `json:"end"`
	Reason WallEnd `json:"reason"`
	// FinalQty is the level's quantity at End (0: gone); Pulled and
	// Filled split the final decrease (both zero unless Reason is
	// WallEndPulled or WallEndFilled).
	FinalQty fixed.Dec   `json:"finalQty"`
	Pulled   flow.Volume `json:"pulled"`
	Filled   flow.Volume `json:"filled"`
}

type pendingEnd struct {
	w        Wall
	q1       fixed.Dec
	at       int64
	decrease bool // the decrease ended it (see WallEnd)
	inRange  bool
}

type wallSide struct {
	tracked []Wall
	next    []Wall
	judged  int      // leading levels of the side judged at the last update
	reason  NotReady // why the side is not ready, 0 when it is
}

type walls struct {
	side     [2]wallSide
	ends     []pendingEnd
	ended    []EndedWall
	endStart int
}

func (w *walls) init(cfg Config) {
	for i := range w.side {
		w.side[i].tracked = make([]Wall, 0, min(cfg.MaxWalls, 64))
		w.side[i].next = make([]Wall, 0, min(cfg.MaxWalls, 64))
		w.side[i].reason = NotReadyNoTouch
	}
	w.ended = make([]EndedWall, 0, cfg.EndedWallHistory)
}

// better reports whether price a is better (nearer the touch) than b.
func better(side market.Side, a, b fixed.Dec) bool {
	if side == market.Buy {
		return a > b
	}
	return a < b
}

// prefixSums fills t.prefix with the running sums of ls's quantities.
func (t *Tracker) prefixSums(ls []market.Level) []fixed.Int128 {
	p := append(t.prefix[:0], fixed.Int128{})
	var s fixed.Int128
	for _, l := range ls {
		s = s.AddDec(l.Qty)
		p = append(p, s)
	}
	t.prefix = p
	return p
}

// prefixSums64 fills t.prefix64 with the running sums of ls's quantities as
// uint64, and reports false (leaving it unusable) when a quantity is negative
// or the side's total exceeds MaxInt64. Real sides fit by far (all of
// BTCUSDT's bids are a few thousand BTC, 2^63 units is 92 billion), so
// walls are judged on plain 64-bit sums; the Int128 path is kept for the
// rest.
func (t *Tracker) prefixSums64(ls []market.Level) bool {
	p := append(t.prefix64[:0], 0)
	var s uint64
	for _, l := range ls {
		if l.Qty < 0 {
			t.prefix64 = p
			return false
		}
		s += uint64(l.Qty)
		if s > math.MaxInt64 { // both terms < 2^63: no wrap before the test
			t.prefix64 = p
			return false
		}
		p = append(p, s)
	}
	t.prefix64 = p
	return true
}

// window returns the bounds [lo, hi) of the neighbourhood of index i among
// n >= N+1 levels, Li included (see Wall).
func window(i, n, N int) (lo, hi int) {
	lo = max(i-N/2, 0)
	hi = lo + N + 1
	if hi > n {
		hi = n
		lo = hi - N - 1
	}
	return lo, hi
}

// neighbourSum returns the sum of the N neighbours of index i among n
// levels, and false when there are not N of them.
func neighbourSum(prefix []fixed.Int128, ls []market.Level, i, n, N int) (fixed.Int128, bool) {
	if n < N+1 {
		return fixed.Int128{}, false
	}
	lo, hi := window(i, n, N)
	return prefix[hi].Sub(prefix[lo]).Sub(fixed.I128(int64(ls[i].Qty))), true
}

// neighbourSumDirect is neighbourSum without prefix sums: it adds the N
// neighbours one by one. For the rare wall that ends (see ending).
func neighbourSumDirect(ls []market.Level, i, N int) (fixed.Int128, bool) {
	if len(ls) < N+1 {
		return fixed.Int128{}, false
	}
	lo, hi := window(i, len(ls), N)
	var s fixed.Int128
	for k := lo; k < hi; k++ {
		if k != i {
			s = s.AddDec(ls[k].Qty)
		}
	}
	return s, true
}

// qualifies64 is qualifies for a neighbourhood sum that fits in uint64:
// qty*N >= K*nsum on exact 128-bit products. qty, N and K are non-negative.
func qualifies64(qty uint64, N, K uint64, nsum uint64) bool {
	qh, ql := bits.Mul64(qty, N)
	nh, nl := bits.Mul64(nsum, K)
	return qh > nh || (qh == nh && ql >= nl)
}

// qualifies is the neighbourhood test: qty*N*scale >= K*factor*nsum (entry:
// scale 1, factor 1; hold: scale 100, factor H).
func (t *Tracker) qualifies(qty fixed.Dec, nsum fixed.Int128, scale, factor int64) bool {
	return fixed.Mul(int64(qty), int64(t.cfg.WallNeighbors)*scale).Cmp(mulSmall(nsum, t.cfg.WallFactor*factor)) >= 0
}

// bigEnough is the notional test of Wall: price*qty >= M (entry) or
// price*qty*100 >= M*H (hold), exact on 128 bits.
func (t *Tracker) bigEnough(price, qty fixed.Dec, hold bool) bool {
	n := fixed.Mul(int64(price), int64(qty))
	if hold {
		return n.Cmp(t.wallHoldNotional) >= 0
	}
	return n.Cmp(t.wallNotional) >= 0
}

// update judges one update's walls on both sides.
func (w *walls) update(t *Tracker, b *book.Book, now int64) {
	var bidB, askB fixed.Dec
	both := len(t.bids) > 0 && len(t.asks) > 0
	if both {
		bidB, askB = bounds(t.bids[0].Price, t.asks[0].Price, t.cfg.WallMaxBps)
	}
	for si, side := range [2]market.Side{market.Buy, market.Sell} {
		ws := &w.side[si]
		ls := t.bids
		inBound := func(p fixed.Dec) bool { return p >= bidB }
		known := func(p fixed.Dec) bool { return p >= t.knownBid }
		if side == market.Sell {
			ls = t.asks
			inBound = func(p fixed.Dec) bool { return p <= askB }
			known = func(p fixed.Dec) bool { return p <= t.knownAsk }
		}
		N := t.cfg.WallNeighbors
		// ls holds the whole side or at least N+1 levels past the scanned
		// range, so neighbourhoods inside it are complete.
		total := b.Len(side)
		ws.next = ws.next[:0]
		ws.judged = 0
		switch {
		case !both:
			ws.reason = NotReadyNoTouch
		case total < N+1 || len(ls) < N+1:
			ws.reason = NotReadyFewLevels
		default:
			// Judged: levels within the bound whose whole neighbourhood is
			// known. Window ends grow with the index, so it is a prefix.
			m := insideCount(ls, inBound)
			kc := insideCount(ls, known)
			mj := min(m, kc)
			for mj > 0 {
				if _, hi := window(mj-1, len(ls), N); hi <= kc {
					break
				}
				mj--
			}
			ws.judged = mj
			ws.reason = 0
			if bo := side == market.Buy && bidB < t.knownBid || side == market.Sell && askB > t.knownAsk; bo || mj < m {
				ws.reason = NotReadyBidsUnknown
				if side == market.Sell {
					ws.reason = NotReadyAsksUnknown
				}
			}
		}
		m := ws.judged
		if m > 0 {
			// The plain 64-bit path when every sum fits (always, on real
			// books); the Int128 prefix sums otherwise. Both are exact and
			// qualify the same levels.
			fast := N >= 0 && t.cfg.WallFactor >= 0 && t.prefixSums64(ls)
			var prefix []fixed.Int128
			if !fast {
				prefix = t.prefixSums(ls)
			}
			p64 := t.prefix64
			uN, uK, uH := uint64(N), uint64(t.cfg.WallFactor), uint64(t.cfg.WallHoldPercent)
			tr, ti := ws.tracked, 0
			for i := range m {
				// The hold test is the weaker: most levels fail it and
				// cost one comparison. Then the entry test for levels that
				// were not candidates at the last update.
				var nsum fixed.Int128
				var entry bool
				if fast {
					lo, hi := window(i, len(ls), N)
					q := uint64(ls[i].Qty)
					n64 := p64[hi] - p64[lo] - q
					if !qualifies64(q, uN*100, uK*uH, n64) {
						continue
					}
					entry = qualifies64(q, uN, uK, n64)
					nsum = fixed.I128(int64(n64))
				} else {
					var ok bool
					nsum, ok = neighbourSum(prefix, ls, i, len(ls), N)
					if !ok || !t.qualifies(ls[i].Qty, nsum, 100, t.cfg.WallHoldPercent) {
						continue
					}
					entry = t.qualifies(ls[i].Qty, nsum, 1, 1)
				}
				p := ls[i].Price
				for ti < len(tr) && better(side, tr[ti].Price, p) {
					ti++
				}
				held := ti < len(tr) && tr[ti].Price == p
				if !held && !entry || !t.bigEnough(p, ls[i].Qty, held) {
					continue
				}
				if len(ws.next) == t.cfg.MaxWalls {
					t.stats.WallOverflow++
					continue
				}
				ratio := 0.0
				if f := toFloat(nsum); f > 0 {
					ratio = float64(ls[i].Qty) * float64(N) / f
				}
				ws.next = append(ws.next, Wall{Side: side, Price: ls[i].Price, Qty: ls[i].Qty, PeakQty: ls[i].Qty,
					Since: now, Updated: now, Ratio: ratio})
			}
		}
		// A price is in the judged range when it is at or better than the
		// last judged level.
		inRange := func(p fixed.Dec) bool { return m > 0 && !better(side, ls[m-1].Price, p) }
		// Merge the tracked walls with the new set, both best first.
		i, j := 0, 0
		for i < len(ws.tracked) || j < len(ws.next) {
			switch {
			case j == len(ws.next) || (i < len(ws.tracked) && better(side, ws.tracked[i].Price, ws.next[j].Price)):
				w.ending(t, b, ws.tracked[i], ls, m, inRange(ws.tracked[i].Price), now)
				i++
			case i == len(ws.tracked) || better(side, ws.next[j].Price, ws.tracked[i].Price):
				j++ // a new wall: Since = now
			default:
				o := &ws.tracked[i]
				n := &ws.next[j]
				n.Since = o.Since
				n.PeakQty = max(o.PeakQty, n.Qty)
				i++
				j++
			}
		}
		ws.tracked, ws.next = ws.next, ws.tracked
	}
}

// ending records a wall that stopped qualifying at now; it is classified
// at the next update (finishEnds).
func (w *walls) ending(t *Tracker, b *book.Book, old Wall, ls []market.Level, m int, inRange bool, now int64) {
	q1, _ := b.Level(old.Side, old.Price)
	pe := pendingEnd{w: old, q1: q1, at: now, inRange: inRange}
	switch {
	case q1 == 0:
		pe.decrease = true
	case q1 < old.Qty && inRange:
		// Would the old quantity still qualify against today's neighbours?
		k := insideCount(ls[:m], func(p fixed.Dec) bool { return better(old.Side, p, old.Price) })
		if k < m && ls[k].Price == old.Price {
			if nsum, ok := neighbourSumDirect(ls, k, t.cfg.WallNeighbors); ok {
				pe.decrease = t.qualifies(old.Qty, nsum, 100, t.cfg.WallHoldPercent)
			}
		}
	}
	w.ends = append(w.ends, pe)
}

// finishEnds classifies the walls that ended at the last update, now that
// its late trades are in, and reports them.
func (t *Tracker) finishEnds() {
	w := &t.wl
	for _, pe := range w.ends {
		if !t.announced(&pe.w) {
			t.stats.WallsUnannounced++
			continue
		}
		e := EndedWall{Wall: pe.w, End: pe.at, FinalQty: pe.q1}
		switch {
		case pe.decrease:
			d := fixed.I128(int64(pe.w.Qty - pe.q1))
			var v fixed.Int128
			if i, ok := findRec(t.recs, pe.w.Side, pe.w.Price); ok && t.haveLast && t.lastTime == pe.at {
				v = t.recs[i].traded
			}
			f := v
			if f.Cmp(d) > 0 {
				f = d
			}
			c := d.Sub(f)
			e.Pulled, e.Filled = flow.Volume(c), flow.Volume(f)
			e.Reason = WallEndFilled
			if c.Cmp(f) > 0 {
				e.Reason = WallEndPulled
			}
		case !pe.inRange:
			e.Reason = WallEndOutOfRange
		default:
			e.Reason = WallEndDiluted
		}
		w.record(e)
		if e.Reason == WallEndPulled || e.Reason == WallEndFilled {
			k := WallPulled
			if e.Reason == WallEndFilled {
				k = WallFilled
			}
			t.emit(Signal{Kind: k, Time: e.End, Price: e.Price, Side: e.Side, Strength: e.Ratio,
				Volume: flow.Volume(fixed.I128(int64(e.Qty))), Pulled: e.Pulled, Filled: e.Filled, Since: e.Since})
		}
	}
	w.ends = w.ends[:0]
}

func (w *walls) record(e EndedWall) {
	if len(w.ended) < cap(w.ended) {
		w.ended = append(w.ended, e)
		return
	}
	w.ended[w.endStart] = e
	w.endStart = (w.endStart + 1) % len(w.ended)
}

// resetAll ends every tracked wall with WallEndReset.
func (w *walls) resetAll(t *Tracker, now int64) {
	for i := range w.side {
		for _, x := range w.side[i].tracked {
			if !t.announced(&x) {
				t.stats.WallsUnannounced++
				continue
			}
			w.record(EndedWall{Wall: x, End: now, Reason: WallEndReset, FinalQty: x.Qty})
		}
		w.side[i].tracked = w.side[i].tracked[:0]
		w.side[i].reason, w.side[i].judged = NotReadyNoTouch, 0
	}
}

// announced reports whether a candidate has stood WallMinAge (see Wall).
func (t *Tracker) announced(w *Wall) bool {
	return w.Updated-w.Since >= t.cfg.WallMinAge.Milliseconds()
}

// Walls appends the current (announced) walls of side, best price first,
// to dst.
func (t *Tracker) Walls(side market.Side, dst []Wall) []Wall {
	for i := range t.wl.side[sideIdx(side)].tracked {
		if w := &t.wl.side[sideIdx(side)].tracked[i]; t.announced(w) {
			dst = append(dst, *w)
		}
	}
	return dst
}

// WallsReady reports whether side's walls were judged over the whole
// range they read at the last update: both sides have a level, the side
// has more than WallNeighbors levels, and every level within WallMaxBps of
// the mid, with its whole neighbourhood, lies inside the book's known range
// (book.Book.KnownRange). When not, walls are still reported for the levels
// whose neighbourhood is known; WallsNotReady says why.
func (t *Tracker) WallsReady(side market.Side) bool { return t.WallsNotReady(side) == 0 }

// WallsNotReady returns why side's walls are not ready (see WallsReady), 0
// when they are. Before the first update it is NotReadyNoTouch.
func (t *Tracker) WallsNotReady(side market.Side) NotReady {
	return t.wl.side[sideIdx(side)].reason
}

// EndedWalls appends the kept ended walls (the last EndedWallHistory) with End >= since,
// oldest first, to dst. Walls ending at the last update appear once the
// next update has classified them.
func (t *Tracker) EndedWalls(since int64, dst []EndedWall) []EndedWall {
	w := &t.wl
	n := len(w.ended)
	for i := range n {
		e := &w.ended[(w.endStart+i)%n]
		if e.End >= since {
			dst = append(dst, *e)
		}
	}
	return dst
}
