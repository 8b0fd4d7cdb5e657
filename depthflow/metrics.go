package depthflow

import (
	"slices"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// Band is the resting quantity within a distance of the mid.
//
// A bid p is inside when p >= mid*(1 - Bps/10000), an ask when
// p <= mid*(1 + Bps/10000), bounds included and computed exactly (the same
// rule as book.Book.DepthWithin). Imbalance is (BidQty - AskQty) /
// (BidQty + AskQty), in [-1, 1], 0 when both are zero; positive means more
// resting bids.
type Band struct {
	Bps       int         `json:"bps"`
	BidQty    flow.Volume `json:"bidQty"`
	AskQty    flow.Volume `json:"askQty"`
	BidLevels int         `json:"bidLevels"`
	AskLevels int         `json:"askLevels"`
	Imbalance float64     `json:"imbalance"`
	// Ready is true when the whole band lies within the book's known range
	// (book.Book.KnownRange) on both sides: the band's lowest bid price is
	// at or above the known bid floor and its highest ask price at or below
	// the known ask ceiling. Otherwise part of it is beyond the snapshot's
	// depth and the sums may miss levels; Reason says which side.
	Ready  bool     `json:"ready"`
	Reason NotReady `json:"reason,omitempty"`
}

// Metrics is the state of the book after the last update.
type Metrics struct {
	Time     int64 `json:"time"` // the update's time (T for USD-M, E for spot), ms
	UpdateID int64 `json:"updateId"`
	// Ready is true when both sides have a level; the touch fields are
	// zero otherwise.
	Ready   bool         `json:"ready"`
	BestBid market.Level `json:"bestBid"`
	BestAsk market.Level `json:"bestAsk"`
	Spread  fixed.Dec    `json:"spread"`
	// Mid is (best bid + best ask) / 2 as an integer at scale 1e-9
	// (book.MidScale): exact, since the mid of two 1e-8 prices can need a
	// ninth digit. Format it with fixed.Int128.FormatScaled(book.MidScale).
	Mid fixed.Int128 `json:"-"`
	// Microprice is (bidPx*askQty + askPx*bidQty) / (bidQty + askQty),
	// exact sums and one float64 division (book.Book.Microprice).
	Microprice float64 `json:"microprice"`
	BidLevels  int     `json:"bidLevels"`
	AskLevels  int     `json:"askLevels"`
	Bands      []Band  `json:"bands"`
}

// computeMetrics fills t.metrics from the fetched levels.
func (t *Tracker) computeMetrics(u *market.DepthUpdate, b *book.Book, now int64) {
	m := &t.metrics
	m.Time, m.UpdateID = now, b.UpdateID()
	m.BidLevels, m.AskLevels = b.Len(market.Buy), b.Len(market.Sell)
	m.Ready = len(t.bids) > 0 && len(t.asks) > 0
	if !m.Ready {
		m.BestBid, m.BestAsk, m.Spread, m.Mid, m.Microprice = market.Level{}, market.Level{}, 0, fixed.Int128{}, 0
		for i := range t.bands {
			t.bands[i] = Band{Bps: t.bands[i].Bps, Reason: NotReadyNoTouch}
		}
		return
	}
	m.BestBid, m.BestAsk = t.bids[0], t.asks[0]
	m.Spread = m.BestAsk.Price - m.BestBid.Price
	m.Mid, _ = b.Mid()
	m.Microprice, _ = b.Microprice()
	for i := range t.bands {
		bd := &t.bands[i]
		bidB, askB := bounds(m.BestBid.Price, m.BestAsk.Price, bd.Bps)
		bd.BidLevels = insideCount(t.bids, func(p fixed.Dec) bool { return p >= bidB })
		bd.AskLevels = insideCount(t.asks, func(p fixed.Dec) bool { return p <= askB })
		var bq, aq fixed.Int128
		for _, l := range t.bids[:bd.BidLevels] {
			bq = bq.AddDec(l.Qty)
		}
		for _, l := range t.asks[:bd.AskLevels] {
			aq = aq.AddDec(l.Qty)
		}
		bd.BidQty, bd.AskQty = flow.Volume(bq), flow.Volume(aq)
		bd.Imbalance = 0
		if tot := bq.Add(aq); tot.Sign() > 0 {
			bd.Imbalance = toFloat(bq.Sub(aq)) / toFloat(tot)
		}
		bd.Reason = beyond(bidB < t.knownBid, askB > t.knownAsk)
		bd.Ready = bd.Reason == 0
	}
}

// Metrics returns the book metrics after the last update (a copy the
// caller owns).
func (t *Tracker) Metrics() Metrics {
	m := t.metrics
	m.Bands = slices.Clone(t.bands)
	return m
}
