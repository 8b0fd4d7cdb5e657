package bus

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// ContentType is the "Content-Type" header of every message: schema v1 in
// JSON. (A binary encoding was measured and not adopted; see docs/bus.md.)
const ContentType = "application/json; v=1"

// The hand-written encoders below write exactly what encoding/json writes
// for the schema types (the tests compare them byte for byte), without
// building those types: they read the engine's own market and book values,
// so publishing a trade or a delta allocates only its output.

// AppendTrade appends the JSON of a trade message.
func AppendTrade(dst []byte, k market.Kind, t *market.Trade) []byte {
	dst = appendHeader(dst, TypeTrade, k, t.Symbol, t.EventTime)
	dst = append(dst, `,"id":`...)
	dst = strconv.AppendInt(dst, t.ID, 10)
	dst = append(dst, `,"first_id":`...)
	dst = strconv.AppendInt(dst, t.FirstID, 10)
	dst = append(dst, `,"last_id":`...)
	dst = strconv.AppendInt(dst, t.LastID, 10)
	dst = append(dst, `,"price":"`...)
	dst = t.Price.AppendText(dst)
	dst = append(dst, `","qty":"`...)
	dst = t.Qty.AppendText(dst)
	if t.TakerSide() == market.Buy {
		dst = append(dst, `","side":"buy","trade_time":`...)
	} else {
		dst = append(dst, `","side":"sell","trade_time":`...)
	}
	dst = strconv.AppendInt(dst, t.Time, 10)
	return append(dst, '}')
}

// TradeMsg converts a trade to its message (for tests and the generic
// encoder; publishing uses AppendTrade).
func TradeMsg(k market.Kind, t *market.Trade) Trade {
	side := "sell"
	if t.TakerSide() == market.Buy {
		side = "buy"
	}
	return Trade{Header: header(TypeTrade, k, t.Symbol, t.EventTime), ID: t.ID, FirstID: t.FirstID, LastID: t.LastID,
		Price: t.Price, Qty: t.Qty, Side: side, TradeTime: t.Time}
}

// AppendBookDelta appends the JSON of a book.delta message. symbol is the
// book's (u.Symbol may be empty on recorded updates).
func AppendBookDelta(dst []byte, k market.Kind, symbol string, u *market.DepthUpdate) []byte {
	dst = appendHeader(dst, TypeBookDelta, k, symbol, u.EventTime)
	dst = append(dst, `,"first_update_id":`...)
	dst = strconv.AppendInt(dst, u.FirstID, 10)
	dst = append(dst, `,"last_update_id":`...)
	dst = strconv.AppendInt(dst, u.FinalID, 10)
	if u.HasPrev {
		dst = append(dst, `,"prev_update_id":`...)
		dst = strconv.AppendInt(dst, u.PrevFinalID, 10)
	}
	if u.TransactTime != 0 {
		dst = append(dst, `,"transaction_time":`...)
		dst = strconv.AppendInt(dst, u.TransactTime, 10)
	}
	dst = append(dst, `,"bids":`...)
	dst = appendLevels(dst, u.Bids)
	dst = append(dst, `,"asks":`...)
	dst = appendLevels(dst, u.Asks)
	return append(dst, '}')
}

// BookDeltaMsg converts a depth update to its message.
func BookDeltaMsg(k market.Kind, symbol string, u *market.DepthUpdate) BookDelta {
	m := BookDelta{Header: header(TypeBookDelta, k, symbol, u.EventTime), FirstUpdateID: u.FirstID,
		LastUpdateID: u.FinalID, TransactionTime: u.TransactTime, Bids: levels(u.Bids), Asks: levels(u.Asks)}
	if u.HasPrev {
		pu := u.PrevFinalID
		m.PrevUpdateID = &pu
	}
	return m
}

// AppendBookSnapshot appends the JSON of a book.snapshot message: every
// level of b, best first.
func AppendBookSnapshot(dst []byte, k market.Kind, symbol string, time int64, b *book.Book, reason string) []byte {
	dst = appendHeader(dst, TypeBookSnapshot, k, symbol, time)
	dst = append(dst, `,"last_update_id":`...)
	dst = strconv.AppendInt(dst, b.UpdateID(), 10)
	dst = append(dst, `,"bids":`...)
	dst = appendSide(dst, b, market.Buy, 0)
	dst = append(dst, `,"asks":`...)
	dst = appendSide(dst, b, market.Sell, 0)
	lo, hi := b.KnownRange()
	dst = append(dst, `,"known_bid_floor":"`...)
	dst = lo.AppendText(dst)
	dst = append(dst, `","known_ask_ceiling":"`...)
	dst = hi.AppendText(dst)
	dst = append(dst, `","reason":`...)
	dst = appendString(dst, reason)
	return append(dst, '}')
}

