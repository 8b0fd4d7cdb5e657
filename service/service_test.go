package service_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testdata(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "binance", name)
}

var spotBTC = []string{testdata("hft-spot-btcusdt-20240808.txt.gz"), testdata("hft-spot-btcusdt-20240809.txt.gz")}

// startSim starts a paused simulator on loopback and closes it at cleanup.
func startSim(t *testing.T, cfg sim.Config) *sim.Server {
	t.Helper()
	cfg.Paused = true
	srv, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("sim close: %v", err)
		}
	})
	return srv
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newService(t *testing.T, srv *sim.Server, mod func(*service.Config)) *service.Service {
	t.Helper()
	ws, rest := srv.URL()
	cfg := service.Config{Symbols: []string{"BTCUSDT"}, Market: market.Spot, WSURL: ws, RESTURL: rest, Logger: testLogger(t)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEndToEndAgainstSimulator is the original checklist: connections
// complete, trade history populates, metrics become available, the book
// syncs, Stop ends every task.
func TestEndToEndAgainstSimulator(t *testing.T) {
	srv := startSim(t, sim.Config{Files: spotBTC, Speed: 400})
	s := newService(t, srv, nil)
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "streams connected", 10*time.Second, func() bool {
		st := s.Status()
		return len(st.Streams) > 0 && st.Streams[0].State == "connected"
	})
	srv.Play()
	select {
	case <-srv.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("replay did not finish")
	}
	// The recording's 19,904 raw trades become this many derived aggTrades;
	// the service must hold every id exactly once, in order.
	waitFor(t, "book synced", 10*time.Second, func() bool { return s.Status().Ready() })
	var ids []int64
	var totals flow.Totals
	err := s.ViewSymbol("BTCUSDT", func(sym *engine.Symbol) error {
		totals = sym.Flow.Totals()
		for _, tr := range sym.Flow.Trades(flow.TradeQuery{}, nil) {
			ids = append(ids, tr.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		t.Fatal("no trades")
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("trade ids not consecutive at %d: %d then %d", i, ids[i-1], ids[i])
		}
	}
	st := s.Status()
	t.Logf("trades %d (history %d), engine %+v, backfill %+v", totals.Trades, len(ids), st.Engine, st.Backfill)
	if st.Backfill.Missing != 0 || st.Engine.DecodeErrors != 0 {
		t.Fatalf("missing %d, decode errors %d", st.Backfill.Missing, st.Engine.DecodeErrors)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if s.State() != service.Stopped {
		t.Fatalf("state %v after Stop", s.State())
	}
}
