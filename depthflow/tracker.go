package depthflow

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// Errors returned (wrapped with details) for input a Tracker refuses.
var (
	ErrNil   = errors.New("depthflow: nil input")
	ErrTrade = errors.New("depthflow: invalid trade")
)

// Stats counts what a Tracker did; every input it could not use fully is
// counted under a reason.
type Stats struct {
	Updates int64 // OnDepth calls
	Trades  int64 // trades accepted by OnTrade
	// TradesRejected counts trades with a non-positive price or quantity.
	TradesRejected int64
	// MissingBefore counts updates without a matching BeforeDepth: their
	// level changes are unknown, so they add nothing to the liquidity
	// windows (which then report not Ready) or to replenishment.
	MissingBefore int64
	// LateTrades counts trades that arrived after the update that holds
	// them (see the package doc) and corrected its accounting.
	LateTrades int64
	// PendingOverflow counts trades dropped, oldest first, because more
	// than MaxPendingTrades were waiting for their update.
	PendingOverflow int64
	// AbsorptionOverflow counts absorption events expired early because
	// MaxAbsorptionEvents were held.
	AbsorptionOverflow int64
	// WallOverflow counts, over all updates, qualifying levels not tracked
	// because MaxWalls were already tracked on their side.
	WallOverflow int64
	// WallsUnannounced counts wall candidates that stopped qualifying (or
	// were reset) before standing WallMinAge: never listed or signalled.
	WallsUnannounced int64
	// Resets counts Reset calls, ImplicitResets the first OnDepth after New
	// without one.
	Resets, ImplicitResets int64
	// Signals counts emitted signals by kind.
	Signals [WallFilled + 1]int64
}

// pendTrade is a trade waiting for its depth update.
type pendTrade struct {
	time  int64
	side  market.Side // resting side hit: Buy for taker sells
	price fixed.Dec
	qty   fixed.Dec
}

// rec is what one depth update did at one price of one side: the level's
// quantity before and after (when the update changed it) and the taker
// volume matched to the update at that price.
type rec struct {
	side    market.Side
	price   fixed.Dec
	prev    fixed.Dec
	cur     fixed.Dec
	traded  fixed.Int128
	repl    fixed.Int128 // replenishment counted for absorption so far
	changed bool
	near    bool
}

// net returns new - old + traded: the change the level would show without
// the trades, i.e. quantity added (positive) or cancelled (negative).
func (r *rec) net() fixed.Int128 {
	n := fixed.I128(int64(r.cur)).Sub(fixed.I128(int64(r.prev)))
	return n.Add(r.traded)
}

// Tracker computes book metrics, walls, liquidity windows and signals for
// one symbol. Create it with New.
type Tracker struct {
	symbol string
	cfg    Config
	stats  Stats

	// BeforeDepth's capture of the levels' previous quantities.
	before struct {
		u            *market.DepthUpdate
		finalID      int64
		nb, na       int
		prev         []fixed.Dec
		bid, ask     fixed.Dec // touch before the update, 0 when a side was empty
		haveBid, hvA bool
	}

	pending []pendTrade // arrival order

	// The last applied update.
	haveLast  bool
	lastTime  int64
	lastKnown bool
	lastBid   fixed.Dec // touch before the last update
	lastAsk   fixed.Dec
	lastHaveB bool
	lastHaveA bool
	recs      []rec // sorted by side, then price

	// The book's known range (book.Book.KnownRange) at the last update:
	// every level at or better than these prices is known exactly.
	resetPending bool
	knownBid     fixed.Dec // lowest known bid price; 0: the whole side
	knownAsk     fixed.Dec // highest known ask price; MaxInt64: the whole side

	// Fetched levels, best first, and their fetch size hints.
	bids, asks   []market.Level
	nBids, nAsks int
	prefix       []fixed.Int128
	prefix64     []uint64

	metrics Metrics
	bands   []Band

	liq liquidity
	abs absorption
	wl  walls

	// Wall notional floors at 1e-16 (price x qty units): entry M and
	// hold M*H/100.
	wallNotional, wallHoldNotional fixed.Int128

	refVolume fixed.Int128
	refLevels int64
	refReady  bool

	signals  []Signal
	sigStart int
}

