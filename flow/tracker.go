package flow

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// Reasons Add rejects a trade. Add returns them inside a *RejectError;
// match them with errors.Is.
var (
	// ErrDuplicate: the trade's ID equals the last accepted ID.
	ErrDuplicate = errors.New("flow: duplicate trade id")
	// ErrOutOfOrder: the trade's ID is below the last accepted ID.
	ErrOutOfOrder = errors.New("flow: trade id before the last accepted id")
	// ErrTimeBackwards: the trade's Time is before the last accepted Time.
	ErrTimeBackwards = errors.New("flow: trade time before the last accepted time")
	// ErrInvalidTrade: price or quantity is not positive.
	ErrInvalidTrade = errors.New("flow: invalid trade")
	// ErrWrongSymbol: the trade names another symbol than the tracker's.
	ErrWrongSymbol = errors.New("flow: trade for another symbol")
)

// RejectError describes a trade Add refused. Err is one of the Err*
// sentinels.
type RejectError struct {
	Err      error
	Field    string // the field at fault: "ID", "Time", "Price", "Qty", "Symbol"
	ID       int64  // the rejected trade's ID
	Time     int64  // the rejected trade's Time
	LastID   int64  // the last accepted ID (0 if none)
	LastTime int64  // the last accepted Time (0 if none)
}

// Error names the trade, the field and what it was compared with.
func (e *RejectError) Error() string {
	return fmt.Sprintf("%v: trade %d field %s (time %d; last accepted id %d time %d)",
		e.Err, e.ID, e.Field, e.Time, e.LastID, e.LastTime)
}

// Unwrap returns the sentinel.
func (e *RejectError) Unwrap() error { return e.Err }

// Rejected counts the trades Add refused, by reason.
type Rejected struct {
	Duplicate     int64 `json:"duplicate"`
	OutOfOrder    int64 `json:"outOfOrder"`
	TimeBackwards int64 `json:"timeBackwards"`
	Invalid       int64 `json:"invalid"`
	WrongSymbol   int64 `json:"wrongSymbol"`
}

// Total is the number of rejected trades.
func (r Rejected) Total() int64 {
	return r.Duplicate + r.OutOfOrder + r.TimeBackwards + r.Invalid + r.WrongSymbol
}

// Totals are the figures since the tracker started.
type Totals struct {
	Symbol       string   `json:"symbol"`
	Trades       int64    `json:"trades"`
	BuyTrades    int64    `json:"buyTrades"`
	SellTrades   int64    `json:"sellTrades"`
	BuyVolume    Volume   `json:"buyVolume"`
	SellVolume   Volume   `json:"sellVolume"`
	Volume       Volume   `json:"volume"`
	BuyNotional  Notional `json:"buyNotional"`
	SellNotional Notional `json:"sellNotional"`
	Notional     Notional `json:"notional"`
	// Delta is buy minus sell volume since start: the cumulative volume
	// delta (CVD) since start.
	Delta Volume `json:"delta"`
	// CVD is the cumulative delta of trades at or after CVDFrom (see
	// ResetCVD); without a reset it equals Delta and CVDFrom is 0.
	CVD     Volume    `json:"cvd"`
	CVDFrom int64     `json:"cvdFrom"`
	VWAP    fixed.Dec `json:"vwap"` // 0 before the first trade
	High    fixed.Dec `json:"high"`
	Low     fixed.Dec `json:"low"`
	Last    fixed.Dec `json:"last"`
	// FirstTime and LastTime are the exchange times of the first and last
	// accepted trades; LastID the last accepted id.
	FirstTime int64    `json:"firstTime"`
	LastTime  int64    `json:"lastTime"`
	LastID    int64    `json:"lastId"`
	Rejected  Rejected `json:"rejected"`
}

// Tracker computes the order-flow metrics of one symbol. Create it with
// NewTracker. It is not safe for concurrent use.
type Tracker struct {
	symbol string
	cfg    Config

	started   bool
	firstTime int64
	lastTime  int64
	lastID    int64
	now       int64 // latest exchange time seen: max(lastTime, Advance)
	mark      int64 // watermark: the latest Advance
	rejected  Rejected
	late      int64 // trades that came after the watermark passed their bar

	trades, buyTrades, sellTrades int64
	buyVol, sellVol               fixed.Int128
	buyNot, sellNot               fixed.Int128
	high, low, last               fixed.Dec

	cvd     fixed.Int128
	cvdFrom int64

	hist    history
	win     windows
	bars    []*barSeries
	session sessionProfile
	large   largeTrades
}

