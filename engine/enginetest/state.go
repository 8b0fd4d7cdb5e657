// Package enginetest captures a symbol's observable state (metrics, book,
// book history, book metrics) as plain values, so tests can check that two
// pipelines fed differently (frames, the bus) end in the same state. It is
// for tests; it does no I/O and starts no goroutines.
package enginetest

import (
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// Options says what State captures.
type Options struct {
	// BookLevels is how many levels per side of the book are captured,
	// best first; 0 captures every level and the known range.
	BookLevels int
	// NoHistory leaves the book history out.
	NoHistory bool
	// NoDepthFlow leaves the book metrics out.
	NoDepthFlow bool
}

// State is one symbol's observable state.
type State struct {
	Totals  flow.Totals
	Windows []flow.WindowStats
	Bars    map[time.Duration][]flow.Bar
	Open    map[time.Duration]flow.Bar
	Session flow.Profile
	Large   []flow.LargeTrade
	Trades  []market.Trade

	Synced            bool
	UpdateID          int64
	Bids, Asks        []market.Level
	BidFloor, AskCeil fixed.Dec

	History []book.Frame

	DepthMetrics   depthflow.Metrics
	DepthSignals   []depthflow.Signal
	BidWalls       []depthflow.Wall
	AskWalls       []depthflow.Wall
	DepthLiquidity []depthflow.LiquidityStats
}

// Capture returns s's state.
func Capture(s *engine.Symbol, o Options) State {
	f := s.Flow
	st := State{Totals: f.Totals(), Bars: map[time.Duration][]flow.Bar{}, Open: map[time.Duration]flow.Bar{}}
	for _, w := range f.Windows() {
		ws, _ := f.Window(w)
		st.Windows = append(st.Windows, ws)
	}
	for _, iv := range f.BarIntervals() {
		st.Bars[iv] = f.Bars(iv, 0)
		if b, ok := f.CurrentBar(iv); ok {
			st.Open[iv] = b
		}
	}
	st.Session, _ = f.SessionProfile()
	st.Large = f.LargeTrades(0, nil)
	st.Trades = f.Trades(flow.TradeQuery{}, nil)
	if s.Synced() {
		b := s.Book()
		st.Synced, st.UpdateID = true, b.UpdateID()
		n := o.BookLevels
		if n <= 0 {
			n = math.MaxInt
			st.BidFloor, st.AskCeil = b.KnownRange()
		}
		st.Bids, st.Asks = b.Bids(n, nil), b.Asks(n, nil)
	}
	if !o.NoHistory && s.History != nil {
		for fr := range s.History.Range(math.MinInt64, math.MaxInt64) {
			st.History = append(st.History, fr.Clone())
		}
	}
	if !o.NoDepthFlow && s.Depth != nil {
		d := s.Depth
		st.DepthMetrics = d.Metrics()
		st.DepthSignals = d.Signals(math.MinInt64, nil)
		st.BidWalls = d.Walls(market.Buy, nil)
		st.AskWalls = d.Walls(market.Sell, nil)
		st.DepthLiquidity = d.LiquidityWindows()
	}
	return st
}

// Diff names the fields where a and b differ, with the first difference of
// each, or returns nil when they are equal.
func Diff(a, b State) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		if reflect.DeepEqual(x, y) {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s", va.Type().Field(i).Name, first(va.Field(i), vb.Field(i))))
	}
	return out
}

// first describes the first difference of two values of one type.
func first(x, y reflect.Value) string {
	switch x.Kind() {
	case reflect.Slice:
		if x.Len() != y.Len() {
			return fmt.Sprintf("length %d vs %d", x.Len(), y.Len())
		}
		for i := range x.Len() {
			if !reflect.DeepEqual(x.Index(i).Interface(), y.Index(i).Interface()) {
				return fmt.Sprintf("[%d] %+v vs %+v", i, x.Index(i).Interface(), y.Index(i).Interface())
			}
		}
	case reflect.Map:
		for _, k := range x.MapKeys() {
			if !y.MapIndex(k).IsValid() {
				return fmt.Sprintf("[%v] missing in the second", k.Interface())
			}
			if !reflect.DeepEqual(x.MapIndex(k).Interface(), y.MapIndex(k).Interface()) {
				return fmt.Sprintf("[%v] %s", k.Interface(), first(x.MapIndex(k), y.MapIndex(k)))
			}
		}
		return fmt.Sprintf("%d vs %d keys", x.Len(), y.Len())
	}
	return fmt.Sprintf("%+v vs %+v", x.Interface(), y.Interface())
}
