package capture

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// visionReader reads data.binance.vision aggTrades CSV files and turns each
// row into the combined-stream aggTrade frame Binance would have sent, so
// the rest of the pipeline needs no CSV path.
//
// Spot files are headerless with 8 columns (the last is is_best_match),
// booleans True/False, and microsecond times from 2025 on (milliseconds
// before). USD-M files have 7 columns, millisecond times, lowercase
// booleans, and (since about 2022) a header row. The column count decides
// the market; the magnitude of each time decides its unit.
type visionReader struct {
	textReader

	symbol  string // "BTCUSDT"
	cols    int    // 7 (USD-M) or 8 (spot); 0 until the first row
	mkt     market.Kind
	prefix  []byte // `{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":`
	symPart []byte // `,"s":"BTCUSDT","a":`
	buf     []byte
}

// Column names of the USD-M header row (spot adds is_best_match).
var visionHeader = []string{"agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker", "is_best_match"}

func newVisionReader(src *source, maxLine int, symbol string) (*visionReader, error) {
	sym := symbol
	if sym == "" {
		sym = symbolFromName(baseName(src.name))
		if sym == "" {
			return nil, fmt.Errorf("capture: %s: no symbol for the CSV rows: name the file SYMBOL-aggTrades-DATE.csv or set OpenOptions.Symbol", src.name)
		}
	}
	var in interner
	s, ok := in.upper([]byte(sym))
	if !ok {
		return nil, fmt.Errorf("capture: %s: symbol %q: want letters and digits only", src.name, sym)
	}
	r := &visionReader{textReader: newTextReader(src, maxLine), symbol: s}
	r.prefix = fmt.Appendf(nil, `{"stream":"%s@aggTrade","data":{"e":"aggTrade","E":`, strings.ToLower(s))
	r.symPart = fmt.Appendf(nil, `,"s":"%s","a":`, s)
	return r, nil
}

// symbolFromName finds the symbol in "BTCUSDT-aggTrades-2026-01-01.csv" or
// "vision-spot-btcusdt-aggTrades-2026-01-01-first5000.csv".
func symbolFromName(name string) string {
	i := strings.Index(name, "-aggTrades")
	if i <= 0 {
		return ""
	}
	return name[strings.LastIndexByte(name[:i], '-')+1 : i]
}

// Next implements Reader.
func (r *visionReader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		ln, err := r.lr.next()
		blank, err := r.count(ln, err)
		if err != nil {
			return nil, err
		}
		if blank {
			r.stats.Skipped++
			continue
		}
		if bytes.HasPrefix(ln.b, []byte("agg_trade_id")) {
			if err := r.header(ln); err != nil {
				r.stats.Errors++
				return nil, err
			}
			r.stats.Skipped++
			continue
		}
		if err := r.row(ln.b); err != nil {
			return nil, r.bad(ln, err)
		}
		r.stats.Records++
		return &r.rec, nil
	}
}

func (r *visionReader) header(ln textLine) error {
	fail := func(err error) error {
		return &LineError{Name: r.src.name, Line: ln.no, Offset: ln.off, Err: err}
	}
	if r.cols != 0 {
		return fail(errors.New("header row after data rows"))
	}
	names := strings.Split(string(ln.b), ",")
	if len(names) != 7 && len(names) != 8 {
		return fail(fmt.Errorf("header has %d columns, want 7 (USD-M) or 8 (spot)", len(names)))
	}
	for i, n := range names {
		if n != visionHeader[i] && !(i == 5 && n == "transact_time_us") {
			return fail(fmt.Errorf("header column %d is %q, want %q", i+1, n, visionHeader[i]))
		}
	}
	r.setCols(len(names))
	return nil
}

func (r *visionReader) setCols(n int) {
	r.cols = n
	r.mkt = market.Spot
	if n == 7 {
		r.mkt = market.USDM
	}
}

var visionField = [8]string{"agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker", "is_best_match"}

