package capture

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/market"
)

// hftReader reads hftbacktest collector files: one "<local_ns> <json>" per
// line, where the JSON is a combined-stream frame or, without a "stream"
// key, a REST depth snapshot body.
//
// The lines carry no symbol or market of their own, so they are inferred
// cheaply (substring checks, no JSON decode): the symbol from the stream
// name of the frames, the market from the first "tell" (a depthUpdate with
// "pu", or a snapshot with "E", is USD-M; without them, spot). When a
// record needs what has not been seen yet (a snapshot before any frame, or
// the market before any tell), the reader looks ahead a bounded number of
// lines and keeps them for later.
type hftReader struct {
	textReader
	in interner

	pending  []pendingLine
	pendHead int
	cur      []byte // owned copy of the current line while looking ahead

	sym            string // symbol of the most recent frame
	market         market.Kind
	marketKnown    bool
	marketSearched bool
}

// pendingLine is a line read ahead; b is an owned copy.
type pendingLine struct {
	ln  textLine
	err error
}

// Look-ahead bounds: the recorder asks for the snapshot after the first
// diffs, so the symbol and market show within a few lines; the bounds only
// stop a hostile file from making us buffer it whole.
const (
	lookAheadLines = 1000
	lookAheadBytes = 64 << 20
)

var (
	keyStream      = []byte(`"stream":"`)
	keyStreamBare  = []byte(`"stream"`)
	keyDepthUpdate = []byte(`"e":"depthUpdate"`)
	keyPU          = []byte(`"pu":`)
	keyLastUpdate  = []byte(`"lastUpdateId"`)
	keyBids        = []byte(`"bids"`)
	keyE           = []byte(`"E":`)
)

func newHFTReader(src *source, maxLine int) *hftReader {
	return &hftReader{textReader: newTextReader(src, maxLine)}
}

func (r *hftReader) nextLine() (textLine, error) {
	if r.pendHead < len(r.pending) {
		p := r.pending[r.pendHead]
		r.pending[r.pendHead] = pendingLine{}
		r.pendHead++
		if r.pendHead == len(r.pending) {
			r.pending, r.pendHead = r.pending[:0], 0
		}
		return p.ln, p.err
	}
	return r.lr.next()
}

// hftLine is a line split into its parts.
type hftLine struct {
	local    int64
	js       []byte
	snapshot bool
	sym      []byte // from the stream name; nil for snapshots
	mkt      market.Kind
	mktOK    bool
}

// splitHFT parses a line cheaply: local time, JSON body, kind, symbol and
// market tell.
func splitHFT(b []byte) (hftLine, error) {
	var h hftLine
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 {
		return h, errors.New(`want "<local_ns> <json>": no space after the local time`)
	}
	local, err := parseUint(b[:sp])
	if err != nil {
		return h, fmt.Errorf("local time %q: %w", b[:min(sp, 24)], err)
	}
	h.local = local
	js := b[sp+1:]
	if len(js) < 2 || js[0] != '{' || js[len(js)-1] != '}' {
		return h, errors.New("JSON body does not start with '{' and end with '}'")
	}
	h.js = js
	if i := bytes.Index(js, keyStream); i >= 0 {
		name := js[i+len(keyStream):]
		if j := bytes.IndexByte(name, '"'); j >= 0 {
			name = name[:j]
			if at := bytes.IndexByte(name, '@'); at >= 0 {
				h.sym = name[:at]
			}
		}
		if bytes.Contains(js, keyDepthUpdate) {
			h.mkt, h.mktOK = market.Spot, true
			if bytes.Contains(js, keyPU) {
				h.mkt = market.USDM
			}
		}
		return h, nil
	}
	if bytes.Contains(js, keyStreamBare) {
		return h, errors.New(`"stream" key without a string value`)
	}
	if !bytes.Contains(js, keyLastUpdate) {
		return h, errors.New(`neither a stream frame ("stream") nor a depth snapshot ("lastUpdateId")`)
	}
	h.snapshot = true
	head := js
	if i := bytes.Index(js, keyBids); i >= 0 {
		head = js[:i]
	}
	h.mkt, h.mktOK = market.Spot, true
	if bytes.Contains(head, keyE) {
		h.mkt = market.USDM
	}
	return h, nil
}

// Next implements Reader.
func (r *hftReader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		ln, err := r.nextLine()
		blank, err := r.count(ln, err)
		if err != nil {
			return nil, err
		}
		if blank {
			r.stats.Skipped++
			continue
		}
		h, err := splitHFT(ln.b)
		if err != nil {
			return nil, r.bad(ln, err)
		}
		if h.mktOK {
			r.market, r.marketKnown = h.mkt, true
		}
		if h.sym != nil {
			if s, ok := r.in.upper(h.sym); ok {
				r.sym = s
			}
		}
		sym := r.sym
		needSym := h.snapshot && sym == ""
		needMarket := !r.marketKnown && !r.marketSearched
		if needSym || needMarket {
			r.marketSearched = true
			// Looking ahead reuses the line buffer: keep the current line.
			if r.pendHead == 0 && len(r.pending) == 0 {
				r.cur = append(r.cur[:0], ln.b...)
				h, _ = splitHFT(r.cur)
			}
			ahead := r.lookAhead(needSym)
			if needSym {
				sym = ahead
			}
		}
		if h.snapshot && sym == "" {
			r.stats.Errors++
			return nil, &LineError{Name: r.src.name, Line: ln.no, Offset: ln.off,
				Err: fmt.Errorf("depth snapshot with no symbol: no stream frame before it or within %d lines after it", lookAheadLines)}
		}
		r.rec = Record{Kind: Frame, Local: h.local, Symbol: sym, Market: r.market, MarketKnown: r.marketKnown, Data: h.js}
		if h.snapshot {
			r.rec.Kind = Snapshot
		}
		r.stats.Records++
		return &r.rec, nil
	}
}

// lookAhead reads lines into pending until it has seen the market and, if
// wantSym, a frame's symbol, which it returns.
func (r *hftReader) lookAhead(wantSym bool) string {
	var sym string
	check := func(b []byte) bool {
		h, err := splitHFT(b)
		if err != nil {
			return false
		}
		if h.mktOK && !r.marketKnown {
			r.market, r.marketKnown = h.mkt, true
		}
		if wantSym && sym == "" && h.sym != nil {
			sym, _ = r.in.upper(h.sym)
		}
		return r.marketKnown && (!wantSym || sym != "")
	}
	for i := r.pendHead; i < len(r.pending); i++ {
		if r.pending[i].err == nil && check(r.pending[i].ln.b) {
			return sym
		}
	}
	held := 0
	for n := len(r.pending) - r.pendHead; n < lookAheadLines && held < lookAheadBytes; n++ {
		ln, err := r.lr.next()
		if err != nil {
			// Stream errors and io.EOF are sticky in the line reader and
			// come again once pending is drained; a bad line is kept in
			// order.
			var le *LineError
			if !errors.As(err, &le) {
				return sym
			}
			r.pending = append(r.pending, pendingLine{err: err})
			continue
		}
		ln.b = append([]byte(nil), ln.b...)
		held += len(ln.b)
		r.pending = append(r.pending, pendingLine{ln: ln})
		if check(ln.b) {
			return sym
		}
	}
	return sym
}
