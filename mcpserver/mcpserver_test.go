package mcpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/mcpserver"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// replayed serves the real BTCUSDT recording through a service and
// returns its API server as the tools' Source (in-process, as `orderflow
// mcp` without --api does).
func replayed(t *testing.T) *api.Server {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "testdata", "binance")
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
	log := slog.New(slog.DiscardHandler)
	svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}, Market: market.Spot, WSURL: ws, RESTURL: rest,
		Logger: log, Flow: flow.Config{LargeNotional: fixed.MustParse("100000")}})
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(svc, api.Options{Logger: log})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		_ = svc.Stop(context.Background())
	})
	wait := func(what string, cond func() bool) {
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("streams connected", func() bool {
		st := svc.Status()
		return len(st.Streams) > 0 && st.Streams[0].State == "connected"
	})
	srv.Play()
	<-srv.Done()
	wait("the last trade (2024-08-09 00:05:05.800 UTC)", func() bool {
		st := svc.Status()
		return st.Ready() && st.Symbols[0].LastTime == 1723161905800
	})
	return a
}

// connect runs the server and the SDK's client over the in-memory
// transport, as `orderflow mcp` does over stdio.
func connect(t *testing.T, src mcpserver.Source) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, ct := mcp.NewInMemoryTransports()
	srv := mcpserver.New(src, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, st) }()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		cancel()
		<-done
	})
	return cs
}

