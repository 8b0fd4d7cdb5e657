package flow

import (
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// TradeRef identifies one trade: the largest of a window, for instance.
type TradeRef struct {
	ID    int64       `json:"id"`
	Time  int64       `json:"time"`
	Side  market.Side `json:"side"`
	Price fixed.Dec   `json:"price"`
	Qty   fixed.Dec   `json:"qty"`
}

// WindowStats are the figures of one rolling window.
//
// Windows are kept in one-second buckets of exchange time: a window of n
// seconds ending at End covers the trades whose Time is in
// [Start, End], with Start = (floor(End/1000) - n + 1) * 1000. So it holds
// between n-1 and n seconds of trades, never more, and the numbers are
// exact sums over exactly those trades.
type WindowStats struct {
	Window time.Duration `json:"window"`
	Start  int64         `json:"start"` // Unix ms, first ms of the oldest bucket
	End    int64         `json:"end"`   // Unix ms, the window's end (latest time seen or the at asked)
	// Complete is true once End - first trade time >= Window: the window
	// has seen a full length of the tape. Until then it is partial and
	// Covered says how much it has seen.
	Complete bool          `json:"complete"`
	Covered  time.Duration `json:"covered"` // min(Window, End - first trade time)

	Trades       int64    `json:"trades"`
	BuyTrades    int64    `json:"buyTrades"`
	SellTrades   int64    `json:"sellTrades"`
	BuyVolume    Volume   `json:"buyVolume"`
	SellVolume   Volume   `json:"sellVolume"`
	Volume       Volume   `json:"volume"`
	Delta        Volume   `json:"delta"` // buy minus sell volume
	BuyNotional  Notional `json:"buyNotional"`
	SellNotional Notional `json:"sellNotional"`
	Notional     Notional `json:"notional"`
	// VWAP is Notional/Volume rounded half to even; 0 without trades.
	VWAP fixed.Dec `json:"vwap"`
	// AvgTradeSize is Volume/Trades rounded half to even; 0 without trades.
	AvgTradeSize fixed.Dec `json:"avgTradeSize"`
	// BuyRatio is BuyVolume/Volume in [0,1], the buy pressure (display
	// only); 0 without trades.
	BuyRatio float64 `json:"buyRatio"`
	// TradesPerSecond is Trades / max(Covered, 1s) (display only).
	TradesPerSecond float64 `json:"tradesPerSecond"`
	// Largest is the largest trade by qty (the earliest on a tie); zero
	// without trades.
	Largest TradeRef `json:"largest"`
}

// bucket holds one second of trades.
type bucket struct {
	sec             int64 // Unix second this bucket holds; valid only if it matches
	trades, buys    int64
	buyVol, sellVol fixed.Int128
	buyNot, sellNot fixed.Int128
	largest         TradeRef
}

// windows is one ring of per-second buckets shared by every window, as
// long as the longest one. Add touches one bucket (O(1)); a query sums the
// window's buckets.
type windows struct {
	lens    []time.Duration
	ring    []bucket
	headSec int64
}

func (w *windows) init(lens []time.Duration) {
	w.lens = lens
	n := int(lens[len(lens)-1] / time.Second)
	w.ring = make([]bucket, n)
	for i := range w.ring {
		w.ring[i].sec = -1 << 62
	}
}

func (w *windows) slot(sec int64) *bucket {
	n := int64(len(w.ring))
	return &w.ring[((sec%n)+n)%n]
}

func (w *windows) add(tr *market.Trade, side market.Side, notional fixed.Int128) {
	sec := floorDiv(tr.Time, 1000)
	b := w.slot(sec)
	if b.sec != sec {
		*b = bucket{sec: sec}
	}
	w.headSec = sec
	b.trades++
	if side == market.Buy {
		b.buys++
		b.buyVol = b.buyVol.AddDec(tr.Qty)
		b.buyNot = b.buyNot.Add(notional)
	} else {
		b.sellVol = b.sellVol.AddDec(tr.Qty)
		b.sellNot = b.sellNot.Add(notional)
	}
	if tr.Qty > b.largest.Qty {
		b.largest = TradeRef{ID: tr.ID, Time: tr.Time, Side: side, Price: tr.Price, Qty: tr.Qty}
	}
}

// Windows returns the configured window lengths, shortest first.
func (t *Tracker) Windows() []time.Duration { return append([]time.Duration(nil), t.win.lens...) }

// Window returns the stats of the configured window of length d ending at
// the latest exchange time seen. ok is false if d is not a configured
// window or no trade was seen yet.
func (t *Tracker) Window(d time.Duration) (WindowStats, bool) { return t.WindowAt(d, t.now) }

// WindowAt is Window ending at exchange time at (Unix ms) instead. at must
// not be earlier than the second of the latest trade (older buckets may be
// overwritten); otherwise ok is false.
func (t *Tracker) WindowAt(d time.Duration, at int64) (WindowStats, bool) {
	w := &t.win
	found := false
	for _, l := range w.lens {
		if l == d {
			found = true
		}
	}
	if !found || !t.started || floorDiv(at, 1000) < w.headSec {
		return WindowStats{}, false
	}
	n := int64(d / time.Second)
	endSec := floorDiv(at, 1000)
	ws := WindowStats{Window: d, Start: (endSec - n + 1) * 1000, End: at}
	covered := time.Duration(at-t.firstTime) * time.Millisecond
	ws.Complete = covered >= d
	ws.Covered = min(covered, d)
	var buyVol, sellVol, buyNot, sellNot fixed.Int128
	for s := endSec - n + 1; s <= endSec; s++ {
		b := w.slot(s)
		if b.sec != s {
			continue
		}
		ws.Trades += b.trades
		ws.BuyTrades += b.buys
		buyVol = buyVol.Add(b.buyVol)
		sellVol = sellVol.Add(b.sellVol)
		buyNot = buyNot.Add(b.buyNot)
		sellNot = sellNot.Add(b.sellNot)
		if b.largest.Qty > ws.Largest.Qty {
			ws.Largest = b.largest
		}
	}
	ws.SellTrades = ws.Trades - ws.BuyTrades
	vol, not := buyVol.Add(sellVol), buyNot.Add(sellNot)
	ws.BuyVolume, ws.SellVolume, ws.Volume = Volume(buyVol), Volume(sellVol), Volume(vol)
	ws.Delta = Volume(buyVol.Sub(sellVol))
	ws.BuyNotional, ws.SellNotional, ws.Notional = Notional(buyNot), Notional(sellNot), Notional(not)
	ws.VWAP, _ = vwap(not, vol)
	ws.AvgTradeSize = avgSize(vol, ws.Trades)
	if vol.Sign() > 0 {
		ws.BuyRatio = Volume(buyVol).Float64() / Volume(vol).Float64()
	}
	ws.TradesPerSecond = float64(ws.Trades) / max(ws.Covered, time.Second).Seconds()
	return ws, true
}