// New returns a Tracker for symbol. Zero fields of cfg take their defaults;
// invalid ones are corrected as documented on Config (Validate reports
// them).
func New(symbol string, cfg Config) *Tracker {
	cfg = cfg.withDefaults()
	t := &Tracker{symbol: symbol, cfg: cfg, nBids: 256, nAsks: 256, resetPending: true}
	t.bands = make([]Band, len(cfg.Bands))
	for i, b := range cfg.Bands {
		t.bands[i].Bps, t.bands[i].Reason = b, NotReadyNoTouch
	}
	t.liq.init(cfg.LiquidityWindows)
	t.signals = make([]Signal, 0, cfg.SignalHistory)
	t.wl.init(cfg)
	// M at 1e-8 times 1e8 is M at 1e-16; M*1e8*H/100 = M*1e6*H exactly.
	t.wallNotional = fixed.Mul(int64(cfg.WallMinNotional), 100_000_000)
	t.wallHoldNotional = fixed.Mul(int64(cfg.WallMinNotional), 1_000_000*cfg.WallHoldPercent)
	return t
}

// Symbol returns the tracker's symbol.
func (t *Tracker) Symbol() string { return t.symbol }

// Config returns the configuration in use, defaults filled in.
func (t *Tracker) Config() Config { return t.cfg }

// Stats returns the counters.
func (t *Tracker) Stats() Stats { return t.stats }

// Reset tells the tracker that b was (re)loaded from a REST snapshot. It
// reports walls still standing as ended (WallEndReset) and forgets pending
// trades and absorption state, which the gap invalidates; liquidity
// windows stay but are not Ready again until they are covered anew.
//
// limit (the depth the snapshot was requested with) is not used: what the
// book knows is the book's own KnownRange (the worst price of each side of
// the snapshot), which the tracker reads at every update; a side of a thin
// book that the snapshot listed whole is still known only out to its worst
// level, since the book cannot tell a whole side from a cut one.
func (t *Tracker) Reset(b *book.Book, limit int) {
	_ = limit
	t.stats.Resets++
	t.resetPending = false
	t.finishEnds()
	t.wl.resetAll(t, t.lastTime)
	t.pending = t.pending[:0]
	t.haveLast, t.recs = false, t.recs[:0]
	t.abs.reset()
	t.liq.restart()
	t.before.u = nil
	if b != nil {
		t.knownBid, t.knownAsk = b.KnownRange()
	}
}

// BeforeDepth records, for each level of u, the quantity b holds there
// before u is applied, and b's best bid and ask. Call it just before the
// book applies u; OnDepth uses what it recorded when called with the same
// update (same pointer and final update id).
func (t *Tracker) BeforeDepth(u *market.DepthUpdate, b *book.Book) {
	bf := &t.before
	bf.u = nil
	if u == nil || b == nil {
		return
	}
	bf.prev = bf.prev[:0]
	for _, l := range u.Bids {
		q, _ := b.Level(market.Buy, l.Price)
		bf.prev = append(bf.prev, q)
	}
	for _, l := range u.Asks {
		q, _ := b.Level(market.Sell, l.Price)
		bf.prev = append(bf.prev, q)
	}
	bb, okb := b.BestBid()
	ba, oka := b.BestAsk()
	bf.bid, bf.haveBid, bf.ask, bf.hvA = bb.Price, okb, ba.Price, oka
	bf.u, bf.finalID, bf.nb, bf.na = u, u.FinalID, len(u.Bids), len(u.Asks)
}

// updateTime is the time a depth update is matched to trades by: T for
// USD-M, E for spot.
func updateTime(u *market.DepthUpdate) int64 {
	if u.TransactTime != 0 {
		return u.TransactTime
	}
	return u.EventTime
}