// BookSnapshotMsg converts a book to its snapshot message.
func BookSnapshotMsg(k market.Kind, symbol string, time int64, b *book.Book, reason string) BookSnapshot {
	lo, hi := b.KnownRange()
	return BookSnapshot{Header: header(TypeBookSnapshot, k, symbol, time), LastUpdateID: b.UpdateID(),
		Bids: sideLevels(b.Bids(0, nil)), Asks: sideLevels(b.Asks(0, nil)), KnownBidFloor: lo, KnownAskCeiling: hi, Reason: reason}
}

// AppendBookTop appends the JSON of a book.top message: the best n levels
// of each side.
func AppendBookTop(dst []byte, k market.Kind, symbol string, time int64, b *book.Book, n int) []byte {
	dst = appendHeader(dst, TypeBookTop, k, symbol, time)
	dst = append(dst, `,"last_update_id":`...)
	dst = strconv.AppendInt(dst, b.UpdateID(), 10)
	dst = append(dst, `,"bids":`...)
	dst = appendSide(dst, b, market.Buy, n)
	dst = append(dst, `,"asks":`...)
	dst = appendSide(dst, b, market.Sell, n)
	return append(dst, '}')
}

// BookTopMsg converts the best n levels of a book to a book.top message.
func BookTopMsg(k market.Kind, symbol string, time int64, b *book.Book, n int) BookTop {
	return BookTop{Header: header(TypeBookTop, k, symbol, time), LastUpdateID: b.UpdateID(),
		Bids: sideLevels(b.Bids(n, nil)), Asks: sideLevels(b.Asks(n, nil))}
}

// Encode writes any schema message with encoding/json (bars, large trades
// and signals are published this way; they are rare).
func Encode(m any) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("bus: encode %T: %w", m, err)
	}
	return b, nil
}

func header(typ string, k market.Kind, symbol string, time int64) Header {
	return Header{V: SchemaVersion, Type: typ, Market: k.String(), Symbol: symbol, Time: time}
}

func appendHeader(dst []byte, typ string, k market.Kind, symbol string, time int64) []byte {
	dst = append(dst, `{"v":1,"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","market":"`...)
	dst = append(dst, k.String()...)
	dst = append(dst, `","symbol":`...)
	dst = appendString(dst, symbol)
	dst = append(dst, `,"time":`...)
	return strconv.AppendInt(dst, time, 10)
}

// appendString writes s as a JSON string; symbols are plain [A-Z0-9], the
// rest goes through encoding/json so the escaping is the same.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendLevels(dst []byte, ls []market.Level) []byte {
	if ls == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i := range ls {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendLevel(dst, ls[i].Price, ls[i].Qty)
	}
	return append(dst, ']')
}

func appendLevel(dst []byte, p, q fixed.Dec) []byte {
	dst = append(dst, `["`...)
	dst = p.AppendText(dst)
	dst = append(dst, `","`...)
	dst = q.AppendText(dst)
	return append(dst, `"]`...)
}

// appendSide writes the best n levels (all when n <= 0) of a side, best
// first, as a JSON array (never null).
func appendSide(dst []byte, b *book.Book, side market.Side, n int) []byte {
	dst = append(dst, '[')
	i := 0
	for l := range b.Levels(side) {
		if n > 0 && i == n {
			break
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendLevel(dst, l.Price, l.Qty)
		i++
	}
	return append(dst, ']')
}

func levels(ls []market.Level) []Level {
	if ls == nil {
		return nil
	}
	out := make([]Level, len(ls))
	for i, l := range ls {
		out[i] = Level{l.Price, l.Qty}
	}
	return out
}

// sideLevels is levels for a book side, written [] when empty.
func sideLevels(ls []market.Level) []Level {
	if ls == nil {
		return []Level{}
	}
	return levels(ls)
}