// NewTracker returns a tracker for symbol (Binance spelling, e.g.
// "BTCUSDT"; trades naming another symbol are rejected, compared without
// regard to case, and trades with an empty Symbol are accepted). Zero
// fields of cfg take their defaults; out-of-range values are corrected as
// Config documents (Config.Validate reports them).
func NewTracker(symbol string, cfg Config) *Tracker {
	cfg = cfg.withDefaults()
	t := &Tracker{symbol: symbol, cfg: cfg}
	t.hist.init(cfg.HistorySize)
	t.win.init(cfg.Windows)
	for _, iv := range cfg.BarIntervals {
		t.bars = append(t.bars, newBarSeries(symbol, iv, &t.cfg))
	}
	t.session.init(cfg.ProfileSession.Milliseconds(), cfg.PriceGroup)
	t.large.init(symbol, &t.cfg)
	return t
}

// Symbol returns the tracker's symbol.
func (t *Tracker) Symbol() string { return t.symbol }

// Config returns the effective configuration, defaults filled in.
func (t *Tracker) Config() Config { return t.cfg }

// Add updates every metric with one trade. Trades must come in
// non-decreasing Time and strictly increasing ID; anything else is refused
// with a *RejectError (wrapping ErrDuplicate, ErrOutOfOrder,
// ErrTimeBackwards, ErrInvalidTrade or ErrWrongSymbol), counted in
// Totals.Rejected, and changes nothing else. Add does not retain t.
// It allocates nothing in steady state (only refusals allocate their error).
func (t *Tracker) Add(tr *market.Trade) error {
	if err := t.check(tr); err != nil {
		return err
	}
	if !t.started {
		t.started = true
		t.firstTime = tr.Time
		t.high, t.low = tr.Price, tr.Price
	}
	t.lastTime, t.lastID = tr.Time, tr.ID
	if tr.Time > t.now {
		t.now = tr.Time
	}

	side := tr.TakerSide()
	notional := fixed.MulDec(tr.Price, tr.Qty)
	t.trades++
	if side == market.Buy {
		t.buyTrades++
		t.buyVol = t.buyVol.AddDec(tr.Qty)
		t.buyNot = t.buyNot.Add(notional)
	} else {
		t.sellTrades++
		t.sellVol = t.sellVol.AddDec(tr.Qty)
		t.sellNot = t.sellNot.Add(notional)
	}
	if tr.Time >= t.cvdFrom {
		if side == market.Buy {
			t.cvd = t.cvd.AddDec(tr.Qty)
		} else {
			t.cvd = t.cvd.AddDec(-tr.Qty)
		}
	}
	t.high = max(t.high, tr.Price)
	t.low = min(t.low, tr.Price)
	t.last = tr.Price

	t.hist.add(tr)
	t.win.add(tr, side, notional)
	delta := t.buyVol.Sub(t.sellVol)
	late := false
	for _, bs := range t.bars {
		if bs.add(tr, side, notional, delta) {
			late = true
		}
	}
	if !late && t.mark != 0 && len(t.bars) > 0 {
		// The shortest interval's bar ends first: if the watermark passed
		// it, the trade opened a bar that is overdue (it closes at the
		// next Advance).
		bs := t.bars[0]
		late = floorDiv(tr.Time, bs.ms)*bs.ms+bs.ms <= t.mark
	}
	if late {
		t.late++
	}
	t.session.add(tr, side)
	t.large.add(tr, side, notional)
	return nil
}

func (t *Tracker) check(tr *market.Trade) error {
	var reason error
	var field string
	switch {
	case tr.Symbol != "" && !strings.EqualFold(tr.Symbol, t.symbol):
		reason, field = ErrWrongSymbol, "Symbol"
		t.rejected.WrongSymbol++
	case tr.Price <= 0:
		reason, field = ErrInvalidTrade, "Price"
		t.rejected.Invalid++
	case tr.Qty <= 0:
		reason, field = ErrInvalidTrade, "Qty"
		t.rejected.Invalid++
	case t.started && tr.ID == t.lastID:
		reason, field = ErrDuplicate, "ID"
		t.rejected.Duplicate++
	case t.started && tr.ID < t.lastID:
		reason, field = ErrOutOfOrder, "ID"
		t.rejected.OutOfOrder++
	case t.started && tr.Time < t.lastTime:
		reason, field = ErrTimeBackwards, "Time"
		t.rejected.TimeBackwards++
	default:
		return nil
	}
	return &RejectError{Err: reason, Field: field, ID: tr.ID, Time: tr.Time, LastID: t.lastID, LastTime: t.lastTime}
}

