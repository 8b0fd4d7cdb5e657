package engine_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// TestDepthFlowWiring runs the spot BTCUSDT recording through an engine
// with book metrics on: every applied update must reach depthflow with its
// BeforeDepth call, every trade must be accepted, and the metrics must be
// ready and agree with the book at the end.
func TestDepthFlowWiring(t *testing.T) {
	e := engine.New(engine.Config{DepthFlow: &depthflow.Config{}})
	feed(t, e, 0, -1)
	s := e.Symbol("BTCUSDT")
	if s == nil || s.Depth == nil || !s.Synced() {
		t.Fatal("symbol, depthflow or sync missing")
	}
	st := s.Depth.Stats()
	bs := s.Sync.Stats()
	if st.MissingBefore != 0 || st.TradesRejected != 0 {
		t.Fatalf("depthflow stats %+v", st)
	}
	// Every update applied live after the snapshot reaches depthflow; the
	// few buffered ones the snapshot replayed do not (depthflow starts from
	// the synced book). The 08 file alone applies some 3,400.
	if st.Updates > int64(bs.Applied) || st.Updates < int64(bs.Applied)-20 || st.Updates < 3000 {
		t.Fatalf("depthflow saw %d updates, the syncer applied %d", st.Updates, bs.Applied)
	}
	if st.Trades != e.Stats().Trades {
		t.Fatalf("depthflow saw %d trades, engine %d", st.Trades, e.Stats().Trades)
	}
	m := s.Depth.Metrics()
	bid, _ := s.Book().BestBid()
	ask, _ := s.Book().BestAsk()
	if !m.Ready || m.BestBid != bid || m.BestAsk != ask || m.BidLevels != s.Book().Len(market.Buy) {
		t.Fatalf("depthflow touch %+v/%+v (%d levels), book %+v/%+v", m.BestBid, m.BestAsk, m.BidLevels, bid, ask)
	}
}

// TestBarCloseHooksChain: a bar-close hook set in Config.Flow keeps running
// next to the engine's own hook and depthflow's, on every closed bar.
func TestBarCloseHooksChain(t *testing.T) {
	var fromFlow, fromEngine int
	cfg := engine.Config{DepthFlow: &depthflow.Config{},
		OnBarClose: func(*engine.Symbol, time.Duration, *flow.Bar) { fromEngine++ }}
	cfg.Flow.OnBarClose = func(time.Duration, *flow.Bar) { fromFlow++ }
	e := engine.New(cfg)
	feed(t, e, 0, -1)
	if fromFlow == 0 || fromFlow != fromEngine {
		t.Fatalf("Config.Flow.OnBarClose saw %d bars, Config.OnBarClose %d", fromFlow, fromEngine)
	}
}
