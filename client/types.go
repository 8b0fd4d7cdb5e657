package client

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/orderflow/orderflow/fixed"
)

// Decimal is an exact decimal number as the API writes it: a JSON string in
// its shortest form ("61837.63", "-28.93328"). Keeping the text avoids any
// float rounding; convert with Dec, Rat or Float64 as the use needs.
type Decimal string

// Dec parses d as a fixed.Dec (8 decimals, int64). Notionals have up to 16
// decimals and may not fit: use Rat for them.
func (d Decimal) Dec() (fixed.Dec, error) {
	v, err := fixed.ParseString(string(d))
	if err != nil {
		return 0, fmt.Errorf("client: decimal %q: %w", string(d), err)
	}
	return v, nil
}

// Rat parses d exactly, whatever its size and number of decimals.
func (d Decimal) Rat() (*big.Rat, error) {
	r, ok := new(big.Rat).SetString(string(d))
	if !ok {
		return nil, fmt.Errorf("client: decimal %q: not a number", string(d))
	}
	return r, nil
}

// Float64 converts d for display; 0 if d is empty or not a number.
func (d Decimal) Float64() float64 {
	f, err := strconv.ParseFloat(string(d), 64)
	if err != nil {
		return 0
	}
	return f
}

// String returns the text of d.
func (d Decimal) String() string { return string(d) }

// Level is one price level of a book.
type Level struct {
	Price Decimal `json:"price"`
	Qty   Decimal `json:"qty"`
}

// Status is the service's state and counters (GET /v1/status).
type Status struct {
	State   string         `json:"state"`
	Market  string         `json:"market"`
	Symbols []SymbolStatus `json:"symbols"`
	Streams []StreamStatus `json:"streams"`
	// Engine counts what the pipeline saw: Frames, DecodeErrors, Trades,
	// DepthUpdates and more, by name.
	Engine   map[string]int64 `json:"engine"`
	Backfill map[string]int64 `json:"backfill"`
	Started  string           `json:"started,omitempty"`
}

// SymbolStatus is one symbol's state in Status.
type SymbolStatus struct {
	Symbol     string `json:"symbol"`
	BookSynced bool   `json:"book_synced"`
	BookState  string `json:"book_state"`
	UpdateID   int64  `json:"update_id"`
	Trades     int64  `json:"trades"`
	LastTrade  int64  `json:"last_trade_id"`
	LastTime   int64  `json:"last_trade_time"`
	Resyncs    uint64 `json:"resyncs"`
}

// StreamStatus is one WebSocket connection's state in Status.
type StreamStatus struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Streams    int    `json:"streams"`
	Reconnects uint64 `json:"reconnects"`
	Frames     uint64 `json:"frames"`
	Bytes      uint64 `json:"bytes"`
	Rotations  uint64 `json:"rotations"`
	Stale      uint64 `json:"stale"`
}

// Symbols is the answer of GET /v1/symbols.
type Symbols struct {
	Symbols []SymbolInfo `json:"symbols"`
}

// SymbolInfo is one streamed symbol with its headline numbers.
type SymbolInfo struct {
	Symbol     string  `json:"symbol"`
	Market     string  `json:"market"`
	BookSynced bool    `json:"book_synced"`
	Trades     int64   `json:"trades"`
	Last       Decimal `json:"last"`
	LastTime   int64   `json:"last_time"`
}

// Totals are a symbol's figures since the service started.
type Totals struct {
	Trades       int64   `json:"trades"`
	BuyTrades    int64   `json:"buy_trades"`
	SellTrades   int64   `json:"sell_trades"`
	Volume       Decimal `json:"volume"`
	BuyVolume    Decimal `json:"buy_volume"`
	SellVolume   Decimal `json:"sell_volume"`
	Delta        Decimal `json:"delta"`
	CVD          Decimal `json:"cvd"`
	Notional     Decimal `json:"notional"`
	BuyNotional  Decimal `json:"buy_notional"`
	SellNotional Decimal `json:"sell_notional"`
	VWAP         Decimal `json:"vwap"`
	High         Decimal `json:"high"`
	Low          Decimal `json:"low"`
	Last         Decimal `json:"last"`
	FirstTime    int64   `json:"first_time"`
	LastTime     int64   `json:"last_time"`
	LastID       int64   `json:"last_id"`
}

// Window is one rolling window's figures. Ready (Complete) says the
// window has seen its full length of the tape; until then Covered says how
// much.
type Window struct {
	Window          string  `json:"window"`
	Start           int64   `json:"start"`
	End             int64   `json:"end"`
	Ready           bool    `json:"ready"`
	CoveredMS       int64   `json:"covered_ms"`
	Trades          int64   `json:"trades"`
	BuyTrades       int64   `json:"buy_trades"`
	SellTrades      int64   `json:"sell_trades"`
	Volume          Decimal `json:"volume"`
	BuyVolume       Decimal `json:"buy_volume"`
	SellVolume      Decimal `json:"sell_volume"`
	Delta           Decimal `json:"delta"`
	Notional        Decimal `json:"notional"`
	VWAP            Decimal `json:"vwap"`
	AvgTradeSize    Decimal `json:"avg_trade_size"`
	BuyRatio        Decimal `json:"buy_ratio"`
	TradesPerSecond Decimal `json:"trades_per_second"`
	Largest         *Trade  `json:"largest,omitempty"`
}

