package bus

import (
	"encoding/json"
	"fmt"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/fixed"
)

// SchemaVersion is the "v" field of every message this package writes.
// Decoders refuse other versions.
const SchemaVersion = 1

// The "type" field values.
const (
	TypeTrade        = "trade"
	TypeBookDelta    = "book.delta"
	TypeBookSnapshot = "book.snapshot"
	TypeBookTop      = "book.top"
	TypeBar          = "bar"
	TypeLarge        = "large"
	TypeSignal       = "signal"
)

// Snapshot reasons.
const (
	ReasonSync     = "sync"     // the first sync of the book
	ReasonResync   = "resync"   // a sync after a gap or reconnect
	ReasonPeriodic = "periodic" // every SnapshotEvery
)

// Header holds the fields every message has.
type Header struct {
	V      int    `json:"v"`
	Type   string `json:"type"`
	Market string `json:"market"` // "spot" or "usdm"
	Symbol string `json:"symbol"` // upper case
	Time   int64  `json:"time"`   // exchange event time, ms
}

// Trade is a message of the trades topic.
type Trade struct {
	Header
	ID        int64     `json:"id"`       // aggregate trade id (trade id on the trade channel)
	FirstID   int64     `json:"first_id"` // first trade id of the aggregate
	LastID    int64     `json:"last_id"`  // last trade id of the aggregate
	Price     fixed.Dec `json:"price"`
	Qty       fixed.Dec `json:"qty"`
	Side      string    `json:"side"`       // taker side: "buy" or "sell"
	TradeTime int64     `json:"trade_time"` // T, ms
}

// Level is one price level, written ["price","qty"].
type Level [2]fixed.Dec

// UnmarshalJSON reads ["price","qty"], refusing any other length (a plain
// array would leave a missing quantity at zero: a removal).
func (l *Level) UnmarshalJSON(b []byte) error {
	var a []fixed.Dec
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 2 {
		return fmt.Errorf("level %s: want [price, qty]", b)
	}
	l[0], l[1] = a[0], a[1]
	return nil
}

// BookDelta is a message of the book.delta topic: one depth diff as it was
// applied to the synced book. A level with quantity 0 is removed.
type BookDelta struct {
	Header
	FirstUpdateID int64  `json:"first_update_id"`          // U
	LastUpdateID  int64  `json:"last_update_id"`           // u
	PrevUpdateID  *int64 `json:"prev_update_id,omitempty"` // pu, USD-M only
	// TransactionTime is USD-M's T, the matching engine's time of the
	// update (ms), which the event time E (Header.Time) follows; 0 and
	// absent on spot, whose diffs carry no T. Added to schema v1: a v1
	// decoder that does not know it ignores it.
	TransactionTime int64   `json:"transaction_time,omitempty"`
	Bids            []Level `json:"bids"`
	Asks            []Level `json:"asks"`
}

// BookSnapshot is a message of the book.snapshot topic: every level the
// book holds, best first. Prices below KnownBidFloor and above
// KnownAskCeiling are unknown (book.KnownRange).
type BookSnapshot struct {
	Header
	LastUpdateID    int64     `json:"last_update_id"`
	Bids            []Level   `json:"bids"`
	Asks            []Level   `json:"asks"`
	KnownBidFloor   fixed.Dec `json:"known_bid_floor"`
	KnownAskCeiling fixed.Dec `json:"known_ask_ceiling"`
	Reason          string    `json:"reason"` // ReasonSync, ReasonResync or ReasonPeriodic
}

// BookTop is a message of the book.top topic: the best N levels per side,
// best first.
type BookTop struct {
	Header
	LastUpdateID int64   `json:"last_update_id"`
	Bids         []Level `json:"bids"`
	Asks         []Level `json:"asks"`
}

// Bar is a message of the bars topic: the HTTP API's bar (with its
// footprint) plus the common fields. Its "symbol" and "interval" are the
// bar's; "time" is the bar's end.
type Bar struct {
	V      int    `json:"v"`
	Type   string `json:"type"`
	Market string `json:"market"`
	Time   int64  `json:"time"`
	client.Bar
}

// Large is a message of the large topic: the HTTP API's large trade plus
// the common fields ("symbol" and "time" are the trade's).
type Large struct {
	V      int    `json:"v"`
	Type   string `json:"type"`
	Market string `json:"market"`
	client.LargeTrade
}

// Signal is a message of the signals topic: the HTTP API's signal plus the
// common fields ("symbol" and "time" are the signal's).
type Signal struct {
	V      int    `json:"v"`
	Type   string `json:"type"`
	Market string `json:"market"`
	client.Signal
}
