package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// TestAddSymbolFromTradeID: a sharded service started with no symbols
// takes a symbol over from a given aggregate id, as a new owner does after
// a failover: its first trade is the next id, and from there every id the
// simulator published (read back through REST, an independent path) is
// there once, in order, across the REST fill and the live stream.
func TestAddSymbolFromTradeID(t *testing.T) {
	srv := startSim(t, sim.Config{Recording: recording(t, spot10...), Speed: 10})
	s := newService(t, srv, func(c *service.Config) { c.Symbols = nil; c.Sharded = true; c.Flow = testFlow })
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stopService(t, s)
	if st := s.Status(); st.State != "running" || len(st.Symbols) != 0 || len(st.Streams) != 0 {
		t.Fatalf("sharded service with no symbols: %+v", st)
	}
	// Let the simulator publish a while, then start from the middle of
	// what it has published.
	var published int
	waitFor(t, "ZILUSDT trades published", 30*time.Second, func() bool {
		published = len(restTrades(t, srv, "ZILUSDT"))
		return published >= 20
	})
	before := restTrades(t, srv, "ZILUSDT")
	after := before[len(before)/2].ID
	if err := s.AddSymbolFrom(ctx, "zilusdt", after); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ZILUSDT live trades past the fill", 30*time.Second, func() bool {
		ids := serviceMetrics(t, s, "ZILUSDT").IDs
		return len(ids) > 0 && ids[len(ids)-1] > before[len(before)-1].ID+5
	})
	got := serviceMetrics(t, s, "ZILUSDT").IDs
	if got[0] != after+1 {
		t.Fatalf("first trade id %d, want %d (the one after the start point)", got[0], after+1)
	}
	checkConsecutive(t, "ZILUSDT", got)
	want := restTrades(t, srv, "ZILUSDT")
	wi := 0
	for wi < len(want) && want[wi].ID <= after {
		wi++
	}
	for i, id := range got {
		if wi+i >= len(want) || want[wi+i].ID != id {
			t.Fatalf("trade %d: id %d does not match the published sequence", i, id)
		}
	}
	if st := s.Status(); st.Backfill.Missing != 0 {
		t.Fatalf("missing ids: %+v", st.Backfill)
	}
	if !strings.EqualFold(s.Symbols()[0], "ZILUSDT") {
		t.Fatalf("symbols %v", s.Symbols())
	}
	t.Logf("started after id %d: %d trades, %d of them from REST", after, len(got), s.Status().Backfill.Fetched)
}

// Without Sharded a service still needs symbols; with the trade channel a
// start id cannot be honoured.
func TestAddSymbolFromRefusals(t *testing.T) {
	if _, err := service.New(service.Config{}); err == nil {
		t.Fatal("a service with no symbols and not sharded was accepted")
	}
	s, err := service.New(service.Config{Sharded: true, TradeChannel: "trade"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddSymbolFrom(context.Background(), "BTCUSDT", 42); err == nil {
		t.Fatal("AddSymbolFrom on the trade channel was accepted")
	}
}

// TestBookMetricsConfigRefused: an out-of-range book metrics setting is
// refused by New with the field named, not corrected silently.
func TestBookMetricsConfigRefused(t *testing.T) {
	_, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}, DepthFlow: &depthflow.Config{WallHoldPercent: 150}})
	if err == nil || !strings.Contains(err.Error(), "WallHoldPercent") {
		t.Fatalf("WallHoldPercent 150: %v", err)
	}
	if _, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}, DepthFlow: &depthflow.Config{}}); err != nil {
		t.Fatalf("default book metrics config refused: %v", err)
	}
}
