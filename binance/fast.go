package binance

import "github.com/orderflow/orderflow/fixed"

// The whole-frame fast path.
//
// Almost every frame of a market-data connection is one of four events,
// written by Binance the same way every time: a combined-stream envelope
// (or a raw object), no whitespace, one-letter keys, plain strings, and the
// event's kind in its first key ("e", or "u" for a spot bookTicker). fast
// reads such a frame in one pass, straight into the Message, with no
// recorded spans and no second interpretation step.
//
// It accepts a strict subset of what the general path accepts: on anything
// it does not expect (whitespace, an escape, a key out of place, a
// duplicate, a container where a scalar belongs, a number that does not
// fit, a kind other than the four) it reports false, and Decode runs the
// general path from the start, which then either decodes the frame or
// reports the error. The values it reads are parsed by the same functions
// the general path uses (parseInt, fixed.Parse, scanner.levels,
// scanner.num, intern), so a frame both accept gives the same Message.
// FuzzFastMatchesGeneral checks exactly that on mutated real frames.

const (
	envOpen = `{"stream":"`
	envData = `","data":{`
)

// fast decodes frame into m when frame is written as Binance writes its
// events, and reports whether it did. On false, m holds a partial result
// and the caller must decode frame with the general path.
func (d *Decoder) fast(b []byte, m *Message) bool {
	bids, asks := m.Depth.Bids[:0], m.Depth.Asks[:0]
	*m = Message{}
	m.Depth.Bids, m.Depth.Asks = bids, asks

	i, env := 0, false
	var stream []byte
	switch {
	case len(b) > len(envOpen) && string(b[:len(envOpen)]) == envOpen:
		e, ok := plainEnd(b, len(envOpen))
		if !ok || len(b)-e < len(envData) || string(b[e:e+len(envData)]) != envData {
			return false
		}
		stream, env, i = b[len(envOpen):e], true, e+len(envData)
	case len(b) > 0 && b[0] == '{':
		i = 1
	default:
		return false
	}

	// The first key gives the kind.
	var kind Kind
	var has uint32
	switch {
	case len(b)-i >= 6 && string(b[i:i+5]) == `"e":"`:
		e, ok := plainEnd(b, i+5)
		if !ok {
			return false
		}
		switch string(b[i+5 : e]) {
		case "trade":
			kind = KindTrade
		case "aggTrade":
			kind = KindAggTrade
		case "depthUpdate":
			kind = KindDepthUpdate
		case "bookTicker":
			kind = KindBookTicker
		default:
			return false
		}
		m.Event = kind.String()
		has, i = bit(fe), e+1
	case len(b)-i >= 4 && string(b[i:i+4]) == `"u":`:
		kind, has, i = KindBookTicker, bit(fu), i+4
		id, next, ok := fastInt(b, i)
		if !ok {
			return false
		}
		m.Ticker.UpdateID, i = id, next
	default:
		return false
	}

	var dst fastDst
	dst.set(kind, m)
	for {
		// The separator after the previous member.
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			i++
			break
		}
		if b[i] != ',' {
			return false
		}
		i++
		// The key: one letter, or "pu".
		f := -1
		switch {
		case len(b)-i >= 4 && b[i] == '"' && b[i+2] == '"' && b[i+3] == ':':
			c := b[i+1]
			if c < 0x20 || c == '\\' || c == '"' {
				return false
			}
			f = fieldIndex(b[i+1 : i+2])
			i += 4
		case len(b)-i >= 5 && string(b[i:i+5]) == `"pu":`:
			f = fpu
			i += 5
		default:
			return false
		}
		if f == fe {
			return false // "e" after the first key: the general path decides
		}
		if f >= 0 {
			if has&bit(f) != 0 {
				return false // a duplicate: the general path keeps the last
			}
			has |= bit(f)
		}
		op := opSkip
		if f >= 0 {
			op = dst.ops[f]
		}
		var ok bool
		if i, ok = d.fastField(b, i, op, &dst, m); !ok {
			return false
		}
	}
	if env {
		if i >= len(b) || b[i] != '}' {
			return false
		}
		i++
	}
	if i != len(b) {
		return false
	}

	m.Kind = kind
	switch kind {
	case KindTrade, KindAggTrade:
		req := uint32(reqTrade)
		if kind == KindAggTrade {
			req = reqAggTrade
		}
		if has&req != req {
			return false
		}
		t := &m.Trade
		t.Aggregated = kind == KindAggTrade
		if !t.Aggregated {
			t.FirstID, t.LastID = t.ID, t.ID
		}
		m.EventTime = t.EventTime
	case KindDepthUpdate:
		if has&reqDepth != reqDepth {
			return false
		}
		m.Depth.HasPrev = has&bit(fpu) != 0
		m.EventTime = m.Depth.EventTime
	default:
		if has&reqBookTicker != reqBookTicker {
			return false
		}
		m.EventTime = m.Ticker.EventTime
	}
	if env {
		m.Stream = d.intern(stream)
	}
	return true
}

