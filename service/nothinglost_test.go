package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// withAggTrades drops the recorded symbols without aggTrades (the
// cryptofeed spot file has none for NEOUSDC and RENBTCETH), for which the
// simulator serves no aggTrade stream.
func withAggTrades(syms []string) []string {
	return slices.DeleteFunc(slices.Clone(syms), func(s string) bool {
		return strings.HasPrefix(s, "NEO") && strings.HasSuffix(s, "USDC") || strings.HasPrefix(s, "RENBTC")
	})
}

// replayScenario is one replay of a recording with connection drops.
type replayScenario struct {
	name  string
	files []string
	speed float64
	modes []sim.DropMode // cycled through, one DropAll per interval
	every time.Duration
	// addLive, if set, is left out at start and added with AddSymbol once
	// the replay runs.
	addLive string
}

// runReplayWithDrops replays sc's recording through a service while the
// simulator drops every connection again and again, then checks that the
// service holds exactly what an uninterrupted run over the same trades
// holds (ids, totals, closed and current bars) and that every book equals
// the simulator's.
func runReplayWithDrops(t *testing.T, sc replayScenario) {
	srv := startSim(t, sim.Config{Recording: recording(t, sc.files...), Speed: sc.speed, Paused: true})
	syms := withAggTrades(srv.Symbols())
	start := slices.DeleteFunc(slices.Clone(syms), func(s string) bool { return s == sc.addLive })
	s := newService(t, srv, func(c *service.Config) {
		c.Symbols = start
		c.Flow = testFlow
		c.BackoffMin, c.BackoffMax = 5*time.Millisecond, 50*time.Millisecond
		c.SnapshotLimit = 100 // weight 5 (spot) or 5 (USD-M): resyncs after every drop stay cheap
	})
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stopService(t, s)
	waitStatus(t, s, "connected", 10*time.Second, connected)
	srv.Play()
	tick := time.NewTicker(sc.every)
	defer tick.Stop()
	drops := 0
	added := sc.addLive == ""
replay:
	for {
		select {
		case <-srv.Done():
			break replay
		case <-tick.C:
		}
		if !added {
			if err := s.AddSymbol(ctx, sc.addLive); err != nil {
				t.Fatal(err)
			}
			added = true
			continue
		}
		if n := srv.Faults().DropAll(sc.modes[drops%len(sc.modes)]); n > 0 {
			drops++
		}
	}
	// A last drop after the end: trades and depth published before it are
	// only recoverable by the catch-up and resync a reconnect starts.
	srv.Faults().DropAll(sc.modes[drops%len(sc.modes)])
	drops++
	st := srv.Stats()
	t.Logf("%d drops; simulator: %d connections, server closes %v, %d events", drops, st.ConnsTotal, st.ServerClosed, st.Events)
	if drops < 5 {
		t.Fatalf("only %d drops during the replay", drops)
	}
	waitStatus(t, s, "reconnected and every book synced", 30*time.Second, service.Status.Ready)
	for _, sym := range syms {
		want := restTrades(t, srv, sym)
		if len(want) == 0 {
			t.Fatalf("%s: the simulator published no aggTrade", sym)
		}
		last := want[len(want)-1].ID
		waitFor(t, sym+" caught up to the last trade", 20*time.Second, func() bool {
			return serviceMetrics(t, s, sym).Totals.LastID == last
		})
		got := serviceMetrics(t, s, sym)
		if sym == sc.addLive {
			// Added mid-replay: its warm start began with the latest 1,000
			// trades then, so compare from its first trade on.
			i := slices.IndexFunc(want, func(tr marketTrade) bool { return tr.ID == got.IDs[0] })
			if i < 0 {
				t.Fatalf("%s: first trade %d not published", sym, got.IDs[0])
			}
			want = want[i:]
		}
		checkConsecutive(t, sym, got.IDs)
		compareMetrics(t, sym, got, referenceMetrics(t, want, sym, testFlow))
		checkBookMatchesSim(t, s, srv, sym)
	}
	fs := s.Status()
	var reconnects uint64
	for _, c := range fs.Streams {
		reconnects += c.Reconnects
	}
	t.Logf("service: %d reconnects, backfill %+v, engine %+v", reconnects, fs.Backfill, fs.Engine)
	if fs.Backfill.Missing != 0 || fs.Engine.TradeRejected != 0 || fs.Engine.DecodeErrors != 0 {
		t.Fatalf("missing %d, rejected %d, decode errors %d", fs.Backfill.Missing, fs.Engine.TradeRejected, fs.Engine.DecodeErrors)
	}
	if reconnects < uint64(drops)*uint64(len(fs.Streams))/2 {
		t.Fatalf("%d reconnects for %d drops of %d connections", reconnects, drops, len(fs.Streams))
	}
}

// TestDropsLoseNoTrade is issue 3's must-show: after the simulator drops
// the connections repeatedly, in each way it can, no aggregate trade id is
// missing or duplicated, the metrics equal an uninterrupted run's and the
// books resync to the simulator's.
func TestDropsLoseNoTrade(t *testing.T) {
	all := []sim.DropMode{sim.DropClean, sim.DropReset, sim.DropMidFrame}
	for _, sc := range []replayScenario{
		{name: "CleanClose", files: spot10, speed: 40, modes: all[0:1], every: 150 * time.Millisecond},
		{name: "TCPReset", files: spot10, speed: 40, modes: all[1:2], every: 150 * time.Millisecond},
		{name: "MidFrame", files: spot10, speed: 40, modes: all[2:3], every: 150 * time.Millisecond},
		{name: "MixedBusyBTCUSDT", files: spotBTC, speed: 200, modes: all, every: 200 * time.Millisecond},
	} {
		t.Run(sc.name, func(t *testing.T) { runReplayWithDrops(t, sc) })
	}
}
