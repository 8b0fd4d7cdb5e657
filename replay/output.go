package replay

import (
	"strconv"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// writer writes the contract's JSON lines by hand: keys in the documented
// order, decimals as exact strings, one buffer reused for every line.
type writer struct {
	w interface {
		Write([]byte) (int, error)
	}
	buf       []byte
	footprint bool
	levels    []market.Level
	err       error
}

func (o *writer) flushLine() {
	o.buf = append(o.buf, '\n')
	if o.err == nil {
		_, o.err = o.w.Write(o.buf)
	}
	o.buf = o.buf[:0]
}

func appendStr(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendQuote(b, v)
}

func appendDec(b []byte, key string, d fixed.Dec) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":"`...)
	b = d.AppendText(b)
	return append(b, '"')
}

func appendText(b []byte, key string, s string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":"`...)
	b = append(b, s...)
	return append(b, '"')
}

func appendInt(b []byte, key string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendInt(b, v, 10)
}

// bar writes {"type":"bar","symbol","start","open","high","low","close",
// "volume","buy_volume","sell_volume","delta","cvd","trades"} and, with
// footprints, "footprint":[[price,buy,sell],...] and "poc".
func (o *writer) bar(symbol string, b *flow.Bar) {
	o.buf = append(o.buf, `{"type":"bar"`...)
	o.buf = appendStr(o.buf, "symbol", symbol)
	o.buf = appendInt(o.buf, "start", b.Start)
	o.buf = appendDec(o.buf, "open", b.Open)
	o.buf = appendDec(o.buf, "high", b.High)
	o.buf = appendDec(o.buf, "low", b.Low)
	o.buf = appendDec(o.buf, "close", b.Close)
	o.buf = appendText(o.buf, "volume", b.Volume.String())
	o.buf = appendText(o.buf, "buy_volume", b.BuyVolume.String())
	o.buf = appendText(o.buf, "sell_volume", b.SellVolume.String())
	o.buf = appendText(o.buf, "delta", b.Delta.String())
	o.buf = appendText(o.buf, "cvd", b.CVD.String())
	o.buf = appendInt(o.buf, "trades", b.Trades)
	if o.footprint {
		o.buf = append(o.buf, `,"footprint":[`...)
		for i, l := range b.Footprint {
			if i > 0 {
				o.buf = append(o.buf, ',')
			}
			o.buf = append(o.buf, `["`...)
			o.buf = l.Price.AppendText(o.buf)
			o.buf = append(o.buf, `","`...)
			o.buf = append(o.buf, l.BuyVolume.String()...)
			o.buf = append(o.buf, `","`...)
			o.buf = append(o.buf, l.SellVolume.String()...)
			o.buf = append(o.buf, `"]`...)
		}
		o.buf = append(o.buf, ']')
		o.buf = appendDec(o.buf, "poc", b.POC)
	}
	o.buf = append(o.buf, '}')
	o.flushLine()
}

// summary writes {"type":"summary","symbol","market","trades","buy_volume",
// "sell_volume","delta","vwap","book":{"last_update_id","bids","asks"}};
// vwap is null without trades and book is null if it never synchronized.
func (o *writer) summary(s *engine.Symbol, depth int) {
	t := s.Flow.Totals()
	o.buf = append(o.buf, `{"type":"summary"`...)
	o.buf = appendStr(o.buf, "symbol", s.Name)
	o.buf = appendStr(o.buf, "market", s.Market.String())
	o.buf = appendInt(o.buf, "trades", t.Trades)
	o.buf = appendText(o.buf, "buy_volume", t.BuyVolume.String())
	o.buf = appendText(o.buf, "sell_volume", t.SellVolume.String())
	o.buf = appendText(o.buf, "delta", t.Delta.String())
	if t.Trades > 0 {
		o.buf = appendDec(o.buf, "vwap", t.VWAP)
	} else {
		o.buf = append(o.buf, `,"vwap":null`...)
	}
	o.buf = append(o.buf, `,"book":`...)
	bk := s.Book()
	if bk == nil || !s.Synced() {
		o.buf = append(o.buf, "null"...)
	} else {
		o.buf = append(o.buf, '{')
		o.buf = strconv.AppendQuote(o.buf, "last_update_id")
		o.buf = append(o.buf, ':')
		o.buf = strconv.AppendInt(o.buf, bk.UpdateID(), 10)
		o.levels = bk.Bids(depth, o.levels[:0])
		o.buf = appendLevels(o.buf, "bids", o.levels)
		o.levels = bk.Asks(depth, o.levels[:0])
		o.buf = appendLevels(o.buf, "asks", o.levels)
		o.buf = append(o.buf, '}')
	}
	o.buf = append(o.buf, '}')
	o.flushLine()
}

func appendLevels(b []byte, key string, ls []market.Level) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `["`...)
		b = l.Price.AppendText(b)
		b = append(b, `","`...)
		b = l.Qty.AppendText(b)
		b = append(b, `"]`...)
	}
	return append(b, ']')
}
