package bus_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/stacktest"
)

// BenchmarkEncodeTrade compares the hand-written trade encoder with
// encoding/json on the same message, over real trades.
func BenchmarkEncodeTrade(b *testing.B) {
	trades, _, _ := realData(b, stacktest.Testdata("hft-spot-btcusdt-20240808.txt.gz"), 2000)
	b.Run("Append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; b.Loop(); i++ {
			buf = bus.AppendTrade(buf[:0], market.Spot, &trades[i%len(trades)])
		}
	})
	b.Run("EncodingJSON", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m := bus.TradeMsg(market.Spot, &trades[i%len(trades)])
			if _, err := json.Marshal(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPublishTrades measures publish throughput into the embedded
// server (file store, loopback TCP): real trades go through the
// Publisher's hook and are sent asynchronously; each iteration ends when
// JetStream has acknowledged all of them. events/s is the figure to
// quote.
func BenchmarkPublishTrades(b *testing.B) {
	trades, _, _ := realData(b, stacktest.Testdata("hft-spot-btcusdt-20240808.txt.gz"), 0)
	for _, mem := range []bool{false, true} {
		name := "FileStore"
		if mem {
			name = "MemoryStore"
		}
		b.Run(name, func(b *testing.B) {
			tb := mustBus(b, bus.StreamConfig{Memory: mem})
			n, start := 0, time.Now()
			id := int64(0)
			for b.Loop() {
				id = publishAll(b, tb.nc, trades, id)
				n += len(trades)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
		})
	}
}