// OnTrade takes one trade (aggTrade or trade) of the symbol. It is matched
// to a depth update as the package doc describes. It returns an error, and
// ignores the trade, for a non-positive price or quantity.
func (t *Tracker) OnTrade(tr *market.Trade) error {
	if tr == nil {
		return ErrNil
	}
	if tr.Price <= 0 || tr.Qty <= 0 {
		t.stats.TradesRejected++
		return fmt.Errorf("%w: trade %d: price %s qty %s: must be positive", ErrTrade, tr.ID, tr.Price, tr.Qty)
	}
	t.stats.Trades++
	side := market.Sell // a taker buy lifts the asks
	if tr.BuyerMaker {
		side = market.Buy // a taker sell hits the bids
	}
	if t.haveLast && tr.Time <= t.lastTime {
		if i, ok := findRec(t.recs, side, tr.Price); ok && t.recs[i].changed {
			t.stats.LateTrades++
			t.lateTrade(side, tr.Price, tr.Qty)
			return nil
		}
	}
	if len(t.pending) >= t.cfg.MaxPendingTrades {
		copy(t.pending, t.pending[1:])
		t.pending = t.pending[:len(t.pending)-1]
		t.stats.PendingOverflow++
	}
	t.pending = append(t.pending, pendTrade{time: tr.Time, side: side, price: tr.Price, qty: tr.Qty})
	return nil
}

// OnDepth updates everything after b has applied u. Call it only for
// updates the book applied (book.Applied), with the synchronized book.
func (t *Tracker) OnDepth(u *market.DepthUpdate, b *book.Book) error {
	if u == nil || b == nil {
		return ErrNil
	}
	t.stats.Updates++
	if t.resetPending {
		t.resetPending = false
		t.stats.ImplicitResets++
	}
	t.knownBid, t.knownAsk = b.KnownRange()
	now := updateTime(u)
	// A wall that ended at the previous update is classified now that
	// late trades for that update had their chance to arrive.
	t.finishEnds()

	bf := &t.before
	known := bf.u == u && bf.finalID == u.FinalID && bf.nb == len(u.Bids) && bf.na == len(u.Asks)
	bf.u = nil
	if !known {
		t.stats.MissingBefore++
	}

	// Records of this update: its levels (when known) and its trades.
	recs := t.recs[:0]
	if known {
		for i, l := range u.Bids {
			recs = append(recs, rec{side: market.Buy, price: l.Price, prev: bf.prev[i], cur: l.Qty, changed: true})
		}
		for i, l := range u.Asks {
			recs = append(recs, rec{side: market.Sell, price: l.Price, prev: bf.prev[len(u.Bids)+i], cur: l.Qty, changed: true})
		}
	}
	slices.SortFunc(recs, cmpRec)
	recs = dedupRecs(recs)
	t.lastBid, t.lastHaveB, t.lastAsk, t.lastHaveA = bf.bid, bf.haveBid && known, bf.ask, bf.hvA && known
	t.abs.expire(now, t.cfg.AbsorptionWindow.Milliseconds())
	keep := t.pending[:0]
	for _, p := range t.pending {
		if p.time > now {
			keep = append(keep, p)
			continue
		}
		recs = t.addTrade(recs, p.side, p.price, p.qty, now, true)
	}
	t.pending = keep
	t.recs = recs
	t.haveLast, t.lastTime, t.lastKnown = true, now, known

	// Liquidity and replenishment from the level changes.
	t.liq.advance(now)
	if !known {
		t.liq.markUnknown(now)
	} else if bo, ao := t.nearBeyondKnown(); bo || ao {
		t.liq.markBeyond(now, bo, ao)
	}
	for i := range t.recs {
		r := &t.recs[i]
		r.near = known && t.isNear(r.side, r.price)
		if known {
			t.contribute(r, fixed.Int128{}, fixed.Int128{}, false)
		}
	}
	t.liq.covered(now)

	t.fetch(b)
	t.computeMetrics(u, b, now)
	t.wl.update(t, b, now)
	t.abs.breaks(t, now)
	t.abs.evaluate(t, b, now)
	return nil
}

