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
	Trades     int64   `json:"trades"`
	BuyTrades  int64   `json:"buy_trades"`
	SellTrades int64   `json:"sell_trades"`
	Volume     Decimal `json:"volume"`
	BuyVolume  Decimal `json:"buy_volume"`
	SellVolume Decimal `json:"sell_volume"`
	Delta      Decimal `json:"delta"`
	// CVD is the cumulative delta of the trades at or after CVDResetAt
	// (POST /v1/symbols/{symbol}/cvd/reset); without a reset it equals
	// Delta and CVDResetAt is 0.
	CVD          Decimal `json:"cvd"`
	CVDResetAt   int64   `json:"cvd_reset_at"`
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
	// Revised is set on a closed bar that trades arriving after it closed
	// (behind the watermark, see --bar-lateness) amended; LateTrades counts
	// them. A push "bar" message with Revised replaces the bar with the
	// same start sent before.
	Revised    bool  `json:"revised,omitempty"`
	LateTrades int64 `json:"late_trades,omitempty"`
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
	// Metrics holds the book metrics and walls when the service tracks
	// them (depthflow on); absent otherwise.
	Metrics *BookMetrics `json:"metrics,omitempty"`
}

// Signal is an order-flow event. Bar signals are found on a closed bar:
// a delta divergence ("bearish_divergence", "bullish_divergence"), an
// exhausted extreme ("high_exhausted", "low_exhausted") or a stacked
// imbalance ("stacked_buy_imbalance", "stacked_sell_imbalance"); their
// Price is the bar's high or low, or the run's low (High the run's high),
// Time the bar's end, and Side the aggressor side the signal is about:
// "sell" for a bearish divergence and an exhausted low, "buy" for a
// bullish divergence and an exhausted high, the run's side for stacked
// imbalances.
//
// Book signals come from the book metrics (depthflow on): "absorption"
// (heavy taker volume into a resting price that does not give way; Side is
// the resting side, "bid" or "ask", Volume the taker volume, Threshold
// what it had to reach, Replenished the quantity added back, Since the
// first trade counted), "wall_pulled" and "wall_filled" (a wall that stood
// ended, cancelled or traded away; Volume its last quantity, Pulled and
// Filled the split of the final decrease, Since when it first qualified).
// Strength ranks signals of a kind (display only).
type Signal struct {
	Symbol      string  `json:"symbol"`
	Kind        string  `json:"kind"`
	Time        int64   `json:"time"`
	Side        string  `json:"side,omitempty"`
	Interval    string  `json:"interval,omitempty"`
	BarStart    int64   `json:"bar_start,omitempty"`
	BarEnd      int64   `json:"bar_end,omitempty"`
	Price       Decimal `json:"price"`
	High        Decimal `json:"high,omitempty"`
	Levels      int     `json:"levels,omitempty"`
	Delta       Decimal `json:"delta,omitempty"`
	CVD         Decimal `json:"cvd,omitempty"`
	Volume      Decimal `json:"volume,omitempty"`
	Threshold   Decimal `json:"threshold,omitempty"`
	Replenished Decimal `json:"replenished,omitempty"`
	Pulled      Decimal `json:"pulled,omitempty"`
	Filled      Decimal `json:"filled,omitempty"`
	Since       int64   `json:"since,omitempty"`
	Strength    float64 `json:"strength,omitempty"`
}

