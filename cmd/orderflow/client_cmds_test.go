package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// clientTestAPI replays the real BTCUSDT recording through a service and
// serves its API on loopback: what `orderflow run` would serve.
func clientTestAPI(t *testing.T) (string, *service.Service, *sim.Server, *api.Server) {
	t.Helper()
	runTestNoLeaks(t)
	dir := filepath.Dir(runTestRecording())
	srv, err := sim.New(sim.Config{Files: []string{filepath.Join(dir, "hft-spot-btcusdt-20240808.txt.gz"),
		filepath.Join(dir, "hft-spot-btcusdt-20240809.txt.gz")}, Speed: -1, Paused: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ws, rest := srv.URL()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}, Market: market.Spot, WSURL: ws, RESTURL: rest,
		Logger: log, Flow: flow.Config{LargeNotional: fixed.MustParse("100000")}})
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(svc, api.Options{Token: "tok", Logger: log})
	hs := httptest.NewServer(a)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	runTestWait(t, "streams connected", 10*time.Second, func() bool {
		st := svc.Status()
		return len(st.Streams) > 0 && st.Streams[0].State == "connected"
	})
	return hs.URL, svc, srv, a
}

func TestClientCommands(t *testing.T) {
	url, svc, srv, a := clientTestAPI(t)
	// watch --json runs through the whole replay and sees its trades.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	wenv, wout, _ := runTestEnv(nil)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- runWatch(watchCtx, wenv, []string{"BTCUSDT", "--api", url, "--token", "tok", "--json"})
	}()
	runTestWait(t, "watch subscribed", 5*time.Second, func() bool { return a.Hub().Stats().Subscribers == 1 })
	srv.Play()
	select {
	case <-srv.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("replay did not finish")
	}
	// The recording's last trade is at 2024-08-09 00:05:05.800 UTC.
	runTestWait(t, "the last trade processed", 10*time.Second, func() bool {
		st := svc.Status()
		return st.Ready() && st.Symbols[0].LastTime == 1723161905800
	})
	var totals flow.Totals
	var large int
	_ = svc.ViewSymbol("BTCUSDT", func(s *engine.Symbol) error {
		totals = s.Flow.Totals()
		large = len(s.Flow.Trades(flow.TradeQuery{MinNotional: fixed.MustParse("100000")}, nil))
		return nil
	})
	// An unpaced replay outruns a JSON-printing reader: the
	// messages it skipped are announced ("dropped") and add up with those
	// it got to what the service saw.
	var seen, told int64
	runTestWait(t, "watch saw or was told of every trade", 10*time.Second, func() bool {
		seen, told = 0, 0
		for _, line := range strings.Split(wout.String(), "\n") {
			var ev client.Event
			if json.Unmarshal([]byte(line), &ev) != nil {
				continue
			}
			switch ev.Type {
			case "trade":
				seen++
			case "dropped":
				told += ev.Count
			}
		}
		return seen+told >= totals.Trades && uint64(told) == a.Hub().Stats().Dropped
	})
	if seen > totals.Trades || seen == 0 {
		t.Fatalf("watch saw %d trades, the service %d", seen, totals.Trades)
	}
	stopWatch()
	if err := <-watchDone; err != nil {
		t.Fatalf("watch: %v", err)
	}

	run := func(args ...string) string {
		t.Helper()
		env, out, errOut := runTestEnv(map[string]string{"ORDERFLOW_API": url, "ORDERFLOW_TOKEN": "tok"})
		if code := runMain(env, args); code != 0 {
			t.Fatalf("orderflow %v: exit %d: %s", args, code, errOut.String())
		}
		return out.String()
	}
	t.Run("MetricsJSON", func(t *testing.T) {
		var m client.Metrics
		if err := json.Unmarshal([]byte(run("metrics", "BTCUSDT", "--window", "5m", "--json")), &m); err != nil {
			t.Fatal(err)
		}
		if m.Totals.Trades != totals.Trades || string(m.Totals.Delta) != totals.Delta.String() || len(m.Windows) != 1 {
			t.Errorf("metrics %+v, service totals %d trades delta %s", m.Totals, totals.Trades, totals.Delta)
		}
	})
	t.Run("MetricsTable", func(t *testing.T) {
		out := run("metrics", "BTCUSDT")
		for _, w := range []string{"BTCUSDT (spot)", "delta " + totals.Delta.String(), "WINDOW", "15m"} {
			if !strings.Contains(out, w) {
				t.Errorf("table lacks %q:\n%s", w, out)
			}
		}
	})
	t.Run("TradesMinNotional", func(t *testing.T) {
		var tr client.Trades
		if err := json.Unmarshal([]byte(run("trades", "--min-notional", "100000", "--limit", "10000", "--json")), &tr); err != nil {
			t.Fatal(err)
		}
		if tr.Count != large || tr.Count == 0 {
			t.Fatalf("%d trades of 100,000 or more, the service holds %d", tr.Count, large)
		}
		min := big.NewRat(100000, 1)
		for _, x := range tr.Trades {
			if n, _ := x.Notional.Rat(); n.Cmp(min) < 0 {
				t.Errorf("trade %d notional %s below 100000", x.ID, x.Notional)
			}
		}
		if table := run("trades", "--min-notional", "100000"); !strings.Contains(table, "NOTIONAL") {
			t.Errorf("table:\n%s", table)
		}
	})
	t.Run("Book", func(t *testing.T) {
		var b client.Book
		if err := json.Unmarshal([]byte(run("book", "--depth", "3", "--json")), &b); err != nil {
			t.Fatal(err)
		}
		var best market.Level
		_ = svc.ViewSymbol("BTCUSDT", func(s *engine.Symbol) error { best, _ = s.Book().BestBid(); return nil })
		if len(b.Bids) != 3 || b.BestBid == nil || string(b.BestBid.Price) != best.Price.String() {
			t.Errorf("book %+v, best bid %v", b, best)
		}
		if table := run("book", "BTCUSDT", "--bands", "10,25"); !strings.Contains(table, "IMBALANCE") {
			t.Errorf("table:\n%s", table)
		}
	})
	t.Run("Status", func(t *testing.T) {
		out := run("status")
		if !strings.Contains(out, "service running") || !strings.Contains(out, "BTCUSDT") {
			t.Errorf("status:\n%s", out)
		}
	})
	t.Run("WrongToken", func(t *testing.T) {
		env, _, errOut := runTestEnv(nil)
		if code := runMain(env, []string{"status", "--api", url, "--token", "bad"}); code != 1 || !strings.Contains(errOut.String(), "unauthorized") {
			t.Errorf("exit %d: %s", code, errOut.String())
		}
	})
	t.Run("BadWindow", func(t *testing.T) {
		env, _, errOut := runTestEnv(map[string]string{"ORDERFLOW_API": url, "ORDERFLOW_TOKEN": "tok"})
		if code := runMain(env, []string{"metrics", "BTCUSDT", "--window", "7m"}); code != 1 || !strings.Contains(errOut.String(), "available: 1m, 5m, 15m, 1h") {
			t.Errorf("exit %d: %s", code, errOut.String())
		}
	})
}