// cmpRec orders records by side, then price.
func cmpRec(a, b rec) int {
	if a.side != b.side {
		return int(a.side) - int(b.side)
	}
	switch {
	case a.price < b.price:
		return -1
	case a.price > b.price:
		return 1
	}
	return 0
}

// dedupRecs merges a price listed twice on one side (Binance does not, but
// input is not trusted): the first prev and the last new quantity hold.
func dedupRecs(rs []rec) []rec {
	if len(rs) < 2 {
		return rs
	}
	out := rs[:1]
	for _, r := range rs[1:] {
		l := &out[len(out)-1]
		if l.side == r.side && l.price == r.price {
			l.cur = r.cur
			continue
		}
		out = append(out, r)
	}
	return out
}

// findRec returns the index of (side, price) in the sorted records and
// whether it is there.
func findRec(rs []rec, side market.Side, price fixed.Dec) (int, bool) {
	return slices.BinarySearchFunc(rs, rec{side: side, price: price}, cmpRec)
}

// addTrade adds a trade's volume to the record of its level (creating a
// trade-only record), and, with abs, to the absorption events at update
// time now. A late trade at a price the book moved through at its update
// belongs to the episode that update ended (see Absorption): not counted.
func (t *Tracker) addTrade(rs []rec, side market.Side, price, qty fixed.Dec, now int64, abs bool) []rec {
	i, ok := findRec(rs, side, price)
	if !ok {
		rs = slices.Insert(rs, i, rec{side: side, price: price})
	}
	rs[i].traded = rs[i].traded.AddDec(qty)
	if abs {
		t.abs.trade(side, price, qty, now, &t.stats, t.cfg.MaxAbsorptionEvents)
	}
	return rs
}

// lateTrade corrects the last update's accounting with a trade that
// belongs to it but arrived after it.
func (t *Tracker) lateTrade(side market.Side, price, qty fixed.Dec) {
	i, ok := findRec(t.recs, side, price)
	var old rec
	if ok {
		old = t.recs[i]
	}
	t.recs = t.addTrade(t.recs, side, price, qty, t.lastTime, !t.through(side, price))
	r := &t.recs[i]
	if !ok {
		r.near = t.lastKnown && t.isNear(side, price)
		old = *r
		old.traded = fixed.Int128{}
	}
	if t.lastKnown {
		t.contribute(r, old.net(), old.traded, true)
	}
}

// contribute adds a record's liquidity to the window bucket of the last
// update and its replenishment to absorption; with retro it first removes
// the liquidity the record added with net oldNet and oldTraded. The
// replenishment counted for the record is brought up to max(net, 0) when
// the price has live taker volume (see Absorption).
func (t *Tracker) contribute(r *rec, oldNet, oldTraded fixed.Int128, retro bool) {
	n := r.net()
	if r.near {
		t.liq.add(t.lastTime, r.side, n, r.traded, oldNet, oldTraded, retro)
	}
	if add := pos(n).Sub(r.repl); add.Sign() > 0 && (!retro || !t.through(r.side, r.price)) {
		if t.abs.replenish(r.side, r.price, add, t.lastTime, &t.stats, t.cfg.MaxAbsorptionEvents) {
			r.repl = r.repl.Add(add)
		}
	}
}

func pos(a fixed.Int128) fixed.Int128 {
	if a.Sign() < 0 {
		return fixed.Int128{}
	}
	return a
}

// isNear reports whether price on side lies within TouchBps of that side's
// touch before the last update (prices better than the touch included).
func (t *Tracker) isNear(side market.Side, price fixed.Dec) bool {
	x := int64(t.cfg.TouchBps)
	if side == market.Buy {
		if !t.lastHaveB {
			return false
		}
		return fixed.Mul(int64(price), 10_000).Cmp(fixed.Mul(int64(t.lastBid), 10_000-x)) >= 0
	}
	if !t.lastHaveA {
		return false
	}
	return fixed.Mul(int64(price), 10_000).Cmp(fixed.Mul(int64(t.lastAsk), 10_000+x)) <= 0
}

