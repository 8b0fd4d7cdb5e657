package flow

import (
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// TradeQuery selects trades from the history. Zero fields do not filter.
type TradeQuery struct {
	// From and To bound Trade.Time (Unix ms): From <= Time < To. To = 0
	// means no upper bound.
	From, To int64
	// MinQty keeps trades with Qty >= MinQty.
	MinQty fixed.Dec
	// MinNotional keeps trades with Price*Qty >= MinNotional (quote units).
	MinNotional fixed.Dec
	// Side keeps only taker buys or only taker sells (default: both).
	Side SideFilter
	// Limit keeps only the most recent Limit matches (0: all).
	Limit int
}

// SideFilter selects trades by aggressor side.
type SideFilter uint8

// Side filters.
const (
	BothSides  SideFilter = iota // no filter
	TakerBuys                    // m=false only
	TakerSells                   // m=true only
)

func (f SideFilter) match(s market.Side) bool {
	switch f {
	case TakerBuys:
		return s == market.Buy
	case TakerSells:
		return s == market.Sell
	}
	return true
}

// history is a ring of the most recent trades, oldest first.
type history struct {
	buf   []market.Trade
	start int // index of the oldest
	n     int
}

func (h *history) init(size int) { h.buf = make([]market.Trade, size) }

func (h *history) add(tr *market.Trade) {
	i := h.start + h.n
	if i >= len(h.buf) {
		i -= len(h.buf)
	}
	h.buf[i] = *tr
	if h.n < len(h.buf) {
		h.n++
	} else {
		h.start++
		if h.start == len(h.buf) {
			h.start = 0
		}
	}
}

func (h *history) at(k int) *market.Trade { // k-th oldest
	i := h.start + k
	if i >= len(h.buf) {
		i -= len(h.buf)
	}
	return &h.buf[i]
}

// Trades appends to dst the kept trades matching q, oldest first, and
// returns it. The history holds at most Config.HistorySize trades, and
// trades older than Config.HistoryMaxAge before the latest exchange time
// are left out.
func (t *Tracker) Trades(q TradeQuery, dst []market.Trade) []market.Trade {
	h := &t.hist
	minTime := q.From
	if age := t.now - durMS(t.cfg.HistoryMaxAge); t.started && age > minTime {
		minTime = age
	}
	minNot := fixed.MulDec(q.MinNotional, fixed.One) // scale 1e-16
	base := len(dst)
	// Walk newest to oldest so Limit keeps the most recent, then reverse.
	for k := h.n - 1; k >= 0; k-- {
		tr := h.at(k)
		if tr.Time < minTime {
			break
		}
		if q.To != 0 && tr.Time >= q.To {
			continue
		}
		if tr.Qty < q.MinQty || !q.Side.match(tr.TakerSide()) {
			continue
		}
		if q.MinNotional > 0 && fixed.MulDec(tr.Price, tr.Qty).Cmp(minNot) < 0 {
			continue
		}
		dst = append(dst, *tr)
		if q.Limit > 0 && len(dst)-base == q.Limit {
			break
		}
	}
	out := dst[base:]
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return dst
}

// HistoryLen returns how many trades the history ring holds.
func (t *Tracker) HistoryLen() int { return t.hist.n }
