package main

import (
	"context"
	"errors"
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
		if leak := waitNoLeak(ignore); leak != nil {
			t.Fatalf("startBus (ctx err %v) left goroutines: %v", ctx.Err(), leak)
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

// TestShardRunStoppedMidway: `run --bus embedded --shard` stopped at
// points spread over its start-up and first lease rounds (bucket set-up,
// leases taken, symbols added, renewals) returns without an error (or,
// stopped while it was still connecting, with the stop as its error) and
// leaves no goroutine behind, the embedded server's included.
func TestShardRunStoppedMidway(t *testing.T) {
	points := 16
	if testing.Short() {
		points = 8
	}
	run := func(ctx context.Context) (time.Duration, error) {
		t.Helper()
		env, _, errb := runTestEnv(nil)
		ignore := goleak.IgnoreCurrent()
		t0 := time.Now()
		err := runRun(ctx, env, []string{"--listen", "off", "--bus", "embedded", "--bus-listen", "127.0.0.1:0", "--shard", "--lease-ttl", "1s",
			"--data-dir", t.TempDir(), "--symbols", "BTCUSDT,ETHUSDT,SOLUSDT",
			"--ws-url", "ws://127.0.0.1:1", "--rest-url", "http://127.0.0.1:1", "--stop-timeout", "5s"})
		took := time.Since(t0)
		if leak := waitNoLeak(ignore); leak != nil {
			t.Fatalf("run stopped after %v (err %v) left goroutines: %v\nstderr: %s", took, err, leak, errb.String())
		}
		return took, err
	}
	// The member's first rounds end well within 3 s (TTL 1 s: renewals
	// every third of it); signals spread from the first instant to there.
	for k := range points {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second*time.Duration(k)/time.Duration(points))
		took, err := run(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("stop %d (after %v): %v", k, took.Round(time.Millisecond), err)
		}
	}
}

// waitNoLeak waits for the goroutines not in ignore to end and returns
// goleak's report of those still running after 10 s (an embedded server's
// end within moments of its Close; 10 s is generous for a loaded machine).
func waitNoLeak(ignore goleak.Option) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		leak := goleak.Find(ignore)
		if leak == nil || time.Now().After(deadline) {
			return leak
		}
		time.Sleep(50 * time.Millisecond)
	}
}
