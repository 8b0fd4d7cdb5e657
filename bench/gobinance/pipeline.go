package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	binance "github.com/adshao/go-binance/v2"
	simplejson "github.com/bitly/go-simplejson"
)

// pipeline is the baseline's per-run state: symbols by name.
type pipeline struct {
	simple   bool
	symbols  map[string]*symbolState
	order    []*symbolState
	rejected int64
}

func newPipeline(simple bool) *pipeline {
	return &pipeline{simple: simple, symbols: map[string]*symbolState{}}
}

func (p *pipeline) symbol(name string) *symbolState {
	s := p.symbols[name]
	if s == nil {
		s = newSymbolState(name)
		p.symbols[name] = s
		p.order = append(p.order, s)
	}
	return s
}

var (
	errUnknownStream = errors.New("unknown stream")
	keyStream        = []byte(`"stream":"`)
)

// depthWire is a spot depthUpdate as encoding/json can decode it.
type depthWire struct {
	Stream string `json:"stream"`
	Data   struct {
		Event         string     `json:"e"`
		Time          int64      `json:"E"`
		Symbol        string     `json:"s"`
		FirstUpdateID int64      `json:"U"`
		LastUpdateID  int64      `json:"u"`
		Bids          [][]string `json:"b"`
		Asks          [][]string `json:"a"`
	} `json:"data"`
}

type snapshotWire struct {
	LastUpdateID int64      `json:"lastUpdateId"`
	Bids         [][]string `json:"bids"`
	Asks         [][]string `json:"asks"`
}

type combinedAggTrade struct {
	Stream string                  `json:"stream"`
	Data   binance.WsAggTradeEvent `json:"data"`
}

func (p *pipeline) handle(r *record) error {
	if r.snapshot {
		snap, err := p.decodeSnapshot(r.data)
		if err != nil {
			return err
		}
		return p.symbol(r.symbol).book.onSnapshot(snap)
	}
	i := bytes.Index(r.data, keyStream)
	if i < 0 {
		return errUnknownStream
	}
	name := r.data[i+len(keyStream):]
	at := bytes.IndexByte(name, '@')
	if at < 0 {
		return errUnknownStream
	}
	kind := name[at+1:]
	switch {
	case bytes.HasPrefix(kind, []byte(`trade"`)):
		ev := new(binance.WsCombinedTradeEvent)
		if err := json.Unmarshal(r.data, ev); err != nil {
			return err
		}
		return p.symbol(ev.Data.Symbol).addTrade(ev.Data.TradeID, ev.Data.Price, ev.Data.Quantity, ev.Data.TradeTime, ev.Data.IsBuyerMaker)
	case bytes.HasPrefix(kind, []byte(`aggTrade"`)):
		ev := new(combinedAggTrade)
		if err := json.Unmarshal(r.data, ev); err != nil {
			return err
		}
		return p.symbol(ev.Data.Symbol).addTrade(ev.Data.AggTradeID, ev.Data.Price, ev.Data.Quantity, ev.Data.TradeTime, ev.Data.IsBuyerMaker)
	case bytes.HasPrefix(kind, []byte(`depth`)):
		ev, err := p.decodeDepth(r.data)
		if err != nil {
			return err
		}
		return p.symbol(ev.Symbol).book.onUpdate(ev)
	case bytes.HasPrefix(kind, []byte(`bookTicker"`)):
		ev := new(binance.WsCombinedBookTickerEvent)
		if err := json.Unmarshal(r.data, ev); err != nil {
			return err
		}
		if ev.Data == nil {
			return errors.New("bookTicker without data")
		}
		return p.symbol(ev.Data.Symbol).onTicker(ev.Data)
	}
	return errUnknownStream
}

func levels(in [][]string) ([]binance.Bid, error) {
	out := make([]binance.Bid, len(in))
	for i, l := range in {
		if len(l) != 2 {
			return nil, fmt.Errorf("level %d: %d elements", i, len(l))
		}
		out[i] = binance.Bid{Price: l[0], Quantity: l[1]}
	}
	return out, nil
}

