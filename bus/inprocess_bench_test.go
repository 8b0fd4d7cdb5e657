package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/stacktest"
)

// BenchmarkPublishConn compares the embedded server's two ways in for
// `orderflow run --bus embedded`'s own publisher: loopback TCP (what
// BenchmarkPublishTrades measures, and Embedded.Connect's choice without
// TLS) and the in-process pipe of Embedded.ConnectInProcess (its choice
// with TLS). File store, real trades, each iteration ends when JetStream
// acknowledged all of them.
func BenchmarkPublishConn(b *testing.B) {
	trades, _, _ := realData(b, stacktest.Testdata("hft-spot-btcusdt-20240808.txt.gz"), 0)
	for _, inProc := range []bool{false, true} {
		name := "TCP"
		if inProc {
			name = "InProcess"
		}
		b.Run(name, func(b *testing.B) {
			tb := mustBus(b, bus.StreamConfig{})
			nc := tb.nc
			if inProc {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				var err error
				if nc, err = tb.srv.ConnectInProcess(ctx, bus.ConnectConfig{Logger: stacktest.Logger(b)}); err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
			}
			n, start, id := 0, time.Now(), int64(0)
			for b.Loop() {
				id = publishAll(b, nc, trades, id)
				n += len(trades)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
		})
	}
}

func publishAll(b *testing.B, nc *nats.Conn, trades []market.Trade, id int64) int64 {
	pub, err := bus.NewPublisher(nc, bus.PublisherConfig{Market: market.Spot, Queue: len(trades), Logger: stacktest.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	for i := range trades {
		t := trades[i]
		id++
		t.ID = id // new ids: nothing is a duplicate
		pub.Hook(service.Event{Symbol: t.Symbol, Trade: &t})
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if st := pub.Stats(); st.Acked != uint64(len(trades)) || st.Duplicates != 0 {
		b.Fatalf("acked %d of %d, %d duplicates", st.Acked, len(trades), st.Duplicates)
	}
	return id
}