// A fastOp says how the fast path reads the value of one field of an
// event and where it goes: opInt+k and opDec+k are the k-th integer and
// decimal destinations of the kind (fastDst).
type fastOp uint8

const (
	opSkip fastOp      = iota // a field the kind does not use
	opSym                     // the symbol
	opBool                    // buyer is maker
	opBids                    // depth bids
	opAsks                    // depth asks
	opInt                     // opInt+k: ints[k]
	opDec  = opInt + 5        // opDec+k: decs[k]
)

// Each kind's fields, by field slot; a slot left out is skipped. "a" and
// "b" mean different things per kind: a trade's "a" (old spot seller
// order id) is skipped, an aggTrade's is its id.
var (
	tradeOps = [nFields]fastOp{fE: opInt, fT: opInt + 1, ft: opInt + 2,
		fs: opSym, fp: opDec, fq: opDec + 1, fm: opBool}
	aggTradeOps = [nFields]fastOp{fE: opInt, fT: opInt + 1, fa: opInt + 2, ff: opInt + 3, fl: opInt + 4,
		fs: opSym, fp: opDec, fq: opDec + 1, fm: opBool}
	depthOps = [nFields]fastOp{fE: opInt, fT: opInt + 1, fU: opInt + 2, fu: opInt + 3, fpu: opInt + 4,
		fs: opSym, fb: opBids, fa: opAsks}
	tickerOps = [nFields]fastOp{fu: opInt, fE: opInt + 1, fT: opInt + 2,
		fs: opSym, fb: opDec, fB: opDec + 1, fa: opDec + 2, fA: opDec + 3}
)

// fastDst is where the fields of one event go: the kind's ops and the
// Message fields its integer and decimal ops name.
type fastDst struct {
	ops  *[nFields]fastOp
	ints [5]*int64
	decs [4]*fixed.Dec
	sym  *string
	flag *bool
}

// set points dst at m's fields for kind, in the order of the kind's ops.
func (dst *fastDst) set(kind Kind, m *Message) {
	switch kind {
	case KindTrade, KindAggTrade:
		t := &m.Trade
		dst.ops = &tradeOps
		if kind == KindAggTrade {
			dst.ops = &aggTradeOps
		}
		dst.ints = [5]*int64{&t.EventTime, &t.Time, &t.ID, &t.FirstID, &t.LastID}
		dst.decs = [4]*fixed.Dec{&t.Price, &t.Qty}
		dst.sym, dst.flag = &t.Symbol, &t.BuyerMaker
	case KindDepthUpdate:
		u := &m.Depth
		dst.ops = &depthOps
		dst.ints = [5]*int64{&u.EventTime, &u.TransactTime, &u.FirstID, &u.FinalID, &u.PrevFinalID}
		dst.sym = &u.Symbol
	default:
		t := &m.Ticker
		dst.ops = &tickerOps
		dst.ints = [5]*int64{&t.UpdateID, &t.EventTime, &t.TransactTime}
		dst.decs = [4]*fixed.Dec{&t.BidPrice, &t.BidQty, &t.AskPrice, &t.AskQty}
		dst.sym = &t.Symbol
	}
}

