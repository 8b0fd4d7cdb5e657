package bus_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/engine/enginetest"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/stacktest"
)

var consumerFlow = flow.Config{BarIntervals: []time.Duration{time.Minute, 5 * time.Minute}}

// stateOf reads a symbol's state from a service.
//
// Each bar's LateTrades is cleared (and logged): it counts the trades
// that arrived after the bar had closed by the watermark, which depends
// on how one run interleaved its streams (USD-M's trades and depth come
// on two connections), while every other field of the bar is the same as
// if all had come in time (flow.Bar).
func stateOf(t *testing.T, s *service.Service, sym string) enginetest.State {
	t.Helper()
	var st enginetest.State
	if err := s.ViewSymbol(sym, func(e *engine.Symbol) error {
		st = enginetest.Capture(e, enginetest.Options{NoHistory: true, NoDepthFlow: true})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var late int64
	for iv, bars := range st.Bars {
		bars = slices.Clone(bars)
		for i := range bars {
			late += bars[i].LateTrades
			bars[i].LateTrades = 0
		}
		st.Bars[iv] = bars
	}
	if late > 0 {
		t.Logf("%s: %d late trades over its bars (not compared)", sym, late)
	}
	return st
}

// caughtUp waits until a consumer's symbol has the publisher's last trade
// and book update id.
func caughtUp(t *testing.T, what string, s *service.Service, sym string, want enginetest.State) {
	t.Helper()
	stacktest.WaitFor(t, what, 120*time.Second, func() bool {
		var last, u int64
		_ = s.ViewSymbol(sym, func(e *engine.Symbol) error {
			last = e.Flow.Totals().LastID
			if e.Synced() {
				u = e.Book().UpdateID()
			}
			return nil
		})
		return last == want.Totals.LastID && u == want.UpdateID
	})
}

// TestConsumersEqualSingleProcess replays real recordings (spot and
// USD-M) through the simulator into a feed service whose events the
// Publisher sends to an embedded JetStream; query-tier services read them
// back with the bus Source. The feed service is the single-process run:
// each consumer must end with its exact state (totals, rolling windows,
// closed and open bars with footprints, session profile, large trades,
// trade history, the whole book with its known range):
//   - LiveConsumer follows the bus while the recording streams;
//   - RestartedConsumer is the same service restarted afterwards: a fresh
//     engine rebuilt from the stream's retention;
//   - LateConsumer is a new instance started after the feed stopped;
//   - ReaddedSymbol: its symbol removed and added again at run time.
//
// With -short only the spot recording runs.
func TestConsumersEqualSingleProcess(t *testing.T) {
	cases := []struct {
		name, file string
		usdm       bool
	}{
		{"SpotBTCUSDT", "hft-spot-btcusdt-20240808.txt.gz", false},
		{"USDMBTCUSDT", "hft-usdm-btcusdt-20240808.txt.gz", true},
	}
	if testing.Short() {
		cases = cases[:1] // the race stage: spot only
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := stacktest.Testdata(tc.file)
			want, lastU := recordedTrades(t, file, tc.usdm)
			b := mustBus(t, bus.StreamConfig{})
			f := stacktest.NewFeed(t, stacktest.FeedConfig{File: file, Conn: b.nc,
				Publisher: bus.PublisherConfig{SnapshotEvery: 5 * time.Second}, Flow: consumerFlow})
			feedSvc, sym, kind := f.Service, f.Sim.Symbols()[0], f.Sim.Market()

			liveSrc, err := bus.NewSource(bus.SourceConfig{Conn: b.nc, Name: "bus", Logger: stacktest.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			live, err := service.New(service.Config{Symbols: []string{sym}, Market: kind, Source: liveSrc, Flow: consumerFlow,
				LogTrades: -1, Logger: stacktest.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := live.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer stacktest.StopService(t, live)

			// The live consumer runs before the feed starts: it follows the
			// bus while the recording streams.
			f.Start(t)
			f.WaitCaughtUp(t, want[len(want)-1].ID, lastU)
			single := stateOf(t, feedSvc, sym)
			f.StopService(t)
			if single.Totals.Trades < 1000 || len(single.Bars[time.Minute]) < 3 || !single.Synced {
				t.Fatalf("too little to compare: %d trades, %d bars, synced %v", single.Totals.Trades, len(single.Bars[time.Minute]), single.Synced)
			}

			check := func(name string, s *service.Service, src *bus.Source, before bus.SourceStats) {
				t.Helper()
				start := time.Now()
				caughtUp(t, name+" caught up", s, sym, single)
				took := time.Since(start)
				if d := enginetest.Diff(single, stateOf(t, s, sym)); d != nil {
					t.Errorf("%s differs from the single-process run:\n%v", name, d)
				}
				st := src.Stats()
				t.Logf("%s: %+v", name, st)
				if name != "LiveConsumer" { // the others replay the whole retention from their start
					t.Logf("%s: replayed %d messages in %v (%.0f messages/s)", name, st.Messages-before.Messages,
						took.Round(time.Millisecond), float64(st.Messages-before.Messages)/took.Seconds())
				}
				if st.Invalid != before.Invalid || st.Gaps != before.Gaps || st.Duplicates != before.Duplicates || st.Trades-before.Trades != int64(len(want)) {
					t.Errorf("%s: source stats %+v, want %d trades and nothing refused", name, st, len(want))
				}
				if !s.Status().Ready() {
					t.Errorf("%s: not ready: %+v", name, s.Status())
				}
			}
			check("LiveConsumer", live, liveSrc, bus.SourceStats{})
			// A restart is a new run with a fresh engine: the Source (the
			// same value, whose counters go on) replays the retention.
			before := liveSrc.Stats()
			if err := live.Restart(context.Background()); err != nil {
				t.Fatal(err)
			}
			check("RestartedConsumer", live, liveSrc, before)

			lateSrc, err := bus.NewSource(bus.SourceConfig{Conn: b.nc, Name: "bus", Logger: stacktest.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			late, err := service.New(service.Config{Symbols: []string{sym}, Market: kind, Source: lateSrc, Flow: consumerFlow,
				LogTrades: -1, Logger: stacktest.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := late.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer stacktest.StopService(t, late)
			check("LateConsumer", late, lateSrc, bus.SourceStats{})
			// A symbol removed and added again at run time gets a new
			// consumer that replays its retention into fresh state.
			if err := late.RemoveSymbol(context.Background(), sym); err != nil {
				t.Fatal(err)
			}
			before = lateSrc.Stats()
			if err := late.AddSymbol(context.Background(), sym); err != nil {
				t.Fatal(err)
			}
			check("ReaddedSymbol", late, lateSrc, before)
		})
	}
}
