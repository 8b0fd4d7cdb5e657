package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// TestUSDMUsesPublicAndMarketPaths: a futures symbol needs two
// connections, depth under /public and aggTrade under /market (the
// simulator, like Binance since 2026, refuses a stream on the wrong path).
// AddSymbol subscribes on both existing connections.
func TestUSDMUsesPublicAndMarketPaths(t *testing.T) {
	srv := startSim(t, sim.Config{Recording: recording(t, usdm5...), Paused: true})
	if srv.Market() != market.USDM {
		t.Fatalf("recording market %v", srv.Market())
	}
	all := srv.Symbols()
	s := newService(t, srv, func(c *service.Config) { c.Symbols = all[:4] })
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stopService(t, s)
	st := waitStatus(t, s, "connected", 10*time.Second, connected)
	check := func(n int) {
		t.Helper()
		paths := map[string]int{}
		for _, c := range st.Streams {
			paths[c.Path] += c.Streams
		}
		if len(st.Streams) != 2 || paths["/public"] != n || paths["/market"] != n {
			t.Fatalf("want /public and /market connections with %d streams each: %+v", n, st.Streams)
		}
	}
	check(4)
	if err := s.AddSymbol(ctx, all[4]); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, s, "connected", 10*time.Second, connected)
	check(5)
	if n := srv.Stats().ConnsTotal; n != 2 {
		t.Fatalf("simulator saw %d connections, want 2", n)
	}
}

// TestUSDMDropsLoseNoTrade: the futures recordings through a USD-M
// service with repeated drops: real aggTrade ids for 5 symbols (cryptofeed)
// and a busy BTCUSDT (hftbacktest, depth with pu at 0 ms), one symbol added
// live. Books resync by the futures rules (pu chain) and match the
// simulator's.
func TestUSDMDropsLoseNoTrade(t *testing.T) {
	all := []sim.DropMode{sim.DropClean, sim.DropReset, sim.DropMidFrame}
	for _, sc := range []replayScenario{
		{name: "Cryptofeed5Symbols", files: usdm5, speed: 40, modes: all, every: 150 * time.Millisecond, addLive: "CTKUSDT"},
		{name: "BusyBTCUSDT", files: usdmBTC, speed: 100, modes: all, every: 200 * time.Millisecond},
	} {
		t.Run(sc.name, func(t *testing.T) { runReplayWithDrops(t, sc) })
	}
}