// LargeThreshold is the adaptive large-trade rule's state.
type LargeThreshold struct {
	Enabled  bool    `json:"enabled"`
	Ready    bool    `json:"ready"`
	Qty      Decimal `json:"qty"`
	Sample   int     `json:"sample"`
	Notional Decimal `json:"notional"` // the absolute rule; "0" when off
}

// Metrics is the answer of GET /v1/symbols/{symbol}/metrics.
type Metrics struct {
	Symbol     string         `json:"symbol"`
	Market     string         `json:"market"`
	Time       int64          `json:"time"` // the latest exchange time seen, Unix ms
	BookSynced bool           `json:"book_synced"`
	Totals     Totals         `json:"totals"`
	Windows    []Window       `json:"windows"`
	Large      LargeThreshold `json:"large_threshold"`
}

// Trade is one print on the tape. Side is the aggressor: "buy" is a taker
// buy (Binance m=false), "sell" a taker sell.
type Trade struct {
	Symbol   string  `json:"symbol,omitempty"`
	ID       int64   `json:"id"`
	Time     int64   `json:"time"`
	Side     string  `json:"side"`
	Price    Decimal `json:"price"`
	Qty      Decimal `json:"qty"`
	Notional Decimal `json:"notional"`
}

// Trades is the answer of GET /v1/symbols/{symbol}/trades.
type Trades struct {
	Symbol string  `json:"symbol"`
	Count  int     `json:"count"`
	Trades []Trade `json:"trades"`
}

// LargeTrade is a trade flagged large by the absolute notional rule, the
// adaptive percentile rule, or both.
type LargeTrade struct {
	Symbol       string  `json:"symbol"`
	ID           int64   `json:"id"`
	Time         int64   `json:"time"`
	Side         string  `json:"side"`
	Price        Decimal `json:"price"`
	Qty          Decimal `json:"qty"`
	Notional     Decimal `json:"notional"`
	ByNotional   bool    `json:"by_notional"`
	ByPercentile bool    `json:"by_percentile"`
	QtyThreshold Decimal `json:"qty_threshold"`
}

// LargeTrades is the answer of GET /v1/symbols/{symbol}/large-trades.
type LargeTrades struct {
	Symbol    string         `json:"symbol"`
	Threshold LargeThreshold `json:"threshold"`
	Trades    []LargeTrade   `json:"trades"`
}

// FootprintLevel is the volume at one price of a bar, split by aggressor.
type FootprintLevel struct {
	Price         Decimal `json:"price"`
	BuyVolume     Decimal `json:"buy_volume"`
	SellVolume    Decimal `json:"sell_volume"`
	BuyImbalance  bool    `json:"buy_imbalance,omitempty"`
	SellImbalance bool    `json:"sell_imbalance,omitempty"`
}

// Stacked is a run of consecutive imbalanced prices on one side.
type Stacked struct {
	Side   string  `json:"side"`
	Low    Decimal `json:"low"`
	High   Decimal `json:"high"`
	Levels int     `json:"levels"`
}

// Bar is one bar of trades. Closed is false for the bar still open.
type Bar struct {
	Symbol        string           `json:"symbol"`
	Interval      string           `json:"interval"`
	Start         int64            `json:"start"`
	End           int64            `json:"end"`
	Closed        bool             `json:"closed"`
	Open          Decimal          `json:"open"`
	High          Decimal          `json:"high"`
	Low           Decimal          `json:"low"`
	Close         Decimal          `json:"close"`
	Trades        int64            `json:"trades"`
	BuyTrades     int64            `json:"buy_trades"`
	SellTrades    int64            `json:"sell_trades"`
	Volume        Decimal          `json:"volume"`
	BuyVolume     Decimal          `json:"buy_volume"`
	SellVolume    Decimal          `json:"sell_volume"`
	Delta         Decimal          `json:"delta"`
	MaxDelta      Decimal          `json:"max_delta"`
	MinDelta      Decimal          `json:"min_delta"`
	CVD           Decimal          `json:"cvd"`
	Notional      Decimal          `json:"notional"`
	VWAP          Decimal          `json:"vwap"`
	POC           Decimal          `json:"poc"`
	POCVolume     Decimal          `json:"poc_volume"`
	FirstID       int64            `json:"first_id"`
	LastID        int64            `json:"last_id"`
	Divergence    string           `json:"divergence,omitempty"`
	HighExhausted bool             `json:"high_exhausted,omitempty"`
	LowExhausted  bool             `json:"low_exhausted,omitempty"`
	Stacked       []Stacked        `json:"stacked,omitempty"`
	Footprint     []FootprintLevel `json:"footprint,omitempty"`
}

