package binance

import (
	"strconv"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// The encoders write frames and REST bodies the way Binance does, with the
// field order of the real payloads of each market (see the recordings in
// testdata/binance), so the simulator's output is indistinguishable from the
// exchange's for our decoder and for third-party clients. Prices and
// quantities are written with 8 fractional digits, as spot does; a spot
// frame therefore re-encodes byte for byte. Every encoder appends to dst and
// returns the extended slice; none allocates beyond growing dst.

// AppendDec8 appends d with exactly 8 fractional digits: "61737.63000000",
// "0.00000000", "-1.50000000".
func AppendDec8(dst []byte, d fixed.Dec) []byte {
	u := uint64(d)
	if d < 0 {
		dst = append(dst, '-')
		u = -u
	}
	dst = strconv.AppendUint(dst, u/uint64(fixed.One), 10)
	frac := u % uint64(fixed.One)
	var buf [1 + fixed.Scale]byte
	buf[0] = '.'
	for k := fixed.Scale; k >= 1; k-- {
		buf[k] = byte('0' + frac%10)
		frac /= 10
	}
	return append(dst, buf[:]...)
}

// appendQuotedDec appends d as a JSON string with 8 fractional digits.
func appendQuotedDec(dst []byte, d fixed.Dec) []byte {
	dst = append(dst, '"')
	dst = AppendDec8(dst, d)
	return append(dst, '"')
}

// appendString appends s as a JSON string, escaping '"', '\\' and control
// characters. Other bytes are copied as they are, so any string the decoder
// produced encodes back to the same string.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendKey appends `"k":` (after a comma unless first).
func appendKey(dst []byte, k string) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' && dst[n-1] != '[' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, k...)
	return append(dst, '"', ':')
}

func appendIntField(dst []byte, k string, v int64) []byte {
	return strconv.AppendInt(appendKey(dst, k), v, 10)
}

func appendDecField(dst []byte, k string, d fixed.Dec) []byte {
	return appendQuotedDec(appendKey(dst, k), d)
}

func appendStrField(dst []byte, k, s string) []byte {
	return appendString(appendKey(dst, k), s)
}

func appendBoolField(dst []byte, k string, b bool) []byte {
	return strconv.AppendBool(appendKey(dst, k), b)
}

// appendLevels appends a depth side as [["price","qty"],...].
func appendLevels(dst []byte, k string, levels []market.Level) []byte {
	dst = append(appendKey(dst, k), '[')
	for i, l := range levels {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = appendQuotedDec(dst, l.Price)
		dst = append(dst, ',')
		dst = appendQuotedDec(dst, l.Qty)
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// appendEvent opens a stream event: {"e":event,"E":eventTime.
func appendEvent(dst []byte, event string, eventTime int64) []byte {
	dst = append(dst, '{')
	dst = appendStrField(dst, "e", event)
	return appendIntField(dst, "E", eventTime)
}

// appendEventSymbol opens a trade or depthUpdate event: {"e","E", on
// USD-M the transaction time "T", then "s".
func appendEventSymbol(dst []byte, event string, eventTime, transactTime int64, symbol string, kind market.Kind) []byte {
	dst = appendEvent(dst, event, eventTime)
	if kind == market.USDM {
		dst = appendIntField(dst, "T", transactTime)
	}
	return appendStrField(dst, "s", symbol)
}

// appendAggTail appends what follows an aggregate trade's id in both the
// stream event and the REST body: "p","q","f","l","T","m", and "M":true
// on spot.
func appendAggTail(dst []byte, t *market.Trade, kind market.Kind) []byte {
	dst = appendDecField(dst, "p", t.Price)
	dst = appendDecField(dst, "q", t.Qty)
	dst = appendIntField(dst, "f", t.FirstID)
	dst = appendIntField(dst, "l", t.LastID)
	dst = appendIntField(dst, "T", t.Time)
	dst = appendBoolField(dst, "m", t.BuyerMaker)
	if kind == market.Spot {
		dst = appendBoolField(dst, "M", true)
	}
	return dst
}

// AppendAggTrade appends an aggTrade event (spot "Aggregate Trade Streams",
// USD-M "Aggregate Trade Streams"): spot
// {"e":"aggTrade","E","s","a","p","q","f","l","T","m","M":true}; USD-M puts
// "a" before "s" and has no "M".
func AppendAggTrade(dst []byte, t *market.Trade, kind market.Kind) []byte {
	dst = appendEvent(dst, "aggTrade", t.EventTime)
	if kind == market.USDM {
		dst = appendIntField(dst, "a", t.ID)
		dst = appendStrField(dst, "s", t.Symbol)
	} else {
		dst = appendStrField(dst, "s", t.Symbol)
		dst = appendIntField(dst, "a", t.ID)
	}
	dst = appendAggTail(dst, t, kind)
	return append(dst, '}')
}

// AppendTrade appends a raw trade event (spot "Trade Streams"): spot
// {"e":"trade","E","s","t","p","q","T","m","M":true}; USD-M
// {"e":"trade","E","T","s","t","p","q","X":"MARKET","m"}. The trade id is
// t.ID.
func AppendTrade(dst []byte, t *market.Trade, kind market.Kind) []byte {
	dst = appendEventSymbol(dst, "trade", t.EventTime, t.Time, t.Symbol, kind)
	dst = appendIntField(dst, "t", t.ID)
	dst = appendDecField(dst, "p", t.Price)
	dst = appendDecField(dst, "q", t.Qty)
	if kind == market.USDM {
		dst = appendStrField(dst, "X", "MARKET")
		dst = appendBoolField(dst, "m", t.BuyerMaker)
	} else {
		dst = appendIntField(dst, "T", t.Time)
		dst = appendBoolField(dst, "m", t.BuyerMaker)
		dst = appendBoolField(dst, "M", true)
	}
	return append(dst, '}')
}

// AppendDepthUpdate appends a diff-depth event (spot "Diff. Depth Stream",
// USD-M "Diff. Book Depth Streams"): spot
// {"e":"depthUpdate","E","s","U","u","b","a"}; USD-M adds "T" after "E" and
// "pu" after "u".
func AppendDepthUpdate(dst []byte, u *market.DepthUpdate, kind market.Kind) []byte {
	dst = appendEventSymbol(dst, "depthUpdate", u.EventTime, u.TransactTime, u.Symbol, kind)
	dst = appendIntField(dst, "U", u.FirstID)
	dst = appendIntField(dst, "u", u.FinalID)
	if kind == market.USDM {
		dst = appendIntField(dst, "pu", u.PrevFinalID)
	}
	dst = appendLevels(dst, "b", u.Bids)
	dst = appendLevels(dst, "a", u.Asks)
	return append(dst, '}')
}

// AppendBookTicker appends a bookTicker payload (spot "Individual Symbol
// Book Ticker Streams", USD-M "Individual Symbol Book Ticker Streams"):
// spot {"u","s","b","B","a","A"} with no "e"; USD-M
// {"e":"bookTicker","u","s","b","B","a","A","T","E"}.
func AppendBookTicker(dst []byte, t *market.BookTicker, kind market.Kind) []byte {
	dst = append(dst, '{')
	if kind == market.USDM {
		dst = appendStrField(dst, "e", "bookTicker")
	}
	dst = appendIntField(dst, "u", t.UpdateID)
	dst = appendStrField(dst, "s", t.Symbol)
	dst = appendDecField(dst, "b", t.BidPrice)
	dst = appendDecField(dst, "B", t.BidQty)
	dst = appendDecField(dst, "a", t.AskPrice)
	dst = appendDecField(dst, "A", t.AskQty)
	if kind == market.USDM {
		dst = appendIntField(dst, "T", t.TransactTime)
		dst = appendIntField(dst, "E", t.EventTime)
	}
	return append(dst, '}')
}

// AppendDepthSnapshot appends a REST depth body: spot /api/v3/depth
// {"lastUpdateId","bids","asks"}; USD-M /fapi/v1/depth adds "E" and "T".
func AppendDepthSnapshot(dst []byte, snap *market.DepthSnapshot, kind market.Kind) []byte {
	dst = append(dst, '{')
	dst = appendIntField(dst, "lastUpdateId", snap.LastUpdateID)
	if kind == market.USDM {
		dst = appendIntField(dst, "E", snap.EventTime)
		dst = appendIntField(dst, "T", snap.TransactTime)
	}
	dst = appendLevels(dst, "bids", snap.Bids)
	dst = appendLevels(dst, "asks", snap.Asks)
	return append(dst, '}')
}

// AppendAggTradesREST appends a REST aggTrades body: an array of
// {"a","p","q","f","l","T","m"} plus "M":true on spot.
func AppendAggTradesREST(dst []byte, trades []market.Trade, kind market.Kind) []byte {
	dst = append(dst, '[')
	for i := range trades {
		t := &trades[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		dst = appendIntField(dst, "a", t.ID)
		dst = appendAggTail(dst, t, kind)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// AppendCombined wraps a payload in the combined-stream envelope
// {"stream":"<name>","data":<payload>} ("Combined streams" in both markets'
// WebSocket docs). data must be one JSON value.
func AppendCombined(dst []byte, stream string, data []byte) []byte {
	dst = append(dst, `{"stream":`...)
	dst = appendString(dst, stream)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// appendRawOrNull appends raw JSON, or null if it is empty.
func appendRawOrNull(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// AppendReply appends a reply to a request ("Live Subscribing/
// Unsubscribing to streams"): {"result":<result>,"id":<id>}. id and result
// are raw JSON; empty means null (SUBSCRIBE's result).
func AppendReply(dst, id, result []byte) []byte {
	dst = append(dst, `{"result":`...)
	dst = appendRawOrNull(dst, result)
	dst = append(dst, `,"id":`...)
	dst = appendRawOrNull(dst, id)
	return append(dst, '}')
}

// AppendError appends an error reply ("Error Messages" of the WebSocket
// docs): {"error":{"code":<code>,"msg":"<msg>"},"id":<id>}; id is raw JSON,
// empty means null.
func AppendError(dst, id []byte, code int64, msg string) []byte {
	dst = append(dst, `{"error":{"code":`...)
	dst = strconv.AppendInt(dst, code, 10)
	dst = append(dst, `,"msg":`...)
	dst = appendString(dst, msg)
	dst = append(dst, `},"id":`...)
	dst = appendRawOrNull(dst, id)
	return append(dst, '}')
}

// AppendServerShutdown appends the spot serverShutdown event
// {"e":"serverShutdown","E":<ms>} that announces a planned disconnect.
func AppendServerShutdown(dst []byte, eventTime int64) []byte {
	dst = append(dst, `{"e":"serverShutdown","E":`...)
	dst = strconv.AppendInt(dst, eventTime, 10)
	return append(dst, '}')
}