func TestToolsOverInMemoryTransport(t *testing.T) {
	src := replayed(t)
	cs := connect(t, src)
	ctx := context.Background()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]string{}
	for _, tl := range tools.Tools {
		b, _ := json.Marshal(tl.InputSchema)
		schemas[tl.Name] = string(b)
		if tl.Description == "" {
			t.Errorf("%s has no description", tl.Name)
		}
	}
	if len(schemas) != 8 || !strings.Contains(schemas[mcpserver.ToolOrderBook], `"bands"`) ||
		!strings.Contains(schemas[mcpserver.ToolOrderFlow], `"required":["symbol"]`) {
		t.Errorf("schemas %v", schemas)
	}
	// What the tools must quote: the source's own answers.
	m, _ := src.Metrics(ctx, "BTCUSDT", client.MetricsQuery{})
	bk, _ := src.Book(ctx, "BTCUSDT", client.BookQuery{Depth: 1, Bands: []int{25}})
	lt, _ := src.LargeTrades(ctx, "BTCUSDT", client.LargeTradesQuery{Limit: 20})
	fp, _ := src.Bars(ctx, "BTCUSDT", client.BarsQuery{Limit: 3, Footprint: true})
	if len(lt.Trades) == 0 || len(fp.Bars) != 3 || len(m.Windows) != 4 {
		t.Fatalf("source: %d large trades, %d bars, %d windows", len(lt.Trades), len(fp.Bars), len(m.Windows))
	}
	newest, _ := src.BookHistory(ctx, "BTCUSDT", client.BookHistoryQuery{At: 1 << 62, Depth: 3})
	past, _ := src.BookHistory(ctx, "BTCUSDT", client.BookHistoryQuery{At: newest.Frames[0].Time - 120_000, Depth: 3})
	if len(newest.Frames) != 1 || len(past.Frames) != 1 {
		t.Fatalf("source history: newest %+v, two minutes before %+v", newest, past)
	}
	// This service runs without book metrics: the book-metrics routes say
	// so with their own code, over HTTP too.
	if _, err := src.Walls(ctx, "BTCUSDT", client.WallsQuery{}); !client.IsCode(err, "book_metrics_off") {
		t.Errorf("walls without book metrics: %v, want book_metrics_off", err)
	}
	hs := httptest.NewServer(src)
	defer hs.Close()
	cl, err := client.New(hs.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"walls":     func() error { _, err := cl.Walls(ctx, "BTCUSDT", client.WallsQuery{}); return err },
		"liquidity": func() error { _, err := cl.Liquidity(ctx, "BTCUSDT", client.LiquidityQuery{}); return err },
	} {
		var ce *client.Error
		if err := call(); !errors.As(err, &ce) || ce.Code != "book_metrics_off" || ce.Status != http.StatusConflict {
			t.Errorf("%s over HTTP without book metrics: %v, want 409 book_metrics_off", name, err)
		}
	}
	last := lt.Trades[len(lt.Trades)-1]
	w := m.Windows[0] // 1m: complete
	band := bk.Bands[0]
	fpLevel := fp.Bars[2].Footprint[0]
	cases := []struct {
		name string
		tool string
		args map[string]any
		want []string // in the text content
		err  bool
	}{
		{"Symbols", mcpserver.ToolSymbols, map[string]any{}, []string{`"trades":11348`}, false},
		{"OrderFlow", mcpserver.ToolOrderFlow, map[string]any{"symbol": "BTCUSDT"}, []string{`"delta":"-28.91328"`, `"window":"15m"`}, false},
		{"Large", mcpserver.ToolLargeTrades, map[string]any{"symbol": "BTCUSDT"}, []string{`"notional":"` + string(last.Notional) + `"`}, false},
		{"Book", mcpserver.ToolOrderBook, map[string]any{"symbol": "BTCUSDT", "bands": []int{25}}, []string{`"imbalance":"` + string(band.Imbalance) + `"`}, false},
		{"Footprint", mcpserver.ToolFootprint, map[string]any{"symbol": "BTCUSDT"}, []string{`"price":"` + string(fpLevel.Price) + `"`, `"start":` + itoa(fp.Bars[2].Start)}, false},
		{"Summary", mcpserver.ToolSummary, map[string]any{"symbol": "BTCUSDT"}, []string{
			"Over the last 1m (complete): " + itoa(w.Trades) + " trades, volume " + string(w.Volume) + ", taker buys " + string(w.BuyVolume) + " vs sells " + string(w.SellVolume) + ", delta " + string(w.Delta),
			"Since start: 11348 trades, delta -28.91328, CVD -28.91328",
			"imbalance " + string(band.Imbalance),
			last.Side + " " + string(last.Qty) + " @ " + string(last.Price) + " (" + string(last.Notional) + " notional)."}, false},
		{"BookHistoryMinutesAgo", mcpserver.ToolBookHistory, map[string]any{"symbol": "BTCUSDT", "minutes_ago": 2, "depth": 3}, []string{
			`"time":` + itoa(newest.Frames[0].Time-120_000) + `,"walls_known":false`,
			`"time":` + itoa(past.Frames[0].Time) + `,"update_id":` + itoa(past.Frames[0].UpdateID), `"price":"` + string(past.Frames[0].Bids[2].Price) + `"`,
			`"walls_known":false`, "book metrics are off"}, false},
		{"BookHistoryBothTimes", mcpserver.ToolBookHistory, map[string]any{"symbol": "BTCUSDT", "minutes_ago": 2, "at": 5}, []string{"not both"}, true},
		{"UnknownSymbol", mcpserver.ToolOrderFlow, map[string]any{"symbol": "DOGEUSDT"}, []string{"unknown symbol: DOGEUSDT"}, true},
		{"BadWindow", mcpserver.ToolOrderFlow, map[string]any{"symbol": "BTCUSDT", "window": "7m"}, []string{"available: 1m, 5m, 15m, 1h"}, true},
		{"MissingSymbol", mcpserver.ToolSummary, map[string]any{"symbol": ""}, []string{"symbol is required"}, true},
		{"ResetCVDNegative", mcpserver.ToolResetCVD, map[string]any{"symbol": "BTCUSDT", "at": -5}, []string{"at -5"}, true},
		// Last: it changes the service's CVD. Without at: now, the last
		// trade's time (the replay is over).
		{"ResetCVD", mcpserver.ToolResetCVD, map[string]any{"symbol": "btcusdt"}, []string{`"symbol":"BTCUSDT"`, `"cvd_reset_at":1723161905800`}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError != c.err {
				t.Fatalf("IsError %v, want %v: %v", res.IsError, c.err, res.Content)
			}
			var text string
			for _, ct := range res.Content {
				if tc, ok := ct.(*mcp.TextContent); ok {
					text += tc.Text
				}
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s lacks %q:\n%.2000s", c.tool, w, text)
				}
			}
		})
	}
	// After reset_cvd the CVD counts from the last trade: zero; delta
	// still counts every trade.
	if m2, err := src.Metrics(ctx, "BTCUSDT", client.MetricsQuery{}); err != nil || m2.Totals.CVD != "0" || m2.Totals.CVDResetAt != 1723161905800 || m2.Totals.Delta != "-28.91328" {
		t.Errorf("after reset_cvd: totals %+v, err %v; want cvd 0 from 1723161905800, delta -28.91328", m2.Totals, err)
	}
	// A schema violation is refused by the SDK before the handler runs.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: mcpserver.ToolLargeTrades, Arguments: map[string]any{"symbol": "BTCUSDT", "limit": "many"}})
	if err == nil && !res.IsError {
		t.Errorf("a string limit was accepted: %v", res.Content)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
