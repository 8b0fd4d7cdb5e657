// Package capture reads and writes recordings of Binance market data.
//
// It reads, as they are, the project's own capture files (written by
// orderflow record), hftbacktest collector lines ("<ns> <json>"),
// cryptofeed recorder lines, and data.binance.vision aggTrades CSV. Every
// format comes out as the same Record: a verbatim Binance frame or REST body
// with the local receive time, so one decoder and one pipeline serve them all.
//
// Open detects the format and undoes gzip; Create and Writer write the
// project's own format: DEFLATE-compressed, CRC-32C-checked blocks that are
// only ever appended, so a crash loses at most the block being written and
// the next Create cuts it off (see ofcap.go for the layout).
//
// Readers and Writers are for one goroutine each and start no goroutines.
// Readers never panic on bad input: a malformed line is a *LineError (the
// reader goes on with the next line), a torn or corrupt tail an error
// wrapping ErrTorn (the reader stops).
package capture

import (
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/market"
)

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
	// Trades is a REST aggregate trades body (/api/v3/aggTrades or
	// /fapi/v1/aggTrades) that the service used to warm up or to fill a gap
	// in the trade ids. Record.Symbol names its symbol. Only the service's
	// own captures hold it (orderflow run --capture).
	Trades
	// BookReset says that the service started Record.Symbol's book over
	// here (the connection carrying its depth stream was replaced, and
	// Binance's procedure starts again from a fresh snapshot). Data is
	// empty. Only the service's own captures hold it.
	BookReset
)

// lastKind is the highest RecordKind this build reads and writes.
const lastKind = BookReset

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

// ErrTorn is wrapped by the error a Reader returns for a truncated or
// corrupt tail (a recorder that crashed mid-write, a truncated gzip stream,
// a block whose checksum does not match). Every intact record before it has
// been returned; the error message names the byte offset.
var ErrTorn = errors.New("capture: torn record")

// ProgressReporter is implemented by every Reader this package returns. It
// reports how far reading has come, for a progress bar.
type ProgressReporter interface {
	// Progress returns the bytes of the underlying file (compressed, as
	// stored) consumed so far and the file's size; total is 0 when the
	// size is unknown (a pipe). done runs a little ahead of the records
	// returned because of read buffering.
	Progress() (done, total int64)
}

// StatsReporter is implemented by every Reader this package returns.
type StatsReporter interface {
	// Stats returns what the reader has seen so far.
	Stats() Stats
}

// Stats counts what a reader has seen, so that nothing is dropped silently.
type Stats struct {
	// Records is the number of records returned.
	Records int64
	// Lines is the number of text lines read (text formats only).
	Lines int64
	// Skipped counts lines read on purpose without a record: blank lines,
	// cryptofeed configuration and WebSocket URL lines, CSV header rows.
	Skipped int64
	// Errors counts malformed lines reported to the caller (LineError).
	Errors int64
	// Blocks counts capture-format blocks read.
	Blocks int64
}

// LineError reports a malformed line of a text format. The reader stays
// usable: the next call of Next continues with the following line.
type LineError struct {
	Name   string // file name or the name given to NewReader
	Line   int64  // 1-based line number
	Offset int64  // byte offset of the line's start in the uncompressed stream
	Err    error
}

// Error implements error.
func (e *LineError) Error() string {
	return fmt.Sprintf("capture: %s: line %d (offset %d): %v", e.Name, e.Line, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *LineError) Unwrap() error { return e.Err }
