package bench

import (
	"encoding/json"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// pushTradeID reads the id of what encoding/json writes for every kind
// of message the hub sends, and says false for the kinds that are not
// trades.
func TestPushTradeID(t *testing.T) {
	tr := market.Trade{Symbol: "BTCUSDT", ID: 3735683259, Price: fixed.MustParse("61837.63"), Qty: fixed.MustParse("0.02"), Time: 1723161255342}
	for _, tc := range []struct {
		name   string
		msg    any
		id     int64
		isPush bool
	}{
		{"Trade", client.Message{Type: "trade", Symbol: "BTCUSDT", Data: client.FromTrade(&tr)}, tr.ID, true},
		{"TradeWithoutSymbol", client.Message{Type: "trade", Data: client.Trade{ID: 7}}, 7, true},
		{"OtherLayout", map[string]any{"data": map[string]any{"id": 42}, "type": "trade"}, 42, true},
		{"Large", client.Message{Type: "large", Symbol: "BTCUSDT", Data: client.LargeTrade{ID: 9}}, 0, false},
		{"Dropped", client.Message{Type: "dropped", Count: 3}, 0, false},
		{"NotJSON", "trade", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			id, ok := pushTradeID(b)
			if ok != tc.isPush || id != tc.id {
				t.Fatalf("pushTradeID(%s) = %d, %v; want %d, %v", b, id, ok, tc.id, tc.isPush)
			}
		})
	}
}

// Whatever the symbol and id, the id read back from a marshalled trade
// message is the one put in, and no input panics.
func FuzzPushTradeID(f *testing.F) {
	f.Add("BTCUSDT", int64(3735683259), []byte(`{"type":"trade","data":{"id":1}}`))
	f.Add(`"id":5`, int64(0), []byte(`{"type":"trade","data":{"id":`))
	f.Fuzz(func(t *testing.T, symbol string, id int64, raw []byte) {
		pushTradeID(raw)
		if id < 0 {
			id = -(id + 1)
		}
		b, err := json.Marshal(client.Message{Type: "trade", Symbol: symbol, Data: client.Trade{Symbol: symbol, ID: id}})
		if err != nil {
			return
		}
		if got, ok := pushTradeID(b); !ok || got != id {
			t.Fatalf("pushTradeID(%s) = %d, %v", b, got, ok)
		}
	})
}

// histQuantile against a plain count over the same histogram's samples.
func TestHistQuantile(t *testing.T) {
	bounds := []float64{math.Inf(-1), 0, 1e-6, 1e-5, 1e-4, 1e-3, math.Inf(1)}
	counts := []uint64{0, 50, 30, 15, 4, 1}
	var all []float64 // each sample at its bucket's upper bound
	for k, c := range counts {
		for range c {
			all = append(all, finite(bounds[k+1]))
		}
	}
	for _, q := range []float64{0.5, 0.8, 0.95, 0.99, 0.999, 1} {
		rank := int(math.Ceil(q*float64(len(all)))) - 1
		want := time.Duration(all[rank] * 1e9)
		if got := histQuantile(counts, bounds, q); got != want {
			t.Fatalf("q %v: got %v, want %v", q, got, want)
		}
	}
	if got := histQuantile(make([]uint64, len(counts)), bounds, 0.5); got != 0 {
		t.Fatalf("empty: %v", got)
	}
}

// The accumulated GC figures are those the runtime reports for a forced
// collection between two samples.
func TestRTAccumCountsCollections(t *testing.T) {
	var a rtAccum
	from := takeRTSample()
	runtime.GC()
	runtime.GC()
	to := takeRTSample()
	a.add(from, to, 10)
	s := a.stats()
	if s.GCCycles < 2 || s.Frames != 10 || s.GCPauses <= 0 {
		t.Fatalf("stats %+v", s)
	}
}
