// Package binance speaks Binance's market-data wire protocol: it decodes the
// WebSocket frames (combined-stream envelopes and raw frames for aggTrade,
// trade, depthUpdate, bookTicker, subscription replies, error frames and
// serverShutdown) and the REST bodies (depth snapshots for spot and USD-M,
// aggTrades lists, exchangeInfo), and it knows the stream names and URLs.
//
// The hot-path decoder is a hand-written scanner: decoding a frame into a
// reused Message allocates nothing. The package is pure: no I/O, no
// goroutines. Documentation:
// https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
// and https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
package binance

import "github.com/orderflow/orderflow/market"

// Kind tells what a decoded frame was.
type Kind uint8

// Frame kinds.
const (
	KindUnknown        Kind = iota // a well-formed event of a type we do not handle; Message.Event names it
	KindAggTrade                   // "e":"aggTrade"  -> Message.Trade (Aggregated=true)
	KindTrade                      // "e":"trade"     -> Message.Trade (Aggregated=false)
	KindDepthUpdate                // "e":"depthUpdate" -> Message.Depth
	KindBookTicker                 // bookTicker (no "e" on spot; "e":"bookTicker" on USD-M) -> Message.Ticker
	KindReply                      // {"result":...,"id":...} reply to SUBSCRIBE etc. -> Message.Reply
	KindError                      // {"error":{"code":..,"msg":..},"id":..} or {"code":..,"msg":..} -> Message.Reply
	KindServerShutdown             // "e":"serverShutdown" -> Message.EventTime
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindAggTrade:
		return "aggTrade"
	case KindTrade:
		return "trade"
	case KindDepthUpdate:
		return "depthUpdate"
	case KindBookTicker:
		return "bookTicker"
	case KindReply:
		return "reply"
	case KindError:
		return "error"
	case KindServerShutdown:
		return "serverShutdown"
	}
	return "unknown"
}

// Reply is a reply to a SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS request or
// an error frame.
type Reply struct {
	// ID is the request id as raw JSON (a number, a string or null), a
	// sub-slice of the frame: valid until the next Decode.
	ID []byte
	// Result is the raw JSON of "result" (null for SUBSCRIBE, a list of
	// streams for LIST_SUBSCRIPTIONS), valid until the next Decode.
	Result []byte
	// Code and Msg are set for error frames.
	Code int64
	Msg  string
}

// Message is one decoded frame. A Decoder reuses one Message's slices, so
// its contents are valid only until the next Decode into it.
type Message struct {
	Kind Kind
	// Stream is the combined-stream name ("btcusdt@aggTrade"), empty for a
	// raw frame. It is interned: no allocation once seen.
	Stream string
	// Event is the "e" field (interned), e.g. for KindUnknown.
	Event     string
	EventTime int64
	Trade     market.Trade
	Depth     market.DepthUpdate
	Ticker    market.BookTicker
	Reply     Reply
}