// nearBeyondKnown reports whether the near-touch range of the last update
// (see isNear) reaches bids below or asks above the known range: the price
// one unit beyond the known range would be near.
func (t *Tracker) nearBeyondKnown() (bidOut, askOut bool) {
	bidOut = t.knownBid > 0 && t.isNear(market.Buy, t.knownBid-1)
	askOut = t.knownAsk < math.MaxInt64 && t.isNear(market.Sell, t.knownAsk+1)
	return bidOut, askOut
}

// bounds returns the band bounds bps around the mid of the touch: a bid p is
// inside when p >= bid, an ask when p <= ask. They are exact: bid is
// ceil(mid*(1-bps/10000)), ask floor(mid*(1+bps/10000)), at 1e-8.
func bounds(bestBid, bestAsk fixed.Dec, bps int) (bid, ask fixed.Dec) {
	sum := uint64(bestBid) + uint64(bestAsk)
	ub := uint64(bps)
	if ub < 10_000 {
		hi, lo := bits.Mul64(sum, 10_000-ub)
		q, r := bits.Div64(hi, lo, 20_000) // hi < 20000: sum < 2^64, factor < 2^14
		if r != 0 {
			q++
		}
		bid = fixed.Dec(min(q, math.MaxInt64))
	}
	hi, lo := bits.Mul64(sum, 10_000+ub)
	if hi >= 20_000 {
		return bid, math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, 20_000)
	return bid, fixed.Dec(min(q, math.MaxInt64))
}

// fetch copies the levels each side needs into t.bids and t.asks, best
// first: every level within the widest band or wall distance of the mid,
// plus WallNeighbors+1 deeper ones for the walls' neighbourhoods.
func (t *Tracker) fetch(b *book.Book) {
	bb, okb := b.BestBid()
	ba, oka := b.BestAsk()
	if !okb || !oka {
		t.bids = b.Bids(t.cfg.WallNeighbors+1, t.bids[:0])
		t.asks = b.Asks(t.cfg.WallNeighbors+1, t.asks[:0])
		return
	}
	wide := max(t.cfg.WallMaxBps, t.cfg.Bands[len(t.cfg.Bands)-1])
	bidB, askB := bounds(bb.Price, ba.Price, wide)
	extra := t.cfg.WallNeighbors + 1
	t.bids = fetchSide(b, market.Buy, t.bids, &t.nBids, func(p fixed.Dec) bool { return p >= bidB }, extra)
	t.asks = fetchSide(b, market.Sell, t.asks, &t.nAsks, func(p fixed.Dec) bool { return p <= askB }, extra)
}

func fetchSide(b *book.Book, side market.Side, buf []market.Level, hint *int, inside func(fixed.Dec) bool, extra int) []market.Level {
	total := b.Len(side)
	for {
		k := min(*hint, total)
		if side == market.Buy {
			buf = b.Bids(k, buf[:0])
		} else {
			buf = b.Asks(k, buf[:0])
		}
		in := insideCount(buf, inside)
		if k == total || len(buf)-in >= extra {
			// Next time fetch about what was needed, with some slack.
			*hint = max(64, in+extra+32)
			return buf
		}
		*hint = max(*hint*2, in+extra+32)
	}
}

// insideCount returns how many leading levels (best first) satisfy inside.
func insideCount(ls []market.Level, inside func(fixed.Dec) bool) int {
	lo, hi := 0, len(ls)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if inside(ls[m].Price) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// divRound returns v/n rounded half to even as a Dec (0 when n <= 0 or the
// quotient does not fit).
func divRound(v fixed.Int128, n int64) (fixed.Dec, bool) {
	if n <= 0 {
		return 0, false
	}
	if v.Hi == 0 && v.Lo < 1<<63 {
		q, r := v.Lo/uint64(n), v.Lo%uint64(n)
		if twice := r << 1; twice > uint64(n) || (twice == uint64(n) && q&1 == 1) {
			q++
		}
		return fixed.Dec(q), true
	}
	q, ok := fixed.DivRound(v.Big(), big.NewInt(n))
	if !ok || !q.IsInt64() {
		return 0, false
	}
	return fixed.Dec(q.Int64()), true
}
