package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// TestStartBusStoppedMidway: a stop signal (the run context cancelled)
// at any moment of the embedded bus's start-up leaves nothing of the
// server running once startBus has returned and its bus is closed: the
// stream the server was creating when the signal came is stopped with it.
func TestStartBusStoppedMidway(t *testing.T) {
	svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}, Market: market.Spot,
		WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	start := func(ctx context.Context) {
		t.Helper()
		f := &busFlags{url: "embedded", listen: "127.0.0.1:0", retention: time.Hour, replicas: 1}
		ignore := goleak.IgnoreCurrent()
		b, err := startBus(ctx, log, f, t.TempDir(), market.Spot, svc)
		if err == nil {
			_ = b.close()
		}
		// The server's goroutines end within moments of Close; 10 s is
		// a generous bound for a loaded machine.
		deadline := time.Now().Add(10 * time.Second)
		for {
			leak := goleak.Find(ignore)
			if leak == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("startBus (ctx err %v) left goroutines: %v", ctx.Err(), leak)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// How long a whole start takes here, then signals spread over it.
	t0 := time.Now()
	start(context.Background())
	full := time.Since(t0)
	for k := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), full*time.Duration(k+1)/50)
		start(ctx)
		cancel()
	}
}
