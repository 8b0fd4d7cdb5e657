package binance

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// DecodeDepthSnapshot decodes a REST order book body into snap, reusing its
// Bids and Asks. It reads spot GET /api/v3/depth ({"lastUpdateId","bids",
// "asks"}) and USD-M GET /fapi/v1/depth, which adds "E" and "T" (spot REST
// API "Order book"; USD-M REST "Order Book"). snap.Symbol is left as the
// caller set it: the body does not name the symbol. An error body
// ({"code":..,"msg":..}) returns an *APIError.
//
// The body can hold 5000 levels a side, so it is scanned like a frame: once
// snap's slices have grown, decoding allocates nothing.
func DecodeDepthSnapshot(body []byte, snap *market.DepthSnapshot) error {
	if err := decodeDepthSnapshot(body, snap); err != nil {
		return withKind(err, "depthSnapshot")
	}
	return nil
}

func decodeDepthSnapshot(body []byte, snap *market.DepthSnapshot) error {
	snap.LastUpdateID, snap.EventTime, snap.TransactTime = 0, 0, 0
	snap.Bids, snap.Asks = snap.Bids[:0], snap.Asks[:0]
	s := scanner{b: body}
	c, ok := s.peek()
	if !ok {
		return s.eof()
	}
	if c != '{' {
		return typeErr(s.i, "object", c)
	}
	off := s.i
	empty, err := s.open('{', '}', "'{'")
	if err != nil {
		return err
	}
	const (
		hLast = 1 << iota
		hBids
		hAsks
		hCode
		hMsg
	)
	var (
		has     uint8
		v       val
		code    int64
		msg     string
		scratch []byte
	)
	for !empty {
		k, esc, err := s.key()
		if err != nil {
			return err
		}
		if esc {
			k = unescape(nil, k)
		}
		var ferr error
		switch string(k) {
		case "bids":
			snap.Bids, ferr = s.levels(snap.Bids[:0], &scratch)
			has |= hBids
		case "asks":
			snap.Asks, ferr = s.levels(snap.Asks[:0], &scratch)
			has |= hAsks
		case "lastUpdateId", "E", "T", "code":
			if ferr = s.value(&v); ferr != nil {
				break
			}
			var n int64
			if n, ferr = text(s.b).int(&v); ferr != nil {
				break
			}
			switch string(k) {
			case "lastUpdateId":
				snap.LastUpdateID = n
				has |= hLast
			case "E":
				snap.EventTime = n
			case "T":
				snap.TransactTime = n
			default:
				code = n
				has |= hCode
			}
		case "msg":
			if ferr = s.value(&v); ferr == nil {
				if v.typ != '"' {
					ferr = typeErr(v.off, "string", v.typ)
				} else {
					msg = string(text(s.b).str(&v, &scratch)) // only error bodies have one
					has |= hMsg
				}
			}
		default:
			ferr = s.skip(1)
		}
		if ferr != nil {
			return withField(ferr, quoteKey(k))
		}
		more, err := s.next('}')
		if err != nil {
			return err
		}
		empty = !more
	}
	if err := s.end(); err != nil {
		return err
	}
	if has&hCode != 0 && has&hLast == 0 {
		return &APIError{Code: code, Msg: msg}
	}
	if has&(hLast|hBids|hAsks) != hLast|hBids|hAsks {
		var names []string
		for _, f := range []struct {
			bit  uint8
			name string
		}{{hLast, `"lastUpdateId"`}, {hBids, `"bids"`}, {hAsks, `"asks"`}} {
			if has&f.bit == 0 {
				names = append(names, f.name)
			}
		}
		return &DecodeError{Field: strings.Join(names, ", "), Offset: off, Err: ErrMissingField}
	}
	return nil
}

// DecodeAggTrades decodes a REST aggregate trades body, spot GET
// /api/v3/aggTrades or USD-M GET /fapi/v1/aggTrades ("Compressed/Aggregate
// Trades List": [{"a","p","q","f","l","T","m"} plus "M" on spot]), and
// appends the trades to dst (pass dst[:0] to reuse it). Every trade gets
// Symbol = symbol and Aggregated = true; EventTime stays 0, as the REST
// body has no event time. An error body returns an *APIError.
func DecodeAggTrades(body []byte, symbol string, dst []market.Trade) ([]market.Trade, error) {
	out, err := decodeAggTrades(body, symbol, dst)
	if err != nil {
		return out, withKind(err, "aggTrades")
	}
	return out, nil
}

func decodeAggTrades(body []byte, symbol string, dst []market.Trade) ([]market.Trade, error) {
	s := scanner{b: body}
	c, ok := s.peek()
	if !ok {
		return dst, s.eof()
	}
	if c == '{' {
		off := s.i
		var scratch []byte
		code, msg, err := codeMsg(&s, &scratch)
		if err != nil {
			return dst, typeErr(off, "array", '{')
		}
		if err := s.end(); err != nil {
			return dst, err
		}
		return dst, &APIError{Code: code, Msg: string(msg)}
	}
	if c != '[' {
		return dst, typeErr(s.i, "array", c)
	}
	empty, err := s.open('[', ']', "'['")
	if err != nil {
		return dst, err
	}
	var (
		o       object
		scratch []byte
	)
	for n := 0; !empty; n++ {
		t, err := aggTradeREST(&s, &o, &scratch)
		if err != nil {
			return dst, withField(err, fmt.Sprintf("[%d]", n))
		}
		t.Symbol = symbol
		dst = append(dst, t)
		more, err := s.next(']')
		if err != nil {
			return dst, err
		}
		empty = !more
	}
	return dst, s.end()
}

