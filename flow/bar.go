package flow

import (
	"slices"
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// FootprintLevel is the volume traded at one price (or price group) of a
// bar, split by aggressor.
type FootprintLevel struct {
	Price      fixed.Dec `json:"price"`
	BuyVolume  Volume    `json:"buyVolume"`  // taker buys: lifted the ask
	SellVolume Volume    `json:"sellVolume"` // taker sells: hit the bid
	// BuyImbalance (ask-side diagonal imbalance) is set when BuyVolume at
	// this price is at least ImbalancePercent% of SellVolume at the next
	// lower price of the footprint (see Bar).
	BuyImbalance bool `json:"buyImbalance"`
	// SellImbalance (bid-side diagonal imbalance) is set when SellVolume at
	// this price is at least ImbalancePercent% of BuyVolume at the next
	// higher price of the footprint.
	SellImbalance bool `json:"sellImbalance"`
}

// Volume returns the level's total volume.
func (l FootprintLevel) Volume() Volume {
	return Volume(fixed.Int128(l.BuyVolume).Add(fixed.Int128(l.SellVolume)))
}

// Delta returns buy minus sell volume at the level.
func (l FootprintLevel) Delta() Volume {
	return Volume(fixed.Int128(l.BuyVolume).Sub(fixed.Int128(l.SellVolume)))
}

// StackedImbalance is a run of consecutive footprint prices with the same
// kind of diagonal imbalance.
type StackedImbalance struct {
	// Side is market.Buy for a run of BuyImbalance (buyers in control),
	// market.Sell for a run of SellImbalance.
	Side   market.Side `json:"side"`
	Low    fixed.Dec   `json:"low"`
	High   fixed.Dec   `json:"high"`
	Levels int         `json:"levels"`
}

// Bar is one bar of an interval, with its footprint.
//
// Bars are aligned to the Unix epoch in exchange time: Start is a multiple
// of the interval. An interval without trades has no bar: none is emitted,
// so consecutive bars may have a gap between them (a flat bar at the
// previous close would carry no information a reader cannot infer from
// the gap, would count as a bar in the divergence lookback, and would fill
// the kept history of a quiet symbol with empty minutes).
//
// A bar closes when a trade of a later interval arrives, when Advance
// passes its End (the owner's watermark), or at Flush. A trade that
// arrives after its bar closed amends it: see Tracker.Advance and
// LateTrades.
//
// Footprint rules:
//   - Prices are grouped by Config.PriceGroup (floor to a multiple; raw
//     price when 0), sorted ascending.
//   - POC is the price with the largest total volume; on a tie, the lowest
//     such price.
//   - Diagonal imbalance compares a price with its diagonal neighbour: the
//     next lower footprint price for BuyImbalance, the next higher one for
//     SellImbalance. With PriceGroup > 0 the neighbour must be exactly one
//     group away, otherwise its volume is zero (that price did not trade).
//     A level is imbalanced when its own volume on that side is positive
//     and own*100 >= ImbalancePercent*neighbour; a zero neighbour volume
//     therefore counts as an imbalance. The lowest price has no lower
//     neighbour and is never BuyImbalance; the highest is never
//     SellImbalance.
//   - A stacked imbalance is a run of at least StackedImbalanceMin adjacent
//     footprint prices (exactly one group apart when PriceGroup > 0) with
//     the same imbalance flag.
type Bar struct {
	Symbol   string        `json:"symbol"`
	Interval time.Duration `json:"interval"`
	Start    int64         `json:"start"` // Unix ms, inclusive
	End      int64         `json:"end"`   // Unix ms, exclusive: Start + Interval
	Closed   bool          `json:"closed"`

	Open  fixed.Dec `json:"open"`
	High  fixed.Dec `json:"high"`
	Low   fixed.Dec `json:"low"`
	Close fixed.Dec `json:"close"`
	// FirstID/LastID and FirstTime/LastTime are those of the bar's first
	// and last trades.
	FirstID   int64 `json:"firstId"`
	LastID    int64 `json:"lastId"`
	FirstTime int64 `json:"firstTime"`
	LastTime  int64 `json:"lastTime"`

	Trades     int64     `json:"trades"`
	BuyTrades  int64     `json:"buyTrades"`
	SellTrades int64     `json:"sellTrades"`
	Volume     Volume    `json:"volume"`
	BuyVolume  Volume    `json:"buyVolume"`
	SellVolume Volume    `json:"sellVolume"`
	Notional   Notional  `json:"notional"`
	VWAP       fixed.Dec `json:"vwap"`
	// Delta is BuyVolume - SellVolume; MaxDelta and MinDelta are the
	// highest and lowest running delta within the bar, after each trade.
	Delta    Volume `json:"delta"`
	MaxDelta Volume `json:"maxDelta"`
	MinDelta Volume `json:"minDelta"`
	// CVD is the cumulative delta since the tracker started, after the
	// bar's last trade.
	CVD Volume `json:"cvd"`

	// Divergence is set at close when the bar makes a new price extreme
	// over the previous Config.DivergenceLookback bars of its interval that
	// its CVD does not confirm (see Divergence). Bars are counted, not
	// minutes: intervals without trades have no bar. It stays NoDivergence
	// until that many previous bars are kept.
	Divergence Divergence `json:"divergence"`
	// HighExhausted is set when the bar has at least ExhaustionMinLevels
	// footprint prices and the volume at its highest price is at most
	// ExhaustionPercent% of the bar's average volume per price:
	// vol(high)*100*levels <= ExhaustionPercent*Volume. LowExhausted is
	// the same at the lowest price. Buyers (sellers) ran out at the top
	// (bottom).
	HighExhausted bool `json:"highExhausted"`
	LowExhausted  bool `json:"lowExhausted"`

	Footprint []FootprintLevel   `json:"footprint"`
	POC       fixed.Dec          `json:"poc"`
	POCVolume Volume             `json:"pocVolume"`
	Stacked   []StackedImbalance `json:"stacked"`

	// LateTrades counts the bar's trades that arrived after it had closed
	// (behind the watermark): each amended the bar, and Config.OnBarRevised
	// re-reported it. Zero for a bar never revised. Every other field is
	// the same as if the trades had all come in time.
	LateTrades int64 `json:"lateTrades"`
}

// Divergence is a delta divergence between price and cumulative delta.
type Divergence uint8

// Divergences. With H the highest High and C the highest CVD of the
// previous DivergenceLookback bars, a bar is Bearish when High > H and
// CVD <= C: price made a new high that CVD did not. Mirror: Bullish when
// Low < the lowest Low and CVD >= the lowest CVD of those bars. A bar that
// qualifies for both (an outside bar) is Bearish.
const (
	NoDivergence Divergence = iota
	BearishDivergence
	BullishDivergence
)

// String returns "", "bearish" or "bullish".
func (d Divergence) String() string {
	switch d {
	case BearishDivergence:
		return "bearish"
	case BullishDivergence:
		return "bullish"
	}
	return ""
}

// MarshalText implements encoding.TextMarshaler.
func (d Divergence) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Clone returns a deep copy of b that the caller owns.
func (b *Bar) Clone() Bar {
	c := *b
	c.Footprint = slices.Clone(b.Footprint)
	c.Stacked = slices.Clone(b.Stacked)
	return c
}

// barSeries builds the bars of one interval and keeps the closed ones in a
// ring. A closing bar is moved into the ring slot of the oldest bar, whose
// footprint storage goes back to the open bar: footprint slices are
// recycled, so steady state allocates nothing.
type barSeries struct {
	symbol   string
	interval time.Duration
	ms       int64
	cfg      *Config

	cur  Bar
	open bool
	st   barState // running state of cur

	ring  []Bar
	start int
	n     int

	// revised: the newest kept bar was amended by a late trade and not yet
	// re-reported (OnBarRevised): a run of late trades (a REST gap fill)
	// is reported once, at the next trade of a later bar, Advance or
	// Flush.
	revised bool
	amended int64 // bars amended at least once

	// maxLevels and maxStacked are the largest footprint and stacked
	// lengths seen: a recycled slice smaller than that is replaced at bar
	// open by one with room to spare, so a bar allocates at most once, and
	// not at all once the ring's slices have all grown to the largest bar.
	maxLevels  int
	maxStacked int
}

// barState is the running state of a bar while trades are added to it.
type barState struct {
	lastIdx int // footprint index of the previous trade's price
	delta   fixed.Int128
	maxD    fixed.Int128
	minD    fixed.Int128
}

func newBarSeries(symbol string, iv time.Duration, cfg *Config) *barSeries {
	return &barSeries{symbol: symbol, interval: iv, ms: durMS(iv), cfg: cfg, ring: make([]Bar, cfg.BarHistory)}
}

func groupPrice(p, g fixed.Dec) fixed.Dec {
	if g <= 0 {
		return p
	}
	return fixed.Dec(floorDiv(int64(p), int64(g)) * int64(g))
}

// add adds a trade to its bar and reports whether that bar had already
// closed (the trade amended it). Trades come in time order (the tracker
// refuses others), so a trade's bar is the open bar, a new bar after it,
// or, when no bar is open, the newest kept bar if it covers the trade's
// time: that bar was closed by Advance or Flush before the trade came.
func (bs *barSeries) add(tr *market.Trade, side market.Side, notional, cvd fixed.Int128) (amended bool) {
	startMS := floorDiv(tr.Time, bs.ms) * bs.ms
	if !bs.open && bs.n > 0 {
		if last := &bs.ring[(bs.start+bs.n-1)%len(bs.ring)]; last.Start == startMS {
			bs.amend(last, tr, side, notional, cvd)
			return true
		}
	}
	bs.emitRevision()
	if bs.open && startMS != bs.cur.Start {
		bs.close()
	}
	b := &bs.cur
	if !bs.open {
		bs.open = true
		fp, st := b.Footprint[:0], b.Stacked[:0]
		if cap(fp) < bs.maxLevels {
			fp = make([]FootprintLevel, 0, bs.maxLevels+bs.maxLevels/4)
		}
		if cap(st) < bs.maxStacked {
			st = make([]StackedImbalance, 0, bs.maxStacked+bs.maxStacked/4)
		}
		*b = Bar{Symbol: bs.symbol, Interval: bs.interval, Start: startMS, End: startMS + bs.ms,
			Open: tr.Price, High: tr.Price, Low: tr.Price, FirstID: tr.ID, FirstTime: tr.Time,
			Footprint: fp, Stacked: st}
		bs.st = barState{lastIdx: -1}
	}
	bs.apply(b, &bs.st, tr, side, notional, cvd)
	return false
}

// apply adds one trade to bar b with running state st.
func (bs *barSeries) apply(b *Bar, st *barState, tr *market.Trade, side market.Side, notional, cvd fixed.Int128) {
	b.High = max(b.High, tr.Price)
	b.Low = min(b.Low, tr.Price)
	b.Close, b.LastID, b.LastTime = tr.Price, tr.ID, tr.Time
	b.Trades++
	b.Notional = Notional(fixed.Int128(b.Notional).Add(notional))
	b.CVD = Volume(cvd)
	lv := level(b, &st.lastIdx, groupPrice(tr.Price, bs.cfg.PriceGroup))
	if side == market.Buy {
		b.BuyTrades++
		b.BuyVolume = Volume(fixed.Int128(b.BuyVolume).AddDec(tr.Qty))
		lv.BuyVolume = Volume(fixed.Int128(lv.BuyVolume).AddDec(tr.Qty))
		st.delta = st.delta.AddDec(tr.Qty)
	} else {
		b.SellTrades++
		b.SellVolume = Volume(fixed.Int128(b.SellVolume).AddDec(tr.Qty))
		lv.SellVolume = Volume(fixed.Int128(lv.SellVolume).AddDec(tr.Qty))
		st.delta = st.delta.AddDec(-tr.Qty)
	}
	if b.Trades == 1 || st.delta.Cmp(st.maxD) > 0 {
		st.maxD = st.delta
	}
	if b.Trades == 1 || st.delta.Cmp(st.minD) < 0 {
		st.minD = st.delta
	}
}

// amend adds a late trade to b, the newest kept (closed) bar, and derives
// its fields again. The running delta, its extremes and every sum carry on
// from the closed bar exactly as they would have in the open bar, and
// trades come in order, so the result equals the bar the trades would have
// made in time. Divergence is judged again against the same previous bars;
// no later bar exists (a later bar would hold a later trade), so no other
// bar's CVD or divergence changes.
func (bs *barSeries) amend(b *Bar, tr *market.Trade, side market.Side, notional, cvd fixed.Int128) {
	st := barState{lastIdx: -1, delta: fixed.Int128(b.Delta), maxD: fixed.Int128(b.MaxDelta), minD: fixed.Int128(b.MinDelta)}
	bs.apply(b, &st, tr, side, notional, cvd)
	finishBar(b, st.delta, st.maxD, st.minD, bs.cfg)
	b.Divergence = bs.divergence(b, bs.n-1)
	if b.LateTrades == 0 {
		bs.amended++
	}
	b.LateTrades++
	bs.maxLevels = max(bs.maxLevels, len(b.Footprint))
	bs.maxStacked = max(bs.maxStacked, len(b.Stacked))
	bs.revised = true
}

// level returns the footprint level of price p in b, inserting it in
// order; *last caches the index of the previous trade's level.
func level(b *Bar, last *int, p fixed.Dec) *FootprintLevel {
	fp := b.Footprint
	if i := *last; i >= 0 && i < len(fp) && fp[i].Price == p {
		return &fp[i]
	}
	i, found := slices.BinarySearchFunc(fp, p, func(l FootprintLevel, p fixed.Dec) int {
		switch {
		case l.Price < p:
			return -1
		case l.Price > p:
			return 1
		}
		return 0
	})
	if !found {
		b.Footprint = slices.Insert(fp, i, FootprintLevel{Price: p})
	}
	*last = i
	return &b.Footprint[i]
}

// emitRevision reports the newest kept bar again if late trades amended
// it since it was last reported.
func (bs *barSeries) emitRevision() {
	if !bs.revised {
		return
	}
	bs.revised = false
	if bs.cfg.OnBarRevised != nil {
		bs.cfg.OnBarRevised(bs.interval, &bs.ring[(bs.start+bs.n-1)%len(bs.ring)])
	}
}

// advance closes the open bar if its interval ended at or before at.
func (bs *barSeries) advance(at int64) {
	if bs.open && bs.cur.End <= at {
		bs.close()
	}
}

// close finishes the open bar, stores it and reports it.
func (bs *barSeries) close() {
	if !bs.open {
		return
	}
	bs.open = false
	b := &bs.cur
	b.Closed = true
	finishBar(b, bs.st.delta, bs.st.maxD, bs.st.minD, bs.cfg)
	b.Divergence = bs.divergence(b, bs.n)
	bs.maxLevels = max(bs.maxLevels, len(b.Footprint))
	bs.maxStacked = max(bs.maxStacked, len(b.Stacked))
	var slot *Bar
	if bs.n < len(bs.ring) {
		slot = &bs.ring[(bs.start+bs.n)%len(bs.ring)]
		bs.n++
	} else {
		slot = &bs.ring[bs.start]
		bs.start = (bs.start + 1) % len(bs.ring)
	}
	// Swap storage: the bar goes into the ring, the evicted bar's slices
	// come back for the next open bar.
	*slot, *b = *b, Bar{Footprint: slot.Footprint[:0], Stacked: slot.Stacked[:0]}
	if bs.cfg.OnBarClose != nil {
		bs.cfg.OnBarClose(bs.interval, slot)
	}
}

// finishBar fills the derived fields: volume, delta, VWAP, POC,
// imbalances and stacked runs.
func finishBar(b *Bar, delta, maxD, minD fixed.Int128, cfg *Config) {
	vol := fixed.Int128(b.BuyVolume).Add(fixed.Int128(b.SellVolume))
	b.Volume = Volume(vol)
	b.Delta, b.MaxDelta, b.MinDelta = Volume(delta), Volume(maxD), Volume(minD)
	b.VWAP, _ = vwap(fixed.Int128(b.Notional), vol)
	b.POC, b.POCVolume = poc(b.Footprint)
	b.Stacked = markImbalances(b.Footprint, b.Stacked[:0], cfg.PriceGroup, cfg.ImbalancePercent, cfg.StackedImbalanceMin)
	b.HighExhausted, b.LowExhausted = false, false
	if n := len(b.Footprint); cfg.ExhaustionPercent > 0 && n >= cfg.ExhaustionMinLevels {
		limit := mulSmall(vol, cfg.ExhaustionPercent)
		exhausted := func(l FootprintLevel) bool {
			return mulSmall(mulSmall(fixed.Int128(l.Volume()), 100), int64(n)).Cmp(limit) <= 0
		}
		b.HighExhausted = exhausted(b.Footprint[n-1])
		b.LowExhausted = exhausted(b.Footprint[0])
	}
}

// divergence compares b with the DivergenceLookback kept bars before the
// before-th (oldest first): the newest when b is closing, the ones before
// the newest when b is the newest, amended.
func (bs *barSeries) divergence(b *Bar, before int) Divergence {
	look := bs.cfg.DivergenceLookback
	if look <= 0 || before < look {
		return NoDivergence
	}
	var hi, lo fixed.Dec
	var hiCVD, loCVD fixed.Int128
	for k := before - look; k < before; k++ {
		p := &bs.ring[(bs.start+k)%len(bs.ring)]
		c := fixed.Int128(p.CVD)
		if k == before-look {
			hi, lo, hiCVD, loCVD = p.High, p.Low, c, c
			continue
		}
		hi, lo = max(hi, p.High), min(lo, p.Low)
		if c.Cmp(hiCVD) > 0 {
			hiCVD = c
		}
		if c.Cmp(loCVD) < 0 {
			loCVD = c
		}
	}
	cvd := fixed.Int128(b.CVD)
	switch {
	case b.High > hi && cvd.Cmp(hiCVD) <= 0:
		return BearishDivergence
	case b.Low < lo && cvd.Cmp(loCVD) >= 0:
		return BullishDivergence
	}
	return NoDivergence
}

// poc returns the price with the most volume, the lowest on a tie.
func poc(fp []FootprintLevel) (fixed.Dec, Volume) {
	var best fixed.Int128
	var price fixed.Dec
	for i := range fp {
		v := fixed.Int128(fp[i].Volume())
		if i == 0 || v.Cmp(best) > 0 {
			best, price = v, fp[i].Price
		}
	}
	return price, Volume(best)
}

// markImbalances sets the imbalance flags of fp (sorted ascending) and
// appends the stacked runs to st.
func markImbalances(fp []FootprintLevel, st []StackedImbalance, group fixed.Dec, pct int64, minRun int) []StackedImbalance {
	adjacent := func(lo, hi fixed.Dec) bool { return group <= 0 || hi-lo == group }
	for i := range fp {
		l := &fp[i]
		l.BuyImbalance, l.SellImbalance = false, false
		if buy := fixed.Int128(l.BuyVolume); i > 0 && buy.Sign() > 0 {
			var nb fixed.Int128
			if adjacent(fp[i-1].Price, l.Price) {
				nb = fixed.Int128(fp[i-1].SellVolume)
			}
			l.BuyImbalance = mulSmall(buy, 100).Cmp(mulSmall(nb, pct)) >= 0
		}
		if sell := fixed.Int128(l.SellVolume); i < len(fp)-1 && sell.Sign() > 0 {
			var nb fixed.Int128
			if adjacent(l.Price, fp[i+1].Price) {
				nb = fixed.Int128(fp[i+1].BuyVolume)
			}
			l.SellImbalance = mulSmall(sell, 100).Cmp(mulSmall(nb, pct)) >= 0
		}
	}
	for _, side := range [2]market.Side{market.Buy, market.Sell} {
		flag := func(i int) bool {
			if side == market.Buy {
				return fp[i].BuyImbalance
			}
			return fp[i].SellImbalance
		}
		for i := 0; i < len(fp); {
			if !flag(i) {
				i++
				continue
			}
			j := i + 1
			for j < len(fp) && flag(j) && adjacent(fp[j-1].Price, fp[j].Price) {
				j++
			}
			if j-i >= minRun {
				st = append(st, StackedImbalance{Side: side, Low: fp[i].Price, High: fp[j-1].Price, Levels: j - i})
			}
			i = j
		}
	}
	return st
}

func (t *Tracker) series(interval time.Duration) *barSeries {
	for _, bs := range t.bars {
		if bs.interval == interval {
			return bs
		}
	}
	return nil
}

// BarIntervals returns the configured bar intervals, shortest first.
func (t *Tracker) BarIntervals() []time.Duration {
	return append([]time.Duration(nil), t.cfg.BarIntervals...)
}

// Bars returns copies of the last n closed bars of interval, oldest first
// (all kept bars if n <= 0 or n exceeds Config.BarHistory). It returns nil
// for an interval that is not configured.
func (t *Tracker) Bars(interval time.Duration, n int) []Bar {
	bs := t.series(interval)
	if bs == nil {
		return nil
	}
	if n <= 0 || n > bs.n {
		n = bs.n
	}
	out := make([]Bar, 0, n)
	for k := bs.n - n; k < bs.n; k++ {
		out = append(out, bs.ring[(bs.start+k)%len(bs.ring)].Clone())
	}
	return out
}

// CurrentBar returns a copy of the open bar of interval with its derived
// fields (POC, imbalances) computed as if it closed now; ok is false if no
// bar is open or the interval is not configured.
func (t *Tracker) CurrentBar(interval time.Duration) (Bar, bool) {
	bs := t.series(interval)
	if bs == nil || !bs.open {
		return Bar{}, false
	}
	b := bs.cur.Clone()
	b.Stacked = nil
	finishBar(&b, bs.st.delta, bs.st.maxD, bs.st.minD, bs.cfg)
	b.Divergence = bs.divergence(&b, bs.n)
	return b, true
}
