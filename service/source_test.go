package service_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/engine/enginetest"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// recordingSource publishes a recording through the frame path of its own
// engine (enginetest.Publish) into the sink, as the bus would deliver it,
// then waits for the end of the run. done is closed once the recording is
// through; pub is the publishing engine.
type recordingSource struct {
	files    []string
	cfg      engine.Config
	pub      *engine.Engine
	done     chan struct{}
	rejected int
	sink     *service.Sink
	changes  atomic.Int32
}

func (s *recordingSource) Name() string { return "recording" }

func (s *recordingSource) Run(ctx context.Context, sink *service.Sink) error {
	s.sink = sink
	sink.SetConnected(true)
	pub, err := enginetest.Publish(s.cfg, s.files, enginetest.Outputs{
		Trade: func(_ *engine.Symbol, t *market.Trade) {
			if err := sink.Trade(t); err != nil {
				s.rejected++
			}
		},
		Book: func(_ *engine.Symbol, snap *market.DepthSnapshot, floor, ceil fixed.Dec) {
			if _, err := sink.LoadBook(snap, floor, ceil, false); err != nil {
				s.rejected++
			}
		},
		Delta: func(_ *engine.Symbol, u *market.DepthUpdate) {
			if _, err := sink.Delta(u); err != nil {
				s.rejected++
			}
		},
	})
	s.pub = pub
	close(s.done)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sink.SymbolsChanged():
			s.changes.Add(1)
		}
	}
}

// runRecordingSource starts a service whose Source is a recordingSource
// replaying spot10 with 1m bars (cfg's Source and Flow are set), and waits
// until the source has delivered the whole recording. The service is
// stopped at cleanup.
func runRecordingSource(t *testing.T, cfg service.Config) (*service.Service, *recordingSource) {
	t.Helper()
	fc := flow.Config{BarIntervals: []time.Duration{time.Minute}}
	src := &recordingSource{files: spot10, cfg: engine.Config{Flow: fc, Market: market.Spot, MarketKnown: true}, done: make(chan struct{})}
	cfg.Source, cfg.Flow = src, fc
	s, err := service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopService(t, s) })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-src.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the source did not finish the recording")
	}
	return s, src
}

// TestSourceDrivesService runs a service whose Source replays recordings
// as a bus would deliver them: no connection, no REST; the service's
// metrics and books (read through ViewSymbol, as the API reads them) must
// equal the publishing frame-path engine's, Status must show the source
// connected and every book synced, and a periodic full book equal to the
// book must change nothing.
func TestSourceDrivesService(t *testing.T) {
	syms := []string{"DENTUSDT", "ZILUSDT", "MANAUSDT", "AXSBNB", "ETHBRL", "BTCSTUSDT", "QTUMETH", "BTCAUD", "RENBTCETH", "NEOUSDC"}
	s, src := runRecordingSource(t, service.Config{Symbols: syms[:9], Logger: testLogger(t)})
	st := s.Status()
	if !st.Ready() || len(st.Streams) != 1 || st.Streams[0].Name != "recording" {
		t.Fatalf("status not ready with the source: %+v", st)
	}
	// NEOUSDC is in the recording, not in the set: its events are counted
	// and dropped.
	if st.Engine.UnknownSymbol == 0 || src.rejected == 0 {
		t.Errorf("events of a symbol outside the set: %d counted, %d refused", st.Engine.UnknownSymbol, src.rejected)
	}
	var trades int64
	for _, name := range syms[:9] {
		a := src.pub.Symbol(name)
		var got enginetest.State
		if err := s.ViewSymbol(name, func(b *engine.Symbol) error {
			got = enginetest.Capture(b, enginetest.Options{NoHistory: true})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := enginetest.Capture(a, enginetest.Options{NoHistory: true})
		if !want.Synced {
			t.Fatalf("%s: book not synced on the frame path", name)
		}
		trades += want.Totals.Trades
		if d := enginetest.Diff(want, got); d != nil {
			t.Errorf("%s: service fed by the source differs from the frame path:\n%v", name, d)
		}
	}
	if trades < 1000 {
		t.Fatalf("only %d trades compared", trades)
	}
	// A periodic full book equal to the book leaves it alone.
	a := src.pub.Symbol("DENTUSDT")
	var snap market.DepthSnapshot
	a.Book().Snapshot(0, &snap)
	snap.Symbol = "DENTUSDT"
	floor, ceil := a.Book().KnownRange()
	if loaded, err := src.sink.LoadBook(&snap, floor, ceil, true); loaded || err != nil {
		t.Fatalf("an equal periodic full book: loaded %v, %v", loaded, err)
	}
	// One that differs (a level removed) replaces the book and is counted.
	snap.Bids = snap.Bids[1:]
	if loaded, err := src.sink.LoadBook(&snap, floor, ceil, true); !loaded || err != nil || src.sink.Repairs() != 1 {
		t.Fatalf("a differing periodic full book: loaded %v, %v, %d repairs", loaded, err, src.sink.Repairs())
	}
	if err := s.ViewSymbol("DENTUSDT", func(b *engine.Symbol) error {
		if best, _ := b.Book().BestBid(); best != snap.Bids[0] {
			t.Errorf("best bid %v after the repair, want %v", best, snap.Bids[0])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSymbol(context.Background(), "NEOUSDC"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the source told of the new symbol", 10*time.Second, func() bool { return src.changes.Load() > 0 })
	if !slices.Contains(src.sink.Symbols(), "NEOUSDC") {
		t.Fatalf("sink symbols %v without the added one", src.sink.Symbols())
	}
	// A handle bound to this addition is refused once the symbol is
	// removed and added again: a consumer of the old addition cannot write
	// into the new state.
	h, ok := src.sink.Symbol("NEOUSDC")
	if !ok || !h.Current() {
		t.Fatal("no current handle for an added symbol")
	}
	if err := s.RemoveSymbol(context.Background(), "NEOUSDC"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSymbol(context.Background(), "NEOUSDC"); err != nil {
		t.Fatal(err)
	}
	// NEOUSDC has no trade in the recording: a DENTUSDT one stands in.
	neo := src.pub.Symbol("DENTUSDT").Flow.Trades(flow.TradeQuery{}, nil)
	if len(neo) == 0 {
		t.Fatal("no DENTUSDT trade in the recording")
	}
	neo[0].Symbol = "NEOUSDC"
	if h.Current() || !errors.Is(h.Trade(&neo[0]), service.ErrSourceUnknownSymbol) {
		t.Fatalf("a handle of a removed addition still applies (current %v)", h.Current())
	}
	if h2, ok := src.sink.Symbol("NEOUSDC"); !ok || h2.Trade(&neo[0]) != nil || h2.LastTrade() != neo[0].ID {
		t.Fatal("the new addition's handle does not apply")
	}
	if err := s.RemoveSymbol(context.Background(), "NEOUSDC"); err != nil {
		t.Fatal(err)
	}
	if err := s.ViewSymbol("NEOUSDC", func(*engine.Symbol) error { return nil }); !errors.Is(err, service.ErrUnknownSymbol) {
		t.Fatalf("removed symbol still there: %v", err)
	}
}
