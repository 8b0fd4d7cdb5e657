package engine_test

import (
	"testing"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// Two real frames of testdata/binance/cryptofeed-spot-10sym-20210405.txt.gz.
const (
	zilAggTrade   = `{"stream":"zilusdt@aggTrade","data":{"e":"aggTrade","E":1617647603484,"s":"ZILUSDT","a":18938405,"p":"0.21448000","q":"2062.90000000","f":23806928,"l":23806928,"T":1617647603483,"m":false,"M":true}}`
	zilBookTicker = `{"stream":"zilusdt@bookTicker","data":{"u":499822861,"s":"ZILUSDT","b":"0.21437000","B":"2800.00000000","a":"0.21449000","A":"11400.00000000"}}`
)

// TestRemovedSymbolStartsFresh: the engine remembers the previous
// message's symbol to skip its map; a message after RemoveSymbol must
// still get fresh state, not the removed symbol's.
func TestRemovedSymbolStartsFresh(t *testing.T) {
	e := engine.New(engine.Config{Flow: flow.Config{}})
	if _, err := e.HandleFrame([]byte(zilAggTrade), market.Spot, true); err != nil {
		t.Fatal(err)
	}
	s1 := e.Symbol("ZILUSDT")
	if s1 == nil || s1.Flow.Totals().Trades != 1 {
		t.Fatalf("after one trade: %+v", s1)
	}
	if !e.RemoveSymbol("ZILUSDT") || e.Symbol("ZILUSDT") != nil || len(e.Symbols()) != 0 {
		t.Fatal("RemoveSymbol did not remove ZILUSDT")
	}
	if _, err := e.HandleFrame([]byte(zilBookTicker), market.Spot, true); err != nil {
		t.Fatal(err)
	}
	s2 := e.Symbol("ZILUSDT")
	if s2 == nil || s2 == s1 {
		t.Fatal("the bookTicker after RemoveSymbol went to the removed symbol's state")
	}
	if !s2.HaveTicker || s2.LastTicker.UpdateID != 499822861 || s2.Flow.Totals().Trades != 0 {
		t.Fatalf("fresh symbol: ticker %v %+v, trades %d", s2.HaveTicker, s2.LastTicker, s2.Flow.Totals().Trades)
	}
	if got := e.Symbols(); len(got) != 1 || got[0] != s2 {
		t.Fatalf("Symbols() = %v", got)
	}
	if s1.HaveTicker {
		t.Fatal("the removed symbol received the ticker")
	}
}