// fastField reads the value at b[i] as op says, into dst (or m's depth
// sides).
func (d *Decoder) fastField(b []byte, i int, op fastOp, dst *fastDst, m *Message) (int, bool) {
	ok := true
	switch {
	case op >= opDec:
		*dst.decs[op-opDec], i, ok = fastDec(b, i)
	case op >= opInt:
		*dst.ints[op-opInt], i, ok = fastInt(b, i)
	case op == opSym:
		*dst.sym, i, ok = d.fastSym(b, i)
	case op == opBool:
		*dst.flag, i, ok = fastBool(b, i)
	case op == opBids, op == opAsks:
		if i >= len(b) || b[i] != '[' {
			return i, false
		}
		s := scanner{b: b, i: i}
		var err error
		if op == opBids {
			m.Depth.Bids, err = s.levels(m.Depth.Bids[:0], &d.scratch)
		} else {
			m.Depth.Asks, err = s.levels(m.Depth.Asks[:0], &d.scratch)
		}
		i, ok = s.i, err == nil
	default:
		i, ok = skipSimple(b, i)
	}
	return i, ok
}

// fastInt reads a JSON integer at b[i] that fits an int64, and returns the
// index after it. A fraction or exponent is refused by the caller's
// separator test, as the general path refuses it as a type error.
func fastInt(b []byte, i int) (int64, int, bool) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	d0 := i
	var u uint64
	for i < len(b) {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		u = u*10 + uint64(c) // wraps past 19 digits, which take parseInt below
		i++
	}
	n := i - d0
	if n == 0 || (b[d0] == '0' && n > 1) {
		return 0, i, false
	}
	if n > 18 {
		v, err := parseInt(b[start:i])
		return v, i, err == nil
	}
	if d0 != start {
		return -int64(u), i, true
	}
	return int64(u), i, true
}

// fastStr returns the content of a plain string at b[i] (no escape, no
// control character) and the index after its closing quote.
func fastStr(b []byte, i int) (start, end, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, i, false
	}
	e, ok := plainEnd(b, i+1)
	return i + 1, e, e + 1, ok
}

// fastDec reads a decimal written as a plain string.
func fastDec(b []byte, i int) (fixed.Dec, int, bool) {
	s, e, next, ok := fastStr(b, i)
	if !ok {
		return 0, i, false
	}
	v, err := fixed.Parse(b[s:e])
	return v, next, err == nil
}

// fastSym reads a plain string, interned.
func (d *Decoder) fastSym(b []byte, i int) (string, int, bool) {
	s, e, next, ok := fastStr(b, i)
	if !ok {
		return "", i, false
	}
	return d.intern(b[s:e]), next, true
}

// fastBool reads true or false.
func fastBool(b []byte, i int) (bool, int, bool) {
	switch {
	case len(b)-i >= 4 && string(b[i:i+4]) == "true":
		return true, i + 4, true
	case len(b)-i >= 5 && string(b[i:i+5]) == "false":
		return false, i + 5, true
	}
	return false, i, false
}

// skipSimple passes over a value the event does not use: a plain string, a
// number or a literal. A container or an escaped string is left to the
// general path.
func skipSimple(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		_, _, next, ok := fastStr(b, i)
		return next, ok
	case c == 't', c == 'f', c == 'n':
		s := scanner{b: b, i: i}
		word := "null"
		if c == 't' {
			word = "true"
		} else if c == 'f' {
			word = "false"
		}
		err := s.lit(word)
		return s.i, err == nil
	case c == '-' || c-'0' <= 9:
		s := scanner{b: b, i: i}
		_, _, _, err := s.num()
		return s.i, err == nil
	}
	return i, false
}