// row validates one CSV row and builds its aggTrade frame into r.rec.
func (r *visionReader) row(b []byte) error {
	var f [8][]byte
	n := 0
	for {
		i := bytes.IndexByte(b, ',')
		if n == len(f) {
			return fmt.Errorf("more than %d columns", len(f))
		}
		if i < 0 {
			f[n] = b
			n++
			break
		}
		f[n] = b[:i]
		n++
		b = b[i+1:]
	}
	if r.cols == 0 {
		if n != 7 && n != 8 {
			return fmt.Errorf("%d columns, want 7 (USD-M) or 8 (spot)", n)
		}
		r.setCols(n)
	}
	if n != r.cols {
		return fmt.Errorf("%d columns, want %d like the first row", n, r.cols)
	}
	var ids [3]int64
	for k, col := range [3]int{0, 3, 4} {
		v, err := parseUint(f[col])
		if err != nil {
			return fmt.Errorf("column %d (%s) %q: %w", col+1, visionField[col], clip(f[col]), err)
		}
		ids[k] = v
	}
	if ids[1] > ids[2] {
		return fmt.Errorf("first_trade_id %d > last_trade_id %d", ids[1], ids[2])
	}
	for _, col := range [2]int{1, 2} {
		d, err := fixed.Parse(f[col])
		if err != nil {
			return fmt.Errorf("column %d (%s) %q: %w", col+1, visionField[col], clip(f[col]), err)
		}
		if d < 0 {
			return fmt.Errorf("column %d (%s) %q: negative", col+1, visionField[col], clip(f[col]))
		}
	}
	t, err := parseUint(f[5])
	if err != nil {
		return fmt.Errorf("column 6 (transact_time) %q: %w", clip(f[5]), err)
	}
	// The unit shows in the magnitude: today is about 1.7e12 ms, 1.7e15 us
	// or 1.7e18 ns. Nanoseconds must fit int64 (up to year 2262).
	var ns int64
	switch {
	case t < 1e14:
		if t > math.MaxInt64/1_000_000 {
			return fmt.Errorf("column 6 (transact_time) %d ms: beyond year 2262", t)
		}
		ns = t * 1e6
	case t < 1e17:
		if t > math.MaxInt64/1_000 {
			return fmt.Errorf("column 6 (transact_time) %d us: beyond year 2262", t)
		}
		ns = t * 1e3
	default:
		ns = t
	}
	var bools [2]bool
	for k := 0; k < n-6; k++ {
		switch string(f[6+k]) {
		case "True", "true":
			bools[k] = true
		case "False", "false":
		default:
			return fmt.Errorf("column %d (%s) %q: want True/False or true/false", 7+k, visionField[6+k], clip(f[6+k]))
		}
	}
	ms := ns / 1e6
	buf := append(r.buf[:0], r.prefix...)
	buf = strconv.AppendInt(buf, ms, 10)
	buf = append(buf, r.symPart...)
	buf = strconv.AppendInt(buf, ids[0], 10)
	buf = append(buf, `,"p":"`...)
	buf = append(buf, f[1]...)
	buf = append(buf, `","q":"`...)
	buf = append(buf, f[2]...)
	buf = append(buf, `","f":`...)
	buf = strconv.AppendInt(buf, ids[1], 10)
	buf = append(buf, `,"l":`...)
	buf = strconv.AppendInt(buf, ids[2], 10)
	buf = append(buf, `,"T":`...)
	buf = strconv.AppendInt(buf, ms, 10)
	buf = append(buf, `,"m":`...)
	buf = strconv.AppendBool(buf, bools[0])
	if n == 8 {
		buf = append(buf, `,"M":`...)
		buf = strconv.AppendBool(buf, bools[1])
	}
	buf = append(buf, "}}"...)
	r.buf = buf
	r.rec = Record{Kind: Frame, Local: ns, Symbol: r.symbol, Market: r.mkt, MarketKnown: true, Data: buf}
	return nil
}

// clip shortens a field for an error message.
func clip(b []byte) []byte { return b[:min(len(b), 40)] }