// Signals is the answer of GET /v1/symbols/{symbol}/signals.
type Signals struct {
	Symbol   string `json:"symbol"`
	Interval string `json:"interval"`
	Bars     int    `json:"bars"` // closed bars examined
	// BookMetrics says whether book signals (absorption, walls) are
	// tracked; they are listed with the bar signals, by time.
	BookMetrics bool     `json:"book_metrics"`
	Signals     []Signal `json:"signals"`
	Note        string   `json:"note,omitempty"`
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

// ErrorCode returns e's code; in-process sources (package api) give their
// errors the same method, so IsCode reads both.
func (e *Error) ErrorCode() string { return e.Code }

// IsCode reports whether err is an API error with the given code: an
// *Error read from the server, or any error in err's chain with an
// ErrorCode method (the API server's own, when called in-process).
func IsCode(err error, code string) bool {
	var e interface{ ErrorCode() string }
	return errors.As(err, &e) && e.ErrorCode() == code
}

// BookFrame is the top of the book at one moment of the book history:
// Time is the exchange event time (E) of the depth update after which it
// was taken, levels best first.
type BookFrame struct {
	Time     int64   `json:"time"`
	UpdateID int64   `json:"update_id"`
	Bids     []Level `json:"bids"`
	Asks     []Level `json:"asks"`
}

// BookHistory is the answer of GET /v1/symbols/{symbol}/book/history:
// frames of the top levels at a fixed interval of exchange time (one
// second by default), oldest first. Truncated says more frames matched
// than one answer holds: the newest are kept; narrow from/to for the rest.
type BookHistory struct {
	Symbol    string      `json:"symbol"`
	From      int64       `json:"from"`
	To        int64       `json:"to"`
	Depth     int         `json:"depth"`
	Frames    []BookFrame `json:"frames"`
	Truncated bool        `json:"truncated,omitempty"`
}

// Wall is a resting level far larger than the levels around it (package
// depthflow's rule: at least WallFactor times the mean of its neighbours,
// within WallMaxBps of the mid). Side is "bid" or "ask"; Since is when it
// first qualified, Updated the last update at which it still did, StoodMS
// their difference; Ratio is its quantity over the neighbours' mean
// (display only, not exact).
type Wall struct {
	Side    string  `json:"side"`
	Price   Decimal `json:"price"`
	Qty     Decimal `json:"qty"`
	PeakQty Decimal `json:"peak_qty"`
	Since   int64   `json:"since"`
	Updated int64   `json:"updated"`
	StoodMS int64   `json:"stood_ms"`
	Ratio   float64 `json:"ratio"`
}

// EndedWall is a wall that stopped being one at End. Reason is "pulled"
// (cancelled), "filled" (traded away), "diluted" (its neighbours grew),
// "out_of_range" (the mid moved away) or "reset" (the book was resynced);
// Pulled and Filled split the final decrease of a pulled or filled wall.
type EndedWall struct {
	Wall
	End      int64   `json:"end"`
	Reason   string  `json:"reason"`
	FinalQty Decimal `json:"final_qty"`
	Pulled   Decimal `json:"pulled"`
	Filled   Decimal `json:"filled"`
}

// Walls is the answer of GET /v1/symbols/{symbol}/walls: the current walls
// of each side, best price first, and the walls that ended since Since
// (the last ones kept), oldest first. BidReady and AskReady say each side
// is judged over its whole range (enough levels, inside the part of the
// book the snapshot made certain).
type Walls struct {
	Symbol   string `json:"symbol"`
	Time     int64  `json:"time"`
	BidReady bool   `json:"bid_ready"`
	AskReady bool   `json:"ask_ready"`
	// BidReason and AskReason say why a side is not ready.
	BidReason string      `json:"bid_reason,omitempty"`
	AskReason string      `json:"ask_reason,omitempty"`
	Bids      []Wall      `json:"bids"`
	Asks      []Wall      `json:"asks"`
	Since     int64       `json:"since"`
	Ended     []EndedWall `json:"ended"`
}

// LiquidityWindow is the liquidity added, pulled (cancelled, not explained
// by trades) and filled (taken by trades) near the touch over a rolling
// window From..To (ms). Ready is false while the window is not fully
// covered by updates whose changes are known.
type LiquidityWindow struct {
	Window    string  `json:"window"`
	From      int64   `json:"from"`
	To        int64   `json:"to"`
	Ready     bool    `json:"ready"`
	Reason    string  `json:"reason,omitempty"` // why not ready, e.g. "bids_beyond_known_range"
	Updates   int64   `json:"updates"`
	BidAdded  Decimal `json:"bid_added"`
	BidPulled Decimal `json:"bid_pulled"`
	BidFilled Decimal `json:"bid_filled"`
	AskAdded  Decimal `json:"ask_added"`
	AskPulled Decimal `json:"ask_pulled"`
	AskFilled Decimal `json:"ask_filled"`
}

// Liquidity is the answer of GET /v1/symbols/{symbol}/liquidity.
type Liquidity struct {
	Symbol  string            `json:"symbol"`
	Windows []LiquidityWindow `json:"windows"`
}

// DepthBand is the resting quantity within a distance of the mid as the
// book metrics track it after every update. Imbalance is (bid - ask) /
// (bid + ask) of the quantities, rounded half to even to 8 decimals; Ready
// says the whole band lies inside the part of the book the snapshot made
// certain.
type DepthBand struct {
	BPS       int     `json:"bps"`
	BidQty    Decimal `json:"bid_qty"`
	AskQty    Decimal `json:"ask_qty"`
	BidLevels int     `json:"bid_levels"`
	AskLevels int     `json:"ask_levels"`
	Imbalance Decimal `json:"imbalance"`
	Ready     bool    `json:"ready"`
	Reason    string  `json:"reason,omitempty"` // why not ready, e.g. "asks_beyond_known_range"
}

// BookMetrics are the book metrics (package depthflow) after the last
// update: the bands it tracks and the current walls of both sides (bids
// first, each side best price first).
type BookMetrics struct {
	Time     int64       `json:"time"`
	UpdateID int64       `json:"update_id"`
	Ready    bool        `json:"ready"`
	Bands    []DepthBand `json:"bands"`
	BidReady bool        `json:"walls_bid_ready"`
	AskReady bool        `json:"walls_ask_ready"`
	// BidReason and AskReason say why a side's walls are not ready.
	BidReason string `json:"walls_bid_reason,omitempty"`
	AskReason string `json:"walls_ask_reason,omitempty"`
	Walls     []Wall `json:"walls"`
}

// CVDReset is the answer of POST /v1/symbols/{symbol}/cvd/reset: the
// anchor the symbol's CVD now counts from (Unix ms of the exchange clock).
// Only trades at or after it count; an anchor asked for that is not after
// the latest exchange time already seen becomes that time, and only trades
// arriving after the reset count.
type CVDReset struct {
	Symbol     string `json:"symbol"`
	CVDResetAt int64  `json:"cvd_reset_at"`
}