// Advance moves the tracker's watermark to exchange time at (Unix ms)
// without a trade: every bar whose interval ended at or before the
// watermark is closed (OnBarClose is called), and windows end at at when
// it is after the latest trade. The watermark never moves back: an
// earlier at still closes bars a late trade opened behind it, but does
// not move it. Bars amended since their last report are re-reported
// first (OnBarRevised).
//
// The owner feeds it the latest event time seen on any of the symbol's
// streams minus an allowed lateness, so a quiet symbol's bar closes on
// time. A trade that arrives after the watermark passed its bar is never
// dropped: it amends the closed bar (see Bar.LateTrades) or, when its
// interval had no bar, opens one that the next Advance closes. Trades
// still come in time order, so a late trade's bar is always the newest:
// no later bar exists whose CVD or divergence would change, and no bar
// that left the kept history can be concerned. The final bars are the
// same whatever the watermark did; only when they were reported differs.
func (t *Tracker) Advance(at int64) {
	for _, bs := range t.bars {
		bs.emitRevision()
	}
	if at > t.mark {
		t.mark = at
	}
	if at > t.now {
		t.now = at
	}
	if t.mark == 0 {
		return
	}
	for _, bs := range t.bars {
		bs.advance(t.mark)
	}
}

// Flush closes every open bar now, whatever its end time, calling
// OnBarClose for each (after OnBarRevised for bars amended since their
// last report): for the end of a replay. A later trade inside a flushed
// bar's interval amends it, as a late trade does.
func (t *Tracker) Flush() {
	for _, bs := range t.bars {
		bs.emitRevision()
		bs.close()
	}
}

// Watermark returns the latest time Advance was given (Unix ms), 0 if
// never.
func (t *Tracker) Watermark() int64 { return t.mark }

// Late counts what arrived behind the watermark.
type Late struct {
	// Trades arrived after the watermark (Advance) had passed the end of
	// their bar, or after Flush closed it: each amended a closed bar or
	// opened an overdue one. They count in every metric like any trade.
	Trades int64 `json:"trades"`
	// AmendedBars counts closed bars that late trades changed (each bar
	// once, over every interval).
	AmendedBars int64 `json:"amendedBars"`
}

// Late returns the counts of late trades and amended bars.
func (t *Tracker) Late() Late {
	l := Late{Trades: t.late}
	for _, bs := range t.bars {
		l.AmendedBars += bs.amended
	}
	return l
}

// Now returns the latest exchange time seen (trade time or Advance), Unix
// ms; 0 before anything was seen.
func (t *Tracker) Now() int64 { return t.now }

// ResetCVD starts Totals.CVD again from zero at exchange time at (Unix ms),
// e.g. at a session open. Only trades with Time >= the anchor count. If at
// is not after the latest time already seen, the anchor is that latest
// time and only trades added after the call count (their times may equal
// the anchor). It returns the anchor used.
func (t *Tracker) ResetCVD(at int64) int64 {
	t.cvd = fixed.Int128{}
	if at <= t.now && t.started {
		at = t.now
	}
	t.cvdFrom = at
	return at
}

// Totals returns the figures since start.
func (t *Tracker) Totals() Totals {
	vol := t.buyVol.Add(t.sellVol)
	not := t.buyNot.Add(t.sellNot)
	p, _ := vwap(not, vol)
	return Totals{
		Symbol: t.symbol, Trades: t.trades, BuyTrades: t.buyTrades, SellTrades: t.sellTrades,
		BuyVolume: Volume(t.buyVol), SellVolume: Volume(t.sellVol), Volume: Volume(vol),
		BuyNotional: Notional(t.buyNot), SellNotional: Notional(t.sellNot), Notional: Notional(not),
		Delta: Volume(t.buyVol.Sub(t.sellVol)), CVD: Volume(t.cvd), CVDFrom: t.cvdFrom,
		VWAP: p, High: t.high, Low: t.low, Last: t.last,
		FirstTime: t.firstTime, LastTime: t.lastTime, LastID: t.lastID, Rejected: t.rejected,
	}
}

// durMS converts a duration to whole milliseconds, saturating.
func durMS(d time.Duration) int64 {
	ms := d.Milliseconds()
	if ms > math.MaxInt64/2 {
		ms = math.MaxInt64 / 2
	}
	return ms
}
