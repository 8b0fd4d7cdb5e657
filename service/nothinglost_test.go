package service_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/flow"
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
	reps := &barReports{}
	s := newService(t, srv, func(c *service.Config) {
		c.Symbols = start
		c.Flow = testFlow
		c.OnEvent = reps.add
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
		reps.check(t, sym, got)
		checkBookMatchesSim(t, s, srv, sym)
	}
	fs := s.Status()
	if fs.Engine.AmendedBars > 0 && reps.revised == 0 {
		t.Fatalf("%d bars amended, none reported revised", fs.Engine.AmendedBars)
	}
	t.Logf("bars: %d closes and %d revisions reported; %d late trades, %d bars amended", reps.closes, reps.revised, fs.Engine.LateTrades, fs.Engine.AmendedBars)
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

// barReports collects the bars the service reports (OnEvent): closes and
// revisions.
type barReports struct {
	mu              sync.Mutex
	last            map[string]map[time.Duration]map[int64]flow.Bar // symbol, interval, start: the latest report
	closes, revised int
	bad             []string
}

func (r *barReports) add(ev service.Event) {
	if ev.Bar == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]map[time.Duration]map[int64]flow.Bar{}
	}
	if r.last[ev.Symbol] == nil {
		r.last[ev.Symbol] = map[time.Duration]map[int64]flow.Bar{}
	}
	if r.last[ev.Symbol][ev.Interval] == nil {
		r.last[ev.Symbol][ev.Interval] = map[int64]flow.Bar{}
	}
	b := ev.Bar.Clone()
	prev, seen := r.last[ev.Symbol][ev.Interval][b.Start]
	switch {
	case !b.Closed:
		r.bad = append(r.bad, fmt.Sprintf("%s %v bar %d reported open", ev.Symbol, ev.Interval, b.Start))
	case ev.Revised != (b.LateTrades > 0):
		r.bad = append(r.bad, fmt.Sprintf("%s %v bar %d: revised %v with %d late trades", ev.Symbol, ev.Interval, b.Start, ev.Revised, b.LateTrades))
	case ev.Revised && !seen:
		r.bad = append(r.bad, fmt.Sprintf("%s %v bar %d revised before it was reported closed", ev.Symbol, ev.Interval, b.Start))
	case ev.Revised && b.LateTrades <= prev.LateTrades:
		r.bad = append(r.bad, fmt.Sprintf("%s %v bar %d revised without a new late trade", ev.Symbol, ev.Interval, b.Start))
	case !ev.Revised && seen:
		r.bad = append(r.bad, fmt.Sprintf("%s %v bar %d closed twice", ev.Symbol, ev.Interval, b.Start))
	}
	if ev.Revised {
		r.revised++
	} else {
		r.closes++
	}
	r.last[ev.Symbol][ev.Interval][b.Start] = b
}

// check fails unless the last report of every kept closed bar is that
// bar, field for field. Only the newest closed bar may have a revision not
// yet reported: it goes out at the symbol's next event, and the replay has
// ended.
func (r *barReports) check(t *testing.T, sym string, m metrics) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		t.Error(b)
	}
	for iv, bars := range m.Bars {
		for i, b := range bars {
			got, ok := r.last[sym][iv][b.Start]
			if !ok {
				t.Fatalf("%s: %v bar %d kept closed, never reported", sym, iv, b.Start)
			}
			if i == len(bars)-1 && got.LateTrades < b.LateTrades {
				continue // revision pending
			}
			if !reflect.DeepEqual(got, b) {
				t.Fatalf("%s: %v bar %d: last report differs from the kept bar:\n report %+v\n kept   %+v", sym, iv, b.Start, got, b)
			}
		}
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
