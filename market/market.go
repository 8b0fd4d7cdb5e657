// Package market holds the core domain types that every other package of
// orderflow speaks: markets, sides, trades, book levels, depth updates and
// snapshots. It is deliberately small and pure.
//
// Times are Unix milliseconds of the exchange's clock (Binance's E and T);
// the local clock never drives a metric, so a replay gives the same numbers
// every time.
package market

import (
	"fmt"
	"strings"

	"github.com/orderflow/orderflow/fixed"
)

// Kind is the market a symbol trades on.
type Kind uint8

// Markets orderflow speaks.
const (
	Spot Kind = iota // Binance spot
	USDM             // Binance USD-M futures
)

// String returns "spot" or "usdm".
func (k Kind) String() string {
	if k == USDM {
		return "usdm"
	}
	return "spot"
}

// ParseKind reads "spot" or "usdm" (also "futures").
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "spot":
		return Spot, nil
	case "usdm", "futures", "um":
		return USDM, nil
	}
	return 0, fmt.Errorf("market: unknown market %q (want spot or usdm)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Side is the side of the book, or the aggressor side of a trade.
type Side uint8

// Sides.
const (
	Buy  Side = iota // bid side; taker buy
	Sell             // ask side; taker sell
)

// String returns "BUY" or "SELL".
func (s Side) String() string {
	if s == Sell {
		return "SELL"
	}
	return "BUY"
}

// Level is one price level of a book.
type Level struct {
	Price fixed.Dec
	Qty   fixed.Dec
}

// Trade is one print on the tape: a Binance aggTrade (ID is the aggregate
// id, FirstID/LastID the trade ids it covers) or a raw trade (ID is the trade
// id and FirstID = LastID = ID).
type Trade struct {
	Symbol    string
	ID        int64
	FirstID   int64
	LastID    int64
	Price     fixed.Dec
	Qty       fixed.Dec
	Time      int64 // trade time T, ms
	EventTime int64 // event time E, ms
	// BuyerMaker is Binance's m: true means the buyer was the maker, so the
	// taker sold.
	BuyerMaker bool
	// Aggregated is true for aggTrade prints, false for raw trades.
	Aggregated bool
}

// TakerSide returns the aggressor: m=false is a taker buy, m=true a taker sell.
func (t *Trade) TakerSide() Side {
	if t.BuyerMaker {
		return Sell
	}
	return Buy
}

// DepthUpdate is a diff-depth event: absolute quantities at each price, a
// zero quantity removes the level.
type DepthUpdate struct {
	Symbol       string
	EventTime    int64 // E
	TransactTime int64 // T (USD-M only, else 0)
	FirstID      int64 // U
	FinalID      int64 // u
	// PrevFinalID is USD-M's pu, the u of the previous event; HasPrev says
	// whether the frame carried it (its presence marks a futures stream).
	PrevFinalID int64
	HasPrev     bool
	Bids        []Level
	Asks        []Level
}

// DepthSnapshot is a REST depth snapshot.
type DepthSnapshot struct {
	Symbol       string
	LastUpdateID int64
	EventTime    int64 // E (USD-M only)
	TransactTime int64 // T (USD-M only)
	Bids         []Level
	Asks         []Level
}

// BookTicker is the best bid and ask at an update id.
type BookTicker struct {
	Symbol       string
	UpdateID     int64
	BidPrice     fixed.Dec
	BidQty       fixed.Dec
	AskPrice     fixed.Dec
	AskQty       fixed.Dec
	EventTime    int64 // USD-M only
	TransactTime int64 // USD-M only
}
