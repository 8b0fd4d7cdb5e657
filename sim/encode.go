package sim

import (
	"strconv"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// shift moves one replay round past the previous one: times and every id
// space advance so that ids stay strictly increasing across rounds.
type shift struct {
	t, depth, trade, agg int64
}

// enc writes frames in Binance's field order for one symbol name (a fanout
// copy has its own name) with the recording's decimal widths, so a frame of
// round 0 carries the same values, written the same way, as the recorded one.
type enc struct {
	kind   market.Kind
	sym    string
	pw, qw int
}

// appendDec writes d with at least w fractional digits ("61737.63000000").
func appendDec(dst []byte, d fixed.Dec, w int) []byte {
	start := len(dst)
	dst = d.AppendText(dst)
	n, dot := 0, false
	for i := start; i < len(dst); i++ {
		if dot {
			n++
		} else if dst[i] == '.' {
			dot = true
		}
	}
	if !dot && w > 0 {
		dst = append(dst, '.')
	}
	for ; n < w; n++ {
		dst = append(dst, '0')
	}
	return dst
}

func (e *enc) str(dst []byte, key string, d fixed.Dec, w int) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, `":"`...)
	dst = appendDec(dst, d, w)
	return append(dst, '"')
}

func num(dst []byte, key string, v int64) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	return strconv.AppendInt(dst, v, 10)
}

func (e *enc) symField(dst []byte) []byte {
	dst = append(dst, `,"s":"`...)
	dst = append(dst, e.sym...)
	return append(dst, '"')
}

func boolField(dst []byte, key string, v bool) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	return strconv.AppendBool(dst, v)
}

func (e *enc) levels(dst []byte, ls []market.Level) []byte {
	dst = append(dst, '[')
	for i, l := range ls {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `["`...)
		dst = appendDec(dst, l.Price, e.pw)
		dst = append(dst, `","`...)
		dst = appendDec(dst, l.Qty, e.qw)
		dst = append(dst, `"]`...)
	}
	return append(dst, ']')
}

// depth writes a depthUpdate event.
func (e *enc) depth(dst []byte, ev *depthEv, sh shift) []byte {
	dst = append(dst, `{"e":"depthUpdate"`...)
	dst = num(dst, "E", ev.E+sh.t)
	if e.kind == market.USDM {
		dst = num(dst, "T", ev.T+sh.t)
	}
	dst = e.symField(dst)
	dst = num(dst, "U", ev.U+sh.depth)
	dst = num(dst, "u", ev.u+sh.depth)
	if e.kind == market.USDM {
		dst = num(dst, "pu", ev.pu+sh.depth)
	}
	dst = append(dst, `,"b":`...)
	dst = e.levels(dst, ev.bids)
	dst = append(dst, `,"a":`...)
	dst = e.levels(dst, ev.asks)
	return append(dst, '}')
}

// trade writes a raw trade event.
func (e *enc) trade(dst []byte, ev *tradeEv, sh shift) []byte {
	dst = append(dst, `{"e":"trade"`...)
	dst = num(dst, "E", ev.E+sh.t)
	if e.kind == market.USDM {
		dst = num(dst, "T", ev.T+sh.t)
	}
	dst = e.symField(dst)
	dst = num(dst, "t", ev.id+sh.trade)
	dst = e.str(dst, "p", ev.p, e.pw)
	dst = e.str(dst, "q", ev.q, e.qw)
	if e.kind == market.USDM {
		dst = append(dst, `,"X":"MARKET"`...)
	} else {
		dst = num(dst, "T", ev.T+sh.t)
	}
	dst = boolField(dst, "m", ev.m)
	if e.kind == market.Spot {
		dst = append(dst, `,"M":true`...)
	}
	return append(dst, '}')
}

// aggBody writes the fields an aggTrade event and a REST aggTrades entry
// share, from "a" on.
func (e *enc) aggBody(dst []byte, ev *aggEv, sh shift) []byte {
	dst = num(dst, "a", ev.id+sh.agg)
	dst = e.str(dst, "p", ev.p, e.pw)
	dst = e.str(dst, "q", ev.q, e.qw)
	dst = num(dst, "f", ev.f+sh.trade)
	dst = num(dst, "l", ev.l+sh.trade)
	dst = num(dst, "T", ev.T+sh.t)
	dst = boolField(dst, "m", ev.m)
	if e.kind == market.Spot {
		dst = append(dst, `,"M":true`...)
	}
	return dst
}

// aggTrade writes an aggTrade event.
func (e *enc) aggTrade(dst []byte, ev *aggEv, sh shift) []byte {
	dst = append(dst, `{"e":"aggTrade"`...)
	dst = num(dst, "E", ev.E+sh.t)
	dst = e.symField(dst)
	dst = e.aggBody(dst, ev, sh)
	return append(dst, '}')
}

// aggREST writes one entry of a REST aggTrades list (no e, E, s).
func (e *enc) aggREST(dst []byte, ev *aggEv) []byte {
	start := len(dst)
	dst = e.aggBody(dst, ev, shift{})
	dst[start] = '{' // aggBody starts with the separating comma
	return append(dst, '}')
}

// ticker writes a bookTicker event (spot frames carry no e, E, T).
func (e *enc) ticker(dst []byte, ev *tickerEv, sh shift) []byte {
	if e.kind == market.USDM {
		dst = append(dst, `{"e":"bookTicker"`...)
		dst = num(dst, "u", ev.u+sh.depth)
	} else {
		dst = append(dst, `{"u":`...)
		dst = strconv.AppendInt(dst, ev.u+sh.depth, 10)
	}
	dst = e.symField(dst)
	dst = e.str(dst, "b", ev.bp, e.pw)
	dst = e.str(dst, "B", ev.bq, e.qw)
	dst = e.str(dst, "a", ev.ap, e.pw)
	dst = e.str(dst, "A", ev.aq, e.qw)
	if e.kind == market.USDM {
		dst = num(dst, "T", ev.T+sh.t)
		dst = num(dst, "E", ev.E+sh.t)
	}
	return append(dst, '}')
}

// snapshot writes a REST depth body.
func (e *enc) snapshot(dst []byte, lastID, eventT, transactT int64, bids, asks []market.Level) []byte {
	dst = append(dst, `{"lastUpdateId":`...)
	dst = strconv.AppendInt(dst, lastID, 10)
	if e.kind == market.USDM {
		dst = num(dst, "E", eventT)
		dst = num(dst, "T", transactT)
	}
	dst = append(dst, `,"bids":`...)
	dst = e.levels(dst, bids)
	dst = append(dst, `,"asks":`...)
	dst = e.levels(dst, asks)
	return append(dst, '}')
}

// wrap writes a combined-stream envelope around an event.
func wrap(dst []byte, stream string, data []byte) []byte {
	dst = append(dst, `{"stream":"`...)
	dst = append(dst, stream...)
	dst = append(dst, `","data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}
