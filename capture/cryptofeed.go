package capture

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/market"
)

// cryptofeedReader reads the cryptofeed recorder's 2021 text format:
//
//	configuration: {...}
//	wss://stream.binance.com:9443/stream?streams=... [<-> <seconds>]
//	<seconds.fraction>: <combined-stream frame>
//	<REST URL> -> <seconds.fraction>: <REST depth snapshot>
//
// The market comes from the URLs: a WebSocket URL on fstream is USD-M and
// one on stream.binance.com is spot; a REST URL under /fapi/ is USD-M and
// one under /api/ is spot. A snapshot's symbol is the URL's symbol=.
type cryptofeedReader struct {
	textReader
	in interner

	market      market.Kind // from the last WebSocket URL line
	marketKnown bool
}

var (
	prefixConfig = []byte("configuration:")
	sepREST      = []byte(" -> ")
	sepTime      = []byte(": ")
	keySymbolArg = []byte("symbol=")
)

func newCryptofeedReader(src *source, maxLine int) *cryptofeedReader {
	return &cryptofeedReader{textReader: newTextReader(src, maxLine)}
}

// Next implements Reader.
func (r *cryptofeedReader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		ln, err := r.lr.next()
		blank, err := r.count(ln, err)
		if err != nil {
			return nil, err
		}
		b := ln.b
		switch {
		case blank, bytes.HasPrefix(b, prefixConfig):
			r.stats.Skipped++
			continue
		case bytes.HasPrefix(b, []byte("wss://")), bytes.HasPrefix(b, []byte("ws://")):
			r.market, r.marketKnown = wsMarket(b)
			r.stats.Skipped++
			continue
		}
		rec, err := r.parse(b)
		if err != nil {
			return nil, r.bad(ln, err)
		}
		r.stats.Records++
		return rec, nil
	}
}

func (r *cryptofeedReader) parse(b []byte) (*Record, error) {
	rec := Record{Kind: Frame, Market: r.market, MarketKnown: r.marketKnown}
	if bytes.HasPrefix(b, []byte("http")) {
		i := bytes.Index(b, sepREST)
		if i < 0 {
			return nil, errors.New(`REST line without " -> " after the URL`)
		}
		url := b[:i]
		b = b[i+len(sepREST):]
		rec.Kind = Snapshot
		j := bytes.Index(url, keySymbolArg)
		if j < 0 {
			return nil, fmt.Errorf("REST URL %q has no symbol= argument", url)
		}
		sym := url[j+len(keySymbolArg):]
		if k := bytes.IndexByte(sym, '&'); k >= 0 {
			sym = sym[:k]
		}
		s, ok := r.in.upper(sym)
		if !ok {
			return nil, fmt.Errorf("REST URL symbol %q is not a symbol", sym)
		}
		rec.Symbol = s
		switch {
		case bytes.Contains(url, []byte("/fapi/")):
			rec.Market, rec.MarketKnown = market.USDM, true
		case bytes.Contains(url, []byte("/api/")):
			rec.Market, rec.MarketKnown = market.Spot, true
		default:
			rec.Market, rec.MarketKnown = 0, false
		}
	}
	i := bytes.Index(b, sepTime)
	if i < 0 {
		return nil, errors.New(`want "<seconds>: <json>": no ": " after the time`)
	}
	local, err := parseSecondsNs(b[:i])
	if err != nil {
		return nil, fmt.Errorf("local time: %w", err)
	}
	rec.Local = local
	js := b[i+len(sepTime):]
	if len(js) < 2 || js[0] != '{' || js[len(js)-1] != '}' {
		return nil, errors.New("JSON body does not start with '{' and end with '}'")
	}
	rec.Data = js
	if rec.Kind == Frame {
		if k := bytes.Index(js, keyStream); k >= 0 {
			name := js[k+len(keyStream):]
			if at := bytes.IndexByte(name, '@'); at >= 0 && bytes.IndexByte(name[:at], '"') < 0 {
				rec.Symbol, _ = r.in.upper(name[:at])
			}
		}
	} else if !bytes.Contains(js[:min(len(js), 64)], keyLastUpdate) {
		return nil, errors.New(`REST body is not a depth snapshot (no "lastUpdateId" at its start)`)
	}
	r.rec = rec
	return &r.rec, nil
}

// wsMarket tells the market from a WebSocket URL.
func wsMarket(url []byte) (market.Kind, bool) {
	host := url[bytes.Index(url, []byte("://"))+3:]
	if i := bytes.IndexAny(host, "/:? "); i >= 0 {
		host = host[:i]
	}
	switch {
	case bytes.HasPrefix(host, []byte("fstream")):
		return market.USDM, true
	case bytes.HasPrefix(host, []byte("stream.binance")), bytes.HasPrefix(host, []byte("data-stream.binance")):
		return market.Spot, true
	}
	return 0, false
}