func (p *pipeline) decodeDepth(data []byte) (*binance.WsDepthEvent, error) {
	if p.simple {
		return depthSimple(data)
	}
	var w depthWire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	ev := &binance.WsDepthEvent{Event: w.Data.Event, Time: w.Data.Time, Symbol: w.Data.Symbol,
		FirstUpdateID: w.Data.FirstUpdateID, LastUpdateID: w.Data.LastUpdateID}
	var err error
	if ev.Bids, err = levels(w.Data.Bids); err != nil {
		return nil, err
	}
	if ev.Asks, err = levels(w.Data.Asks); err != nil {
		return nil, err
	}
	return ev, nil
}

// depthSimple decodes a combined depth frame with go-simplejson, the
// library go-binance's combined depth handler uses, into go-binance's
// event type.
func depthSimple(data []byte) (*binance.WsDepthEvent, error) {
	j, err := simplejson.NewJson(data)
	if err != nil {
		return nil, err
	}
	d := j.Get("data")
	ev := &binance.WsDepthEvent{Event: d.Get("e").MustString(), Time: d.Get("E").MustInt64(),
		Symbol: d.Get("s").MustString(), FirstUpdateID: d.Get("U").MustInt64(), LastUpdateID: d.Get("u").MustInt64()}
	ev.Bids = simpleLevels(d.Get("b"))
	ev.Asks = simpleLevels(d.Get("a"))
	return ev, nil
}

func simpleLevels(j *simplejson.Json) []binance.Bid {
	arr := j.MustArray()
	out := make([]binance.Bid, len(arr))
	for i := range arr {
		l := j.GetIndex(i)
		out[i] = binance.Bid{Price: l.GetIndex(0).MustString(), Quantity: l.GetIndex(1).MustString()}
	}
	return out
}

func (p *pipeline) decodeSnapshot(data []byte) (*binance.DepthResponse, error) {
	if p.simple {
		j, err := simplejson.NewJson(data)
		if err != nil {
			return nil, err
		}
		return &binance.DepthResponse{LastUpdateID: j.Get("lastUpdateId").MustInt64(),
			Bids: simpleLevels(j.Get("bids")), Asks: simpleLevels(j.Get("asks"))}, nil
	}
	var w snapshotWire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	res := &binance.DepthResponse{LastUpdateID: w.LastUpdateID}
	var err error
	if res.Bids, err = levels(w.Bids); err != nil {
		return nil, err
	}
	if res.Asks, err = levels(w.Asks); err != nil {
		return nil, err
	}
	return res, nil
}

