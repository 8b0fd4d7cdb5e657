package client

import (
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// The conversions below turn the service's exact in-memory values into the
// wire types. They live here, next to the types, so the server, the push
// hub and the tool server all write the same JSON the client reads.

// Dec returns d as a Decimal.
func Dec(d fixed.Dec) Decimal { return Decimal(d.String()) }

// Vol returns a volume sum (scale 1e-8) as a Decimal.
func Vol(v flow.Volume) Decimal { return Decimal(v.String()) }

// Notional returns a notional sum (scale 1e-16) as a Decimal.
func Notional(n flow.Notional) Decimal { return Decimal(n.String()) }

// Side names a taker side as the API does: "buy" or "sell".
func Side(s market.Side) string { return strings.ToLower(s.String()) }

// FormatInterval writes a duration the way the API takes it back: "1m",
// "5m", "1h", "90s", "1h30m".
func FormatInterval(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// ratio returns num/den rounded half to even at 8 decimals, both at the
// same scale, or "0" when den is zero.
func ratio(num, den fixed.Int128) Decimal {
	if den.Sign() == 0 {
		return "0"
	}
	q, _ := fixed.DivRound(new(big.Int).Mul(num.Big(), big.NewInt(int64(fixed.One))), den.Big())
	return Decimal(fixed.FormatBig(q, fixed.Scale))
}

// FromTrade converts a trade of the tape.
func FromTrade(t *market.Trade) Trade {
	return Trade{Symbol: t.Symbol, ID: t.ID, Time: t.Time, Side: Side(t.TakerSide()), Price: Dec(t.Price), Qty: Dec(t.Qty),
		Notional: Decimal(fixed.MulDec(t.Price, t.Qty).FormatScaled(2 * fixed.Scale))}
}

// FromTotals converts a tracker's totals.
func FromTotals(t flow.Totals) Totals {
	return Totals{Trades: t.Trades, BuyTrades: t.BuyTrades, SellTrades: t.SellTrades, Volume: Vol(t.Volume),
		BuyVolume: Vol(t.BuyVolume), SellVolume: Vol(t.SellVolume), Delta: Vol(t.Delta), CVD: Vol(t.CVD), CVDResetAt: t.CVDFrom,
		Notional: Notional(t.Notional), BuyNotional: Notional(t.BuyNotional), SellNotional: Notional(t.SellNotional),
		VWAP: Dec(t.VWAP), High: Dec(t.High), Low: Dec(t.Low), Last: Dec(t.Last), FirstTime: t.FirstTime,
		LastTime: t.LastTime, LastID: t.LastID}
}

// FromWindow converts a rolling window's stats. BuyRatio is computed
// exactly from the volumes, TradesPerSecond from the counts.
func FromWindow(w flow.WindowStats) Window {
	out := Window{Window: FormatInterval(w.Window), Start: w.Start, End: w.End, Ready: w.Complete,
		CoveredMS: w.Covered.Milliseconds(), Trades: w.Trades, BuyTrades: w.BuyTrades, SellTrades: w.SellTrades,
		Volume: Vol(w.Volume), BuyVolume: Vol(w.BuyVolume), SellVolume: Vol(w.SellVolume), Delta: Vol(w.Delta),
		Notional: Notional(w.Notional), VWAP: Dec(w.VWAP), AvgTradeSize: Dec(w.AvgTradeSize),
		BuyRatio: ratio(w.BuyVolume.Int128(), w.Volume.Int128())}
	secs := max(w.Covered, time.Second).Milliseconds()
	out.TradesPerSecond = ratio(fixed.I128(w.Trades*1000), fixed.I128(secs))
	if w.Trades > 0 {
		l := w.Largest
		out.Largest = &Trade{ID: l.ID, Time: l.Time, Side: Side(l.Side), Price: Dec(l.Price), Qty: Dec(l.Qty),
			Notional: Decimal(fixed.MulDec(l.Price, l.Qty).FormatScaled(2 * fixed.Scale))}
	}
	return out
}

// FromThreshold converts the large-trade rule's state; notional is the
// configured absolute rule (0: off).
func FromThreshold(t flow.LargeThreshold, notional fixed.Dec) LargeThreshold {
	return LargeThreshold{Enabled: t.Enabled, Ready: t.Ready, Qty: Dec(t.Qty), Sample: t.Sample, Notional: Dec(notional)}
}

// FromLarge converts a large trade.
func FromLarge(l *flow.LargeTrade) LargeTrade {
	return LargeTrade{Symbol: l.Symbol, ID: l.ID, Time: l.Time, Side: Side(l.Side), Price: Dec(l.Price), Qty: Dec(l.Qty),
		Notional: Notional(l.Notional), ByNotional: l.ByNotional, ByPercentile: l.ByPercentile,
		QtyThreshold: Dec(l.QtyThreshold)}
}

// FromBar converts a bar; footprint says whether to include its footprint
// (the largest part of a bar).
func FromBar(b *flow.Bar, footprint bool) Bar {
	out := Bar{Symbol: b.Symbol, Interval: FormatInterval(b.Interval), Start: b.Start, End: b.End, Closed: b.Closed,
		Open: Dec(b.Open), High: Dec(b.High), Low: Dec(b.Low), Close: Dec(b.Close), Trades: b.Trades,
		BuyTrades: b.BuyTrades, SellTrades: b.SellTrades, Volume: Vol(b.Volume), BuyVolume: Vol(b.BuyVolume),
		SellVolume: Vol(b.SellVolume), Delta: Vol(b.Delta), MaxDelta: Vol(b.MaxDelta), MinDelta: Vol(b.MinDelta),
		CVD: Vol(b.CVD), Notional: Notional(b.Notional), VWAP: Dec(b.VWAP), POC: Dec(b.POC), POCVolume: Vol(b.POCVolume),
		FirstID: b.FirstID, LastID: b.LastID, Divergence: b.Divergence.String(), HighExhausted: b.HighExhausted,
		LowExhausted: b.LowExhausted, Revised: b.LateTrades > 0, LateTrades: b.LateTrades}
	for _, s := range b.Stacked {
		out.Stacked = append(out.Stacked, Stacked{Side: Side(s.Side), Low: Dec(s.Low), High: Dec(s.High), Levels: s.Levels})
	}
	if footprint {
		out.Footprint = make([]FootprintLevel, len(b.Footprint))
		for i, l := range b.Footprint {
			out.Footprint[i] = FootprintLevel{Price: Dec(l.Price), BuyVolume: Vol(l.BuyVolume), SellVolume: Vol(l.SellVolume),
				BuyImbalance: l.BuyImbalance, SellImbalance: l.SellImbalance}
		}
	}
	return out
}

// BarSignals lists the signals a closed bar carries, in a fixed order:
// divergence, exhausted high, exhausted low, stacked imbalances.
func BarSignals(b *flow.Bar) []Signal {
	var out []Signal
	base := Signal{Symbol: b.Symbol, Interval: FormatInterval(b.Interval), BarStart: b.Start, BarEnd: b.End,
		Delta: Vol(b.Delta), CVD: Vol(b.CVD)}
	base.Time = b.End
	add := func(kind, side string, price fixed.Dec) {
		s := base
		s.Kind, s.Side, s.Price = kind, side, Dec(price)
		out = append(out, s)
	}
	switch b.Divergence {
	case flow.BearishDivergence:
		add("bearish_divergence", "sell", b.High)
	case flow.BullishDivergence:
		add("bullish_divergence", "buy", b.Low)
	}
	if b.HighExhausted {
		add("high_exhausted", "buy", b.High)
	}
	if b.LowExhausted {
		add("low_exhausted", "sell", b.Low)
	}
	for _, st := range b.Stacked {
		s := base
		s.Kind, s.Side = "stacked_"+Side(st.Side)+"_imbalance", Side(st.Side)
		s.Price, s.High, s.Levels = Dec(st.Low), Dec(st.High), st.Levels
		out = append(out, s)
	}
	return out
}

// BarSignalsSent remembers the signals already sent for the newest bar of
// one symbol and interval, so that a revision of that bar (late trades
// amended it, flow.Bar.LateTrades > 0) sends only the signals it gained.
// A signal the revision no longer carries cannot be taken back: the
// revised bar's own fields (divergence, exhausted, stacked) are current.
// The zero value is ready; it is not safe for concurrent use.
type BarSignalsSent struct {
	start int64
	sent  []Signal
}

// Next returns the signals of b to send: all of them for a bar seen for
// the first time (a close), those not sent before for a revision of the
// same bar. Signals are the same when kind, side, price, high and levels
// are; delta and CVD change with every late trade.
func (s *BarSignalsSent) Next(b *flow.Bar) []Signal {
	all := BarSignals(b)
	if b.Start != s.start || s.sent == nil {
		s.start, s.sent = b.Start, append(make([]Signal, 0, len(all)), all...)
		return all
	}
	var out []Signal
	for _, x := range all {
		if !slices.ContainsFunc(s.sent, func(y Signal) bool {
			return x.Kind == y.Kind && x.Side == y.Side && x.Price == y.Price && x.High == y.High && x.Levels == y.Levels
		}) {
			out = append(out, x)
		}
	}
	s.sent = append(s.sent, out...)
	return out
}

// FromProfile converts a volume profile.
func FromProfile(symbol string, p *flow.Profile) Profile {
	out := Profile{Symbol: symbol, From: p.From, To: p.To, FirstTime: p.FirstTime, LastTime: p.LastTime,
		Volume: Vol(p.Volume), POC: Dec(p.POC), POCVolume: Vol(p.POCVolume), ValueAreaLow: Dec(p.ValueAreaLow),
		ValueAreaHigh: Dec(p.ValueAreaHigh), ValueAreaVolume: Vol(p.ValueAreaVolume), Levels: make([]ProfileLevel, len(p.Levels))}
	for i, l := range p.Levels {
		out.Levels[i] = ProfileLevel{Price: Dec(l.Price), BuyVolume: Vol(l.BuyVolume), SellVolume: Vol(l.SellVolume)}
	}
	return out
}

// FromBook reads the top depth levels of b and the imbalance within each
// band (basis points of the mid). b must not change during the call (the
// caller holds the service's data lock).
func FromBook(symbol string, b *book.Book, synced bool, depth int, bands []int) Book {
	out := Book{Symbol: symbol, Synced: synced, Bids: []Level{}, Asks: []Level{}, Bands: []Band{}}
	if b == nil {
		return out
	}
	out.UpdateID = b.UpdateID()
	levels := func(ls []market.Level) []Level {
		r := make([]Level, len(ls))
		for i, l := range ls {
			r[i] = Level{Price: Dec(l.Price), Qty: Dec(l.Qty)}
		}
		return r
	}
	out.Bids = levels(b.Bids(depth, nil))
	out.Asks = levels(b.Asks(depth, nil))
	bid, okb := b.BestBid()
	ask, oka := b.BestAsk()
	if okb {
		out.BestBid = &Level{Price: Dec(bid.Price), Qty: Dec(bid.Qty)}
	}
	if oka {
		out.BestAsk = &Level{Price: Dec(ask.Price), Qty: Dec(ask.Qty)}
	}
	if !okb || !oka {
		return out
	}
	spread, _ := b.Spread()
	out.Spread = Dec(spread)
	mid, _ := b.Mid()
	out.Mid = Decimal(mid.FormatScaled(book.MidScale))
	// Microprice exactly: (bidPx*askQty + askPx*bidQty) at 1e-16 over
	// (bidQty + askQty) at 1e-8 gives a price at 1e-8.
	num := fixed.MulDec(bid.Price, ask.Qty).Add(fixed.MulDec(ask.Price, bid.Qty))
	den := fixed.I128(int64(bid.Qty)).AddDec(ask.Qty)
	if q, ok := fixed.DivRound(num.Big(), den.Big()); ok {
		out.Microprice = Decimal(fixed.FormatBig(q, fixed.Scale))
	}
	for _, bps := range bands {
		bq, aq, ok := b.DepthWithin(bps)
		if !ok {
			continue
		}
		bn, an, _ := b.NotionalWithin(bps)
		out.Bands = append(out.Bands, Band{BPS: bps, BidQty: Decimal(bq.FormatScaled(fixed.Scale)),
			AskQty: Decimal(aq.FormatScaled(fixed.Scale)), BidNotional: Decimal(bn.FormatScaled(2 * fixed.Scale)),
			AskNotional: Decimal(an.FormatScaled(2 * fixed.Scale)), Imbalance: ratio(bq.Sub(aq), bq.Add(aq))})
	}
	return out
}

// BookSide names a book side as the API does: "bid" for market.Buy,
// "ask" for market.Sell.
func BookSide(s market.Side) string {
	if s == market.Buy {
		return "bid"
	}
	return "ask"
}

// FromLevels converts book levels, best first.
func FromLevels(ls []market.Level) []Level {
	r := make([]Level, len(ls))
	for i, l := range ls {
		r[i] = Level{Price: Dec(l.Price), Qty: Dec(l.Qty)}
	}
	return r
}

// FromFrame converts a frame of the book history, keeping at most depth
// levels per side.
func FromFrame(f *book.Frame, depth int) BookFrame {
	return BookFrame{Time: f.Time, UpdateID: f.UpdateID, Bids: FromLevels(f.Bids[:min(depth, len(f.Bids))]),
		Asks: FromLevels(f.Asks[:min(depth, len(f.Asks))])}
}

// FromWall converts a current wall.
func FromWall(w *depthflow.Wall) Wall {
	return Wall{Side: BookSide(w.Side), Price: Dec(w.Price), Qty: Dec(w.Qty), PeakQty: Dec(w.PeakQty), Since: w.Since,
		Updated: w.Updated, StoodMS: w.Stood().Milliseconds(), Ratio: w.Ratio}
}

// FromEndedWall converts a wall that ended.
func FromEndedWall(e *depthflow.EndedWall) EndedWall {
	return EndedWall{Wall: FromWall(&e.Wall), End: e.End, Reason: e.Reason.String(), FinalQty: Dec(e.FinalQty),
		Pulled: Vol(e.Pulled), Filled: Vol(e.Filled)}
}

// FromLiquidity converts a liquidity window.
func FromLiquidity(l *depthflow.LiquidityStats) LiquidityWindow {
	return LiquidityWindow{Window: FormatInterval(l.Window), From: l.From, To: l.To, Ready: l.Ready,
		Reason: l.Reason.String(), Updates: l.Updates,
		BidAdded: Vol(l.BidAdded), BidPulled: Vol(l.BidPulled), BidFilled: Vol(l.BidFilled),
		AskAdded: Vol(l.AskAdded), AskPulled: Vol(l.AskPulled), AskFilled: Vol(l.AskFilled)}
}

// FromBookMetrics converts the book metrics and the current walls of both
// sides (bids then asks, as depthflow.Tracker.Walls returns them), with why
// each side's walls are not ready (0: ready). The band imbalance is
// recomputed exactly from the quantities rather than taken from
// depthflow's float.
func FromBookMetrics(m *depthflow.Metrics, bids, asks []depthflow.Wall, bidWhy, askWhy depthflow.NotReady) BookMetrics {
	out := BookMetrics{Time: m.Time, UpdateID: m.UpdateID, Ready: m.Ready, Bands: make([]DepthBand, len(m.Bands)),
		BidReady: bidWhy == 0, AskReady: askWhy == 0, BidReason: bidWhy.String(), AskReason: askWhy.String(),
		Walls: make([]Wall, 0, len(bids)+len(asks))}
	for i, b := range m.Bands {
		bq, aq := b.BidQty.Int128(), b.AskQty.Int128()
		out.Bands[i] = DepthBand{BPS: b.Bps, BidQty: Vol(b.BidQty), AskQty: Vol(b.AskQty), BidLevels: b.BidLevels,
			AskLevels: b.AskLevels, Imbalance: ratio(bq.Sub(aq), bq.Add(aq)), Ready: b.Ready, Reason: b.Reason.String()}
	}
	for i := range bids {
		out.Walls = append(out.Walls, FromWall(&bids[i]))
	}
	for i := range asks {
		out.Walls = append(out.Walls, FromWall(&asks[i]))
	}
	return out
}

// IsBookSignal reports whether a depthflow signal kind is one of the book
// signals (absorption, wall pulled or filled) rather than the bar signals
// (divergence, exhaustion) that BarSignals already lists from the bar.
func IsBookSignal(k depthflow.SignalKind) bool {
	return k == depthflow.Absorption || k == depthflow.WallPulled || k == depthflow.WallFilled
}

// FromBookSignal converts a depthflow book signal (see IsBookSignal).
func FromBookSignal(s *depthflow.Signal) Signal {
	out := Signal{Symbol: s.Symbol, Kind: s.Kind.String(), Time: s.Time, Side: BookSide(s.Side), Price: Dec(s.Price),
		Volume: Vol(s.Volume), Since: s.Since, Strength: s.Strength}
	switch s.Kind {
	case depthflow.Absorption:
		out.Threshold, out.Replenished = Vol(s.Threshold), Vol(s.Replenished)
	case depthflow.WallPulled, depthflow.WallFilled:
		out.Pulled, out.Filled = Vol(s.Pulled), Vol(s.Filled)
	}
	return out
}