// Bars is the answer of GET /v1/symbols/{symbol}/bars: closed bars oldest
// first, then the open bar if there is one.
type Bars struct {
	Symbol   string `json:"symbol"`
	Interval string `json:"interval"`
	Bars     []Bar  `json:"bars"`
	Current  *Bar   `json:"current,omitempty"`
}

// ProfileLevel is the volume traded at one price of a profile.
type ProfileLevel struct {
	Price      Decimal `json:"price"`
	BuyVolume  Decimal `json:"buy_volume"`
	SellVolume Decimal `json:"sell_volume"`
}

// Profile is a volume profile with its point of control and value area.
type Profile struct {
	Symbol          string         `json:"symbol"`
	From            int64          `json:"from"`
	To              int64          `json:"to"`
	FirstTime       int64          `json:"first_time"`
	LastTime        int64          `json:"last_time"`
	Volume          Decimal        `json:"volume"`
	POC             Decimal        `json:"poc"`
	POCVolume       Decimal        `json:"poc_volume"`
	ValueAreaLow    Decimal        `json:"value_area_low"`
	ValueAreaHigh   Decimal        `json:"value_area_high"`
	ValueAreaVolume Decimal        `json:"value_area_volume"`
	Levels          []ProfileLevel `json:"levels"`
}

// Band is the book's resting quantity within a distance of the mid.
// Imbalance is (bid - ask) / (bid + ask) of the quantities, rounded half to
// even to 8 decimals: +1 all bids, -1 all asks.
type Band struct {
	BPS         int     `json:"bps"`
	BidQty      Decimal `json:"bid_qty"`
	AskQty      Decimal `json:"ask_qty"`
	BidNotional Decimal `json:"bid_notional"`
	AskNotional Decimal `json:"ask_notional"`
	Imbalance   Decimal `json:"imbalance"`
}

// Book is the answer of GET /v1/symbols/{symbol}/book: the top of the
// local book. Mid has 9 decimals (exact); Microprice, the size-weighted mid
// (bidPx*askQty + askPx*bidQty) / (bidQty + askQty), is rounded half to
// even to 8 decimals.
type Book struct {
	Symbol     string  `json:"symbol"`
	Synced     bool    `json:"synced"`
	UpdateID   int64   `json:"update_id"`
	BestBid    *Level  `json:"best_bid,omitempty"`
	BestAsk    *Level  `json:"best_ask,omitempty"`
	Spread     Decimal `json:"spread,omitempty"`
	Mid        Decimal `json:"mid,omitempty"`
	Microprice Decimal `json:"microprice,omitempty"`
	Bids       []Level `json:"bids"`
	Asks       []Level `json:"asks"`
	Bands      []Band  `json:"bands"`
}

// Signal is an order-flow event found on a closed bar: a delta divergence
// ("bearish_divergence", "bullish_divergence"), an exhausted extreme
// ("high_exhausted", "low_exhausted") or a stacked imbalance
// ("stacked_buy_imbalance", "stacked_sell_imbalance"). Price is the price
// the signal is at (the bar's high or low, or the run's low), High the
// run's high for stacked imbalances.
type Signal struct {
	Symbol   string  `json:"symbol"`
	Kind     string  `json:"kind"`
	Interval string  `json:"interval"`
	BarStart int64   `json:"bar_start"`
	BarEnd   int64   `json:"bar_end"`
	Price    Decimal `json:"price"`
	High     Decimal `json:"high,omitempty"`
	Levels   int     `json:"levels,omitempty"`
	Delta    Decimal `json:"delta"`
	CVD      Decimal `json:"cvd"`
}

// Signals is the answer of GET /v1/symbols/{symbol}/signals.
type Signals struct {
	Symbol   string   `json:"symbol"`
	Interval string   `json:"interval"`
	Bars     int      `json:"bars"` // closed bars examined
	Signals  []Signal `json:"signals"`
	Note     string   `json:"note,omitempty"`
}

// Message is one push message (SSE data or WebSocket text). Type is
// "trade", "large", "bar", "book", "signal", or "dropped" (Count frames
// were skipped because the client read too slowly); Data holds the
// matching value (Trade, LargeTrade, Bar, Book, Signal).
type Message struct {
	Type   string `json:"type"`
	Symbol string `json:"symbol,omitempty"`
	Count  int64  `json:"count,omitempty"`
	Data   any    `json:"data,omitempty"`
}

// Error is an API error: Status is the HTTP status, Code a stable
// machine-readable code (bad_request, unknown_symbol, ...).
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("orderflow api: %s (%d): %s", e.Code, e.Status, e.Message)
}

// IsCode reports whether err is an API *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