func (p *pipeline) summaries() []SymbolTotal {
	out := make([]SymbolTotal, 0, len(p.order))
	for _, s := range p.order {
		out = append(out, s.summary())
	}
	return out
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// symbolState is one symbol: book, metrics and the last ticker.
type symbolState struct {
	name   string
	book   *mapBook
	m      metrics
	ticker struct {
		updateID                     int64
		bidPx, bidQty, askPx, askQty float64
	}
}

func newSymbolState(name string) *symbolState {
	s := &symbolState{name: name, book: newMapBook()}
	s.m.init()
	return s
}

func (s *symbolState) onTicker(ev *binance.WsBookTickerEvent) error {
	var err [4]error
	t := &s.ticker
	t.bidPx, err[0] = strconv.ParseFloat(ev.BestBidPrice, 64)
	t.bidQty, err[1] = strconv.ParseFloat(ev.BestBidQty, 64)
	t.askPx, err[2] = strconv.ParseFloat(ev.BestAskPrice, 64)
	t.askQty, err[3] = strconv.ParseFloat(ev.BestAskQty, 64)
	t.updateID = ev.UpdateID
	return errors.Join(err[:]...)
}

func (s *symbolState) summary() SymbolTotal {
	m := &s.m
	st := SymbolTotal{Symbol: s.name, Trades: m.trades, BuyVolume: ftoa(m.buyVol), SellVolume: ftoa(m.sellVol),
		VWAP: "0", BidLevels: len(s.book.bids), AskLevels: len(s.book.asks), Applied: s.book.applied}
	if v := m.buyVol + m.sellVol; v > 0 {
		st.VWAP = ftoa((m.buyNot + m.sellNot) / v)
	}
	if s.book.hasBid {
		st.BestBid = ftoa(s.book.bestBid)
	}
	if s.book.hasAsk {
		st.BestAsk = ftoa(s.book.bestAsk)
	}
	return st
}

// mapBook is the book most Go code keeps: a map from price to quantity per
// side, synchronized by Binance's spot procedure.
type mapBook struct {
	bids, asks       map[float64]float64
	bestBid, bestAsk float64
	hasBid, hasAsk   bool
	id               int64 // last update id applied; 0 before the snapshot
	synced           bool
	buffer           []*binance.WsDepthEvent
	applied          uint64
}

func newMapBook() *mapBook {
	return &mapBook{bids: map[float64]float64{}, asks: map[float64]float64{}}
}

var errGap = errors.New("depth gap: resync needed")

func (b *mapBook) onSnapshot(snap *binance.DepthResponse) error {
	clear(b.bids)
	clear(b.asks)
	for _, l := range snap.Bids {
		if err := b.set(true, l); err != nil {
			return err
		}
	}
	for _, l := range snap.Asks {
		if err := b.set(false, l); err != nil {
			return err
		}
	}
	b.rescan(true)
	b.rescan(false)
	b.id, b.synced = snap.LastUpdateID, true
	buf := b.buffer
	b.buffer = nil
	for _, ev := range buf {
		if ev.LastUpdateID <= b.id {
			continue // the snapshot holds it
		}
		if err := b.onUpdate(ev); err != nil {
			return err
		}
	}
	return nil
}

func (b *mapBook) onUpdate(ev *binance.WsDepthEvent) error {
	if !b.synced {
		b.buffer = append(b.buffer, ev)
		return nil
	}
	if ev.LastUpdateID <= b.id {
		return nil
	}
	if ev.FirstUpdateID > b.id+1 {
		b.synced = false
		return errGap
	}
	for _, l := range ev.Bids {
		if err := b.set(true, l); err != nil {
			return err
		}
	}
	for _, l := range ev.Asks {
		if err := b.set(false, l); err != nil {
			return err
		}
	}
	b.id = ev.LastUpdateID
	b.applied++
	if b.hasBid && b.hasAsk && b.bestBid >= b.bestAsk {
		b.synced = false
		return errors.New("crossed book: resync needed")
	}
	return nil
}

func (b *mapBook) set(bid bool, l binance.Bid) error {
	price, qty, err := l.Parse()
	if err != nil {
		return err
	}
	m := b.asks
	if bid {
		m = b.bids
	}
	if qty == 0 {
		if _, ok := m[price]; !ok {
			return nil
		}
		delete(m, price)
		if bid && b.hasBid && price == b.bestBid || !bid && b.hasAsk && price == b.bestAsk {
			b.rescan(bid)
		}
		return nil
	}
	m[price] = qty
	if bid && (!b.hasBid || price > b.bestBid) {
		b.bestBid, b.hasBid = price, true
	}
	if !bid && (!b.hasAsk || price < b.bestAsk) {
		b.bestAsk, b.hasAsk = price, true
	}
	return nil
}

func (b *mapBook) rescan(bid bool) {
	if bid {
		b.hasBid = len(b.bids) > 0
		b.bestBid = math.Inf(-1)
		for p := range b.bids {
			b.bestBid = max(b.bestBid, p)
		}
		return
	}
	b.hasAsk = len(b.asks) > 0
	b.bestAsk = math.Inf(1)
	for p := range b.asks {
		b.bestAsk = min(b.bestAsk, p)
	}
}

// Metric sizes match orderflow's flow defaults.
const (
	historySize = 10_000
	windowSecs  = 3600 // the longest rolling window, 1h
	barMillis   = 60_000
	barHistory  = 120
	largeSample = 1000
	dayMillis   = 86_400_000
)

type trade struct {
	id         int64
	price, qty float64
	time       int64
	buyerMaker bool
}

type bucket struct {
	sec                       int64
	buyVol, sellVol, notional float64
	trades                    int64
}

type fpLevel struct{ buy, sell float64 }

type bar struct {
	start                            int64
	open, high, low, close           float64
	buyVol, sellVol, notional, delta float64
	trades                           int64
	footprint                        map[float64]*fpLevel
}

// metrics are float64 order-flow figures, the same set orderflow's
// flow.Tracker keeps.
type metrics struct {
	trades, lastID                        int64
	lastTime                              int64
	buyVol, sellVol, buyNot, sellNot, cvd float64
	high, low, last                       float64
	hist                                  []trade
	histNext                              int
	buckets                               []bucket
	cur                                   *bar
	bars                                  []*bar
	sessionDay                            int64
	session                               map[float64]*fpLevel
	sizes                                 []float64 // ring of the last largeSample sizes
	sorted                                []float64 // the same sizes, sorted
	sizeNext                              int
	threshold                             float64
	large                                 int64
}

func (m *metrics) init() {
	m.hist = make([]trade, 0, historySize)
	m.buckets = make([]bucket, windowSecs)
	m.session = map[float64]*fpLevel{}
	m.sessionDay = -1
	m.high, m.low = math.Inf(-1), math.Inf(1)
}

var errOrder = errors.New("trade out of order or duplicate")

func (s *symbolState) addTrade(id int64, priceS, qtyS string, at int64, buyerMaker bool) error {
	m := &s.m
	price, err := strconv.ParseFloat(priceS, 64)
	if err != nil {
		return err
	}
	qty, err := strconv.ParseFloat(qtyS, 64)
	if err != nil {
		return err
	}
	if m.trades > 0 && (id <= m.lastID || at < m.lastTime) {
		return errOrder
	}
	m.trades++
	m.lastID, m.lastTime = id, at
	notional := price * qty
	buy := !buyerMaker // buyer is maker: the taker sold
	if buy {
		m.buyVol += qty
		m.buyNot += notional
		m.cvd += qty
	} else {
		m.sellVol += qty
		m.sellNot += notional
		m.cvd -= qty
	}
	m.high, m.low, m.last = max(m.high, price), min(m.low, price), price

	// History ring.
	t := trade{id: id, price: price, qty: qty, time: at, buyerMaker: buyerMaker}
	if len(m.hist) < historySize {
		m.hist = append(m.hist, t)
	} else {
		m.hist[m.histNext] = t
		m.histNext = (m.histNext + 1) % historySize
	}

	// One-second buckets for the rolling windows.
	sec := at / 1000
	bk := &m.buckets[sec%windowSecs]
	if bk.sec != sec {
		*bk = bucket{sec: sec}
	}
	bk.trades++
	bk.notional += notional
	if buy {
		bk.buyVol += qty
	} else {
		bk.sellVol += qty
	}

	// 1-minute bar with footprint.
	start := at - at%barMillis
	if m.cur == nil || m.cur.start != start {
		if m.cur != nil {
			m.bars = append(m.bars, m.cur)
			if len(m.bars) > barHistory {
				m.bars = m.bars[1:]
			}
		}
		m.cur = &bar{start: start, open: price, high: price, low: price, footprint: map[float64]*fpLevel{}}
	}
	b := m.cur
	b.high, b.low, b.close = max(b.high, price), min(b.low, price), price
	b.trades++
	b.notional += notional
	fp := b.footprint[price]
	if fp == nil {
		fp = &fpLevel{}
		b.footprint[price] = fp
	}
	if buy {
		b.buyVol += qty
		fp.buy += qty
	} else {
		b.sellVol += qty
		fp.sell += qty
	}
	b.delta = b.buyVol - b.sellVol

	// Session (UTC day) volume profile.
	if day := at / dayMillis; day != m.sessionDay {
		m.sessionDay = day
		clear(m.session)
	}
	sp := m.session[price]
	if sp == nil {
		sp = &fpLevel{}
		m.session[price] = sp
	}
	if buy {
		sp.buy += qty
	} else {
		sp.sell += qty
	}

	// Large trades: strictly above the nearest-rank 99th percentile of the
	// last largeSample sizes, kept sorted by insertion.
	if m.threshold > 0 && qty > m.threshold {
		m.large++
	}
	if len(m.sizes) < largeSample {
		m.sizes = append(m.sizes, qty)
	} else {
		old := m.sizes[m.sizeNext]
		m.sizes[m.sizeNext] = qty
		m.sizeNext = (m.sizeNext + 1) % largeSample
		j := sort.SearchFloat64s(m.sorted, old)
		m.sorted = append(m.sorted[:j], m.sorted[j+1:]...)
	}
	j := sort.SearchFloat64s(m.sorted, qty)
	m.sorted = append(m.sorted, 0)
	copy(m.sorted[j+1:], m.sorted[j:])
	m.sorted[j] = qty
	rank := int(math.Ceil(0.99*float64(len(m.sorted)))) - 1
	m.threshold = m.sorted[max(rank, 0)]
	return nil
}
