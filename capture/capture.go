// Package capture reads and writes recordings of Binance market data.
//
// It reads, as they are, the project's own capture files (written by
// orderflow record), hftbacktest collector lines ("<ns> <json>"),
// cryptofeed recorder lines, and data.binance.vision aggTrades CSV. Every
// format comes out as the same Record: a verbatim Binance frame or REST body
// with the local receive time, so one decoder and one pipeline serve them all.
package capture

import "github.com/orderflow/orderflow/market"

// RecordKind tells what a Record holds.
type RecordKind uint8

// Record kinds.
const (
	// Frame is a WebSocket frame exactly as Binance sent it (combined-stream
	// envelope or raw frame).
	Frame RecordKind = iota
	// Snapshot is a REST depth snapshot body (/api/v3/depth or
	// /fapi/v1/depth). Record.Symbol names its symbol.
	Snapshot
)

// Record is one recorded message.
type Record struct {
	Kind RecordKind
	// Local is the recorder's receive time, Unix nanoseconds. It is for
	// pacing and diagnostics only; metrics use the exchange times inside Data.
	Local int64
	// Symbol is set for snapshots (upper case, e.g. "BTCUSDT"); for frames it
	// may be empty (the frame itself names the symbol).
	Symbol string
	// Market is the market the recording is from, when the format tells
	// (a /fapi/ URL, a futures CSV header, a snapshot with "E"/"T"); Known
	// says whether it was told.
	Market      market.Kind
	MarketKnown bool
	// Data is the verbatim JSON body. It is valid only until the next call
	// of Next.
	Data []byte
}

// Reader yields records in file order. Next returns io.EOF at the end.
// A torn or corrupt tail is reported by Next as an error wrapping ErrTorn
// after every intact record has been returned.
type Reader interface {
	Next() (*Record, error)
	Close() error
}