// reqAggTradeREST: the REST aggTrade object has no "e", "E" or "s".
const reqAggTradeREST = 1<<fa | 1<<fp | 1<<fq | 1<<ff | 1<<fl | 1<<fT | 1<<fm

// aggTradeREST scans one object of a REST aggTrades list.
func aggTradeREST(s *scanner, o *object, scratch *[]byte) (market.Trade, error) {
	c, ok := s.peek()
	if !ok {
		return market.Trade{}, s.eof()
	}
	if c != '{' {
		return market.Trade{}, typeErr(s.i, "object", c)
	}
	o.reset(s.i)
	empty, err := s.open('{', '}', "'{'")
	if err != nil {
		return market.Trade{}, err
	}
	for !empty {
		k, esc, err := s.key()
		if err != nil {
			return market.Trade{}, err
		}
		if esc {
			k = unescape(nil, k)
		}
		f := fieldIndex(k)
		if f < 0 {
			if err := s.skip(2); err != nil {
				return market.Trade{}, withField(err, quoteKey(k))
			}
		} else {
			if err := s.value(&o.v[f]); err != nil {
				return market.Trade{}, withField(err, fieldPath[f])
			}
			o.has |= bit(f)
		}
		more, err := s.next('}')
		if err != nil {
			return market.Trade{}, err
		}
		empty = !more
	}
	if err := o.require(reqAggTradeREST); err != nil {
		return market.Trade{}, err
	}
	var ferr error
	r := fieldReader{b: s.b, o: o, scratch: scratch, err: &ferr}
	t := market.Trade{
		ID:         r.int(fa),
		Price:      r.dec(fp),
		Qty:        r.dec(fq),
		FirstID:    r.int(ff),
		LastID:     r.int(fl),
		Time:       r.int(fT),
		BuyerMaker: r.bool(fm),
		Aggregated: true,
	}
	return t, ferr
}

// ExchangeInfo is the part of GET /api/v3/exchangeInfo (spot) and GET
// /fapi/v1/exchangeInfo (USD-M) that orderflow reads: the published rate
// limits and each symbol's status, assets and price/quantity filters
// (spot "Filters" page: PRICE_FILTER has tickSize, LOT_SIZE has stepSize).
type ExchangeInfo struct {
	Timezone   string       `json:"timezone"`
	ServerTime int64        `json:"serverTime"`
	RateLimits []RateLimit  `json:"rateLimits"`
	Symbols    []SymbolInfo `json:"symbols"`

	index map[string]int // symbol -> position in Symbols
}

// RateLimit is one entry of exchangeInfo's rateLimits, e.g.
// {"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000}.
type RateLimit struct {
	RateLimitType string `json:"rateLimitType"`
	Interval      string `json:"interval"`
	IntervalNum   int    `json:"intervalNum"`
	Limit         int    `json:"limit"`
}

// SymbolInfo is one symbol of exchangeInfo.
type SymbolInfo struct {
	Symbol     string   `json:"symbol"`
	Status     string   `json:"status"`
	BaseAsset  string   `json:"baseAsset"`
	QuoteAsset string   `json:"quoteAsset"`
	Filters    []Filter `json:"filters"`
}

// Filter is one symbol filter. Only the price and quantity fields are kept;
// a field a filter type does not carry stays 0.
type Filter struct {
	FilterType string    `json:"filterType"`
	TickSize   fixed.Dec `json:"tickSize"`
	StepSize   fixed.Dec `json:"stepSize"`
	MinPrice   fixed.Dec `json:"minPrice"`
	MaxPrice   fixed.Dec `json:"maxPrice"`
	MinQty     fixed.Dec `json:"minQty"`
	MaxQty     fixed.Dec `json:"maxQty"`
}

// DecodeExchangeInfo decodes an exchangeInfo body (encoding/json: it is read
// once at start-up, not on the hot path). An error body returns an
// *APIError.
func DecodeExchangeInfo(body []byte) (*ExchangeInfo, error) {
	var w struct {
		ExchangeInfo
		Code *int64 `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("binance: decode exchangeInfo: %w", err)
	}
	if w.Code != nil && w.Symbols == nil {
		return nil, &APIError{Code: *w.Code, Msg: w.Msg}
	}
	info := w.ExchangeInfo
	info.index = make(map[string]int, len(info.Symbols))
	for i := range info.Symbols {
		info.index[info.Symbols[i].Symbol] = i
	}
	return &info, nil
}

// Symbol returns the named symbol's info; the name is matched without
// regard to case ("btcusdt" finds BTCUSDT).
func (e *ExchangeInfo) Symbol(name string) (*SymbolInfo, bool) {
	if i, ok := e.index[name]; ok {
		return &e.Symbols[i], true
	}
	for i := range e.Symbols {
		if strings.EqualFold(e.Symbols[i].Symbol, name) {
			return &e.Symbols[i], true
		}
	}
	return nil, false
}

// filter returns the first filter of the given type.
func (s SymbolInfo) filter(typ string) (Filter, bool) {
	for _, f := range s.Filters {
		if f.FilterType == typ {
			return f, true
		}
	}
	return Filter{}, false
}

// TickSize is the PRICE_FILTER tick size, 0 if the symbol has none.
func (s SymbolInfo) TickSize() fixed.Dec {
	f, _ := s.filter("PRICE_FILTER")
	return f.TickSize
}

// StepSize is the LOT_SIZE step size, 0 if the symbol has none.
func (s SymbolInfo) StepSize() fixed.Dec {
	f, _ := s.filter("LOT_SIZE")
	return f.StepSize
}
