// Package e2e holds end-to-end tests that need more than one process: the
// dashboard in a real headless Chromium against the whole stack (the
// Binance simulator replaying real recordings, the service, the API and
// the embedded dashboard on loopback).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/dashboard"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

var update = flag.Bool("update", false, "write the screenshot to docs/dashboard.png (shown by the README)")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	width, height = 1600, 1000
	// speed makes a recorded minute last four seconds: enough closed bars
	// for the charts in half a minute, slow enough for two cores.
	speed = 15
)

// The real recordings the demo replays (testdata/binance/SOURCES.md,
// entries 1 and 2): spot BTCUSDT and ETHUSDT, 2024-08-08 23:54 to
// 2024-08-09 00:05 UTC, on one timeline.
var recordings = []string{
	"hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz",
	"hft-spot-ethusdt-20240808.txt.gz", "hft-spot-ethusdt-20240809.txt.gz",
}

// stack is the service (with book metrics, so walls and book signals),
// its API and the dashboard on one listener, as `orderflow demo` wires
// them.
type stack struct {
	svc  *service.Service
	api  *api.Server
	hs   *http.Server
	url  string
	errc chan error
	cl   *client.Client
}

func startStack(t *testing.T, s *sim.Server, addr string) *stack {
	t.Helper()
	ws, rest := s.URL()
	quiet := slog.New(slog.DiscardHandler)
	svc, err := service.New(service.Config{Symbols: s.Symbols(), Market: s.Market(), WSURL: ws, RESTURL: rest,
		DataDir: t.TempDir(), Logger: quiet, DepthFlow: &depthflow.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(svc, api.Options{Logger: quiet})
	if err := svc.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	// The second stack takes over the first one's address, as a restarted
	// service would: the dashboard reconnects to the same URL.
	var ln net.Listener
	waitFor(t, 10*time.Second, "listen on "+addr, func() (bool, string) {
		ln, err = net.Listen("tcp", addr)
		return err == nil, fmt.Sprint(err)
	})
	st := &stack{svc: svc, api: a, errc: make(chan error, 1), url: "http://" + ln.Addr().String()}
	st.hs = &http.Server{Handler: dashboard.Mount(a), ReadHeaderTimeout: 10 * time.Second}
	st.hs.RegisterOnShutdown(a.Close)
	go func() { st.errc <- st.hs.Serve(ln) }()
	st.cl, err = client.New(st.url, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// stop ends the stack the way a crash or a restart looks to the browser:
// every connection cut at once.
func (st *stack) stop(t *testing.T) {
	t.Helper()
	st.api.Close()
	if err := st.hs.Close(); err != nil {
		t.Errorf("close http: %v", err)
	}
	if err := <-st.errc; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("serve: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.svc.Stop(ctx); err != nil {
		t.Errorf("stop service: %v", err)
	}
}

func dataFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range recordings {
		p := filepath.Join("..", "testdata", "binance", f)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("recording: %v", err)
		}
		out = append(out, p)
	}
	return out
}

// TestDashboard loads the dashboard in headless Chromium against the
// simulator replaying real BTCUSDT and ETHUSDT data, and checks that what
// the charts, the tape, the ladder and the metrics hold is exactly what
// the API serves; then that it reconnects by itself after the service
// restarts, and that the symbol switcher shows the other symbol's data.
func TestDashboard(t *testing.T) {
	s, err := sim.New(sim.Config{Files: dataFiles(t), Speed: speed, Loop: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := startStack(t, s, "127.0.0.1:0")
	stopped := false
	defer func() {
		if !stopped {
			st.stop(t)
		}
	}()

	b := startBrowser(t, width, height)
	b.navigate(t, st.url+"/#BTCUSDT")

	t.Run("LiveData", func(t *testing.T) {
		waitFor(t, 120*time.Second, "live data with closed bars and heatmap columns", func() (bool, string) {
			var v struct {
				Conn      struct{ State string }
				Synced    int
				Bars      int
				Frames    int
				Renders   int
				Symbol    string
				Preloaded int
			}
			if err := b.eval(`(() => { const o = window.__orderflow; return {conn: o.conn, synced: o.synced,
				bars: o.closedBars().length, frames: o.heatmap().stored, renders: o.renders, symbol: o.symbol,
				preloaded: o.heatmap().preloaded}; })()`, &v); err != nil {
				return false, err.Error()
			}
			// Preloaded: the heatmap took the book history at the resync.
			return v.Conn.State == "live" && v.Synced >= 1 && v.Bars >= 5 && v.Frames >= 8 && v.Renders > 0 && v.Symbol == "BTCUSDT" &&
				v.Preloaded > 0, fmt.Sprintf("%+v", v)
		})
	})
	if t.Failed() {
		return
	}

	// Stop the replay so the service, the API and the dashboard settle on
	// the same state, then compare.
	s.Pause()
	quiesce(t, b, st.cl, "BTCUSDT")
	t.Run("ChartsHoldReplayedValues", func(t *testing.T) { checkCharts(t, b, st.cl, "BTCUSDT", true) })
	t.Run("Screenshot", func(t *testing.T) {
		img := b.screenshot(t)
		checkPNG(t, img)
		path := filepath.Join(t.TempDir(), "dashboard.png")
		if *update {
			path = filepath.Join("..", "docs", "dashboard.png")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, img, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(img))
	})

	t.Run("ReconnectsAfterServiceRestart", func(t *testing.T) {
		s.Play()
		addr := strings.TrimPrefix(st.url, "http://")
		st.stop(t)
		stopped = true
		waitFor(t, 30*time.Second, "the dashboard to say it is disconnected", func() (bool, string) {
			var v struct {
				Conn   struct{ State string }
				Banner string
			}
			if err := b.eval(`({conn: window.__orderflow.conn, banner: window.__orderflow.banner})`, &v); err != nil {
				return false, err.Error()
			}
			return v.Conn.State != "live" && strings.Contains(v.Banner, "Not connected to the orderflow service"), fmt.Sprintf("%+v", v)
		})
		var before int
		b.mustEval(t, `window.__orderflow.synced`, &before)
		st = startStack(t, s, addr)
		stopped = false
		waitFor(t, 60*time.Second, "the dashboard to reconnect and resync", func() (bool, string) {
			var v struct {
				Conn     struct{ State string }
				Synced   int
				Connects int
				Banner   string
			}
			if err := b.eval(`({conn: window.__orderflow.conn, synced: window.__orderflow.synced, connects: window.__orderflow.connects, banner: window.__orderflow.banner})`, &v); err != nil {
				return false, err.Error()
			}
			return v.Conn.State == "live" && v.Synced > before && v.Connects >= 2, fmt.Sprintf("%+v", v)
		})
		// The new service has its own bars; wait for it to close some.
		waitFor(t, 60*time.Second, "the restarted service's closed bars", func() (bool, string) {
			bars, err := st.cl.Bars(context.Background(), "BTCUSDT", client.BarsQuery{Limit: 3})
			return err == nil && len(bars.Bars) >= 2, fmt.Sprint(len(bars.Bars), err)
		})
		s.Pause()
		quiesce(t, b, st.cl, "BTCUSDT")
		checkCharts(t, b, st.cl, "BTCUSDT", false)
	})
	if t.Failed() {
		return
	}

	t.Run("SymbolSwitch", func(t *testing.T) {
		var before int
		b.mustEval(t, `window.__orderflow.synced`, &before)
		// Switch while the replay is paused and the service has settled,
		// so the book history the heatmap preloads can be compared with
		// the API's exactly.
		s.Pause()
		settle(t, st.cl, "ETHUSDT")
		b.mustEval(t, `(() => { const s = document.getElementById('symbol'); s.value = 'ETHUSDT';
			s.dispatchEvent(new Event('change')); return s.value; })()`, new(string))
		waitFor(t, 30*time.Second, "ETHUSDT on screen", func() (bool, string) {
			var v struct {
				Symbol string
				Synced int
				Hash   string
			}
			if err := b.eval(`({symbol: window.__orderflow.symbol, synced: window.__orderflow.synced, hash: location.hash})`, &v); err != nil {
				return false, err.Error()
			}
			return v.Symbol == "ETHUSDT" && v.Synced > before && v.Hash == "#ETHUSDT", fmt.Sprintf("%+v", v)
		})
		checkPreload(t, b, st.cl, "ETHUSDT")
		s.Play()
		waitFor(t, 30*time.Second, "ETHUSDT trades and bars pushed live", func() (bool, string) {
			var c map[string]int64
			if err := b.eval(`window.__orderflow.counts()`, &c); err != nil {
				return false, err.Error()
			}
			return c["trades"] >= 50 && c["barPushes"] >= 2, fmt.Sprint(c)
		})
		s.Pause()
		quiesce(t, b, st.cl, "ETHUSDT")
		checkCharts(t, b, st.cl, "ETHUSDT", false)
		checkSeam(t, b, st.cl, "ETHUSDT")
	})
}

// quiesce waits until the dashboard has applied every trade, book state
// and walls answer the (paused) service has. The bound is generous: on a
// loaded machine under -race the service can take half a minute to work
// through the frames sent before the pause.
func quiesce(t *testing.T, b *browser, cl *client.Client, symbol string) {
	t.Helper()
	waitFor(t, 60*time.Second, "the dashboard to catch up with the API", func() (bool, string) {
		m, err := cl.Metrics(context.Background(), symbol, client.MetricsQuery{})
		if err != nil {
			return false, err.Error()
		}
		bk, err := cl.Book(context.Background(), symbol, client.BookQuery{Depth: 10})
		if err != nil {
			return false, err.Error()
		}
		w, err := cl.Walls(context.Background(), symbol, client.WallsQuery{})
		if err != nil {
			return false, err.Error()
		}
		var v struct {
			LastTradeID int64
			Ladder      int64
			CVD         string
			Walls       int64
			HeatWalls   int64
		}
		if err := b.eval(`({lastTradeID: window.__orderflow.lastTradeId(), ladder: window.__orderflow.ladder().updateId,
			cvd: window.__orderflow.metricsCVD(), walls: window.__orderflow.ladder().wallsTime,
			heatWalls: (window.__orderflow.heatmap().walls || {}).time})`, &v); err != nil {
			return false, err.Error()
		}
		return v.LastTradeID == m.Totals.LastID && v.Ladder == bk.UpdateID && v.CVD == string(m.Totals.CVD) &&
				v.Walls == w.Time && v.HeatWalls == w.Time,
			fmt.Sprintf("dashboard %+v, API last trade %d, book %d, CVD %s, walls at %d", v, m.Totals.LastID, bk.UpdateID, m.Totals.CVD, w.Time)
	})
}

// chartData is what the price chart's series hold.
type chartData struct {
	Candles []struct {
		Time                   int64
		Open, High, Low, Close float64
	}
	Delta []struct {
		Time  int64
		Value float64
	}
	CVD []struct {
		Time  int64
		Value float64
	} `json:"cvd"`
}

func num(t *testing.T, d client.Decimal) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(string(d), 64)
	if err != nil {
		t.Fatalf("decimal %q: %v", d, err)
	}
	return f
}

// checkCharts compares everything the dashboard holds for symbol with the
// API's answers, exactly. full adds the checks that need several minutes
// of bars.
func checkCharts(t *testing.T, b *browser, cl *client.Client, symbol string, full bool) {
	t.Helper()
	ctx := context.Background()
	bars, err := cl.Bars(ctx, symbol, client.BarsQuery{Limit: 120, Footprint: true})
	if err != nil {
		t.Fatal(err)
	}
	minBars := 1
	if full {
		minBars = 5
	}
	if len(bars.Bars) < minBars || bars.Current == nil {
		t.Fatalf("API has %d closed bars and current %v: want %d and an open bar", len(bars.Bars), bars.Current != nil, minBars)
	}
	last := bars.Bars[len(bars.Bars)-1]

	// 1. Every closed bar the API has, the dashboard holds with the same
	// exact figures.
	var dash []client.Bar
	b.mustEval(t, `window.__orderflow.closedBars()`, &dash)
	byStart := map[int64]client.Bar{}
	for _, d := range dash {
		byStart[d.Start] = d
	}
	if len(dash) != len(bars.Bars) {
		t.Errorf("dashboard holds %d closed bars, the API %d", len(dash), len(bars.Bars))
	}
	for _, a := range bars.Bars {
		d, ok := byStart[a.Start]
		if !ok {
			t.Errorf("bar %s missing on the dashboard", time.UnixMilli(a.Start).UTC().Format("15:04"))
			continue
		}
		got := [...]any{d.Open, d.High, d.Low, d.Close, d.Volume, d.BuyVolume, d.SellVolume, d.Delta, d.CVD, d.Trades, d.LastID}
		want := [...]any{a.Open, a.High, a.Low, a.Close, a.Volume, a.BuyVolume, a.SellVolume, a.Delta, a.CVD, a.Trades, a.LastID}
		if got != want {
			t.Errorf("bar %d: dashboard %v, API %v", a.Start, got, want)
		}
	}

	// 2. The last closed bar's delta shown on the page.
	var shown map[string]string
	b.mustEval(t, `window.__orderflow.shownLastBar()`, &shown)
	if shown["start"] != strconv.FormatInt(last.Start, 10) || shown["delta"] != string(last.Delta) || shown["cvd"] != string(last.CVD) {
		t.Errorf("page shows last closed bar %v, API's is start %d delta %s cvd %s", shown, last.Start, last.Delta, last.CVD)
	}
	t.Logf("%s last closed bar %s: delta %s, CVD %s (page: %s)", symbol, time.UnixMilli(last.Start).UTC().Format("15:04"),
		last.Delta, last.CVD, shown["delta"])

	// 3. The chart's series: one candle, delta and CVD point per bar, the
	// open bar last, each equal to the API's value as a float.
	var ch chartData
	b.mustEval(t, `window.__orderflow.chart()`, &ch)
	all := append(append([]client.Bar{}, bars.Bars...), *bars.Current)
	if len(ch.Candles) != len(all) || len(ch.Delta) != len(all) || len(ch.CVD) != len(all) {
		t.Fatalf("chart holds %d candles, %d delta and %d CVD points; want %d each", len(ch.Candles), len(ch.Delta), len(ch.CVD), len(all))
	}
	for i, a := range all {
		c := ch.Candles[i]
		if c.Time != a.Start/1000 || c.Open != num(t, a.Open) || c.High != num(t, a.High) || c.Low != num(t, a.Low) || c.Close != num(t, a.Close) {
			t.Errorf("candle %d: chart %+v, API %d %s %s %s %s", i, c, a.Start/1000, a.Open, a.High, a.Low, a.Close)
		}
		if ch.Delta[i].Time != a.Start/1000 || ch.Delta[i].Value != num(t, a.Delta) {
			t.Errorf("delta %d: chart %+v, API %s", i, ch.Delta[i], a.Delta)
		}
		if ch.CVD[i].Time != a.Start/1000 || ch.CVD[i].Value != num(t, a.CVD) {
			t.Errorf("CVD %d: chart %+v, API %s", i, ch.CVD[i], a.CVD)
		}
	}

	// 4. The open bar, built in the browser from pushed trades with exact
	// decimal sums, equals the service's.
	var open client.Bar
	b.mustEval(t, `window.__orderflow.openBar()`, &open)
	cur := *bars.Current
	got := [...]any{open.Start, open.Open, open.High, open.Low, open.Close, open.Volume, open.BuyVolume, open.SellVolume, open.Delta, open.CVD, open.Trades, open.LastID}
	want := [...]any{cur.Start, cur.Open, cur.High, cur.Low, cur.Close, cur.Volume, cur.BuyVolume, cur.SellVolume, cur.Delta, cur.CVD, cur.Trades, cur.LastID}
	if got != want {
		t.Errorf("open bar: dashboard %v, API %v", got, want)
	}

	// 5. Footprint: the dashboard's imbalance and POC rules, run in the
	// browser on the API's raw footprints, give the service's flags.
	checked := 0
	for _, a := range all[max(0, len(all)-6):] {
		if len(a.Footprint) == 0 {
			t.Errorf("API bar %d has no footprint", a.Start)
			continue
		}
		levels, _ := json.Marshal(a.Footprint)
		var rows []struct {
			Price         string
			BuyImbalance  bool `json:"buy_imbalance"`
			SellImbalance bool `json:"sell_imbalance"`
			POC           bool
		}
		b.mustEval(t, `window.__orderflow.regroup(`+string(levels)+`, "0")`, &rows)
		if len(rows) != len(a.Footprint) {
			t.Errorf("bar %d: %d footprint rows, API %d", a.Start, len(rows), len(a.Footprint))
			continue
		}
		for i, r := range rows {
			l := a.Footprint[i]
			if r.Price != string(l.Price) || r.BuyImbalance != l.BuyImbalance || r.SellImbalance != l.SellImbalance || r.POC != (l.Price == a.POC) {
				t.Errorf("bar %d price %s: dashboard %+v, API %+v (POC %s)", a.Start, l.Price, r, l, a.POC)
			}
		}
		checked += len(rows)
	}
	var drawn []struct{ Start int64 }
	b.mustEval(t, `window.__orderflow.footprintRows()`, &drawn)
	if len(drawn) < 2 || drawn[len(drawn)-1].Start != cur.Start || drawn[len(drawn)-2].Start != last.Start {
		t.Errorf("footprint draws bars %v, want ... %d, %d", drawn, last.Start, cur.Start)
	}
	t.Logf("%s footprint: %d price levels agree with the service's imbalance and POC flags", symbol, checked)

	// 6. The tape: newest first, the API's latest trades.
	trades, err := cl.Trades(ctx, symbol, client.TradesQuery{Limit: 30})
	if err != nil {
		t.Fatal(err)
	}
	var tape []struct {
		ID    int64
		Cls   string
		Cells []string
	}
	b.mustEval(t, `window.__orderflow.tape()`, &tape)
	if len(tape) < len(trades.Trades) {
		t.Fatalf("tape shows %d trades, want at least %d", len(tape), len(trades.Trades))
	}
	for i, tr := range trades.Trades {
		row := tape[len(trades.Trades)-1-i]
		if row.ID != tr.ID || row.Cells[2] != string(tr.Qty) || !strings.HasPrefix(row.Cls, tr.Side) ||
			strings.ReplaceAll(row.Cells[1], ",", "") != string(tr.Price) {
			t.Errorf("tape row %d: %+v, API trade %+v", len(trades.Trades)-1-i, row, tr)
		}
	}
	large, err := cl.LargeTrades(ctx, symbol, client.LargeTradesQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	isLarge := map[int64]bool{}
	for _, l := range large.Trades {
		isLarge[l.ID] = true
	}
	emphasized := 0
	for _, row := range tape {
		if strings.Contains(row.Cls, "large") {
			emphasized++
		}
	}
	// With the adaptive threshold, every server-flagged trade on the tape
	// is emphasized (the threshold may flag a few more once it moved).
	for _, row := range tape {
		if isLarge[row.ID] && !strings.Contains(row.Cls, "large") {
			t.Errorf("tape row %d is a large trade but not emphasized", row.ID)
		}
	}

	if full {
		checkLargeThreshold(t, b)
	}

	// 7. The ladder: the top ten levels each side, exactly.
	bk, err := cl.Book(ctx, symbol, client.BookQuery{Depth: 10})
	if err != nil {
		t.Fatal(err)
	}
	var ladder struct {
		UpdateID int64
		Rows     []struct {
			Side, Price, Qty string
			Extra            bool // a wall beyond the top ten (checkWalls)
		}
	}
	b.mustEval(t, `window.__orderflow.ladder()`, &ladder)
	var wantRows []string
	for i := len(bk.Asks) - 1; i >= 0; i-- {
		wantRows = append(wantRows, "ask "+string(bk.Asks[i].Price)+" "+string(bk.Asks[i].Qty))
	}
	for _, l := range bk.Bids {
		wantRows = append(wantRows, "bid "+string(l.Price)+" "+string(l.Qty))
	}
	var gotRows []string
	for _, r := range ladder.Rows {
		if r.Extra {
			continue
		}
		gotRows = append(gotRows, r.Side+" "+r.Price+" "+r.Qty)
	}
	if ladder.UpdateID != bk.UpdateID || strings.Join(gotRows, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("ladder at %d:\n%s\nAPI book at %d:\n%s", ladder.UpdateID, strings.Join(gotRows, "\n"), bk.UpdateID, strings.Join(wantRows, "\n"))
	}

	// 8. The heatmap has book columns in view; the model saw no bad value
	// and no disagreement with the service's bar pushes; the page states
	// no problem.
	checkFramesIncrease(t, frameIDs(t, b))
	checkWalls(t, b, cl, symbol)
	checkMarkers(t, b, cl, symbol, all)

	var hm struct {
		Stored, Frames int
		Lo, Hi         float64
	}
	b.mustEval(t, `window.__orderflow.heatmap()`, &hm)
	if hm.Frames < 1 || !(hm.Lo < num(t, cur.Close) && num(t, cur.Close) < hm.Hi) {
		t.Errorf("heatmap %+v: want columns around the last price %s", hm, cur.Close)
	}
	var counts map[string]int64
	b.mustEval(t, `window.__orderflow.counts()`, &counts)
	// A bar push may disagree with the bar built in the browser only when
	// the service skipped pushed trades for this slow reader and said so.
	if (counts["barMismatch"] != 0 && counts["dropped"] == 0) || counts["badValues"] != 0 || counts["trades"] == 0 || counts["barPushes"] == 0 {
		t.Errorf("dashboard counters %v: want trades and bar pushes applied, no bad value, no mismatch unless messages were dropped", counts)
	}
	var banner string
	b.mustEval(t, `window.__orderflow.banner`, &banner)
	if banner != "" {
		t.Errorf("the page states a problem while everything runs: %q", banner)
	}
	t.Logf("%s: %d closed bars, %d chart points, %d tape rows (%d emphasized as large), heatmap %d columns in view, counters %v",
		symbol, len(bars.Bars), len(ch.Candles), len(tape), emphasized, hm.Frames, counts)
}

// checkPNG makes sure the screenshot is a full-size picture with
// something drawn on it, not a blank page.
func checkPNG(t *testing.T, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() != width || r.Dy() != height {
		t.Errorf("screenshot is %v, want %dx%d", r, width, height)
	}
	colors := map[uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 4 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
		}
	}
	if len(colors) < 200 {
		t.Errorf("screenshot has %d distinct colors: looks blank", len(colors))
	}
}

// checkLargeThreshold sets the large-trade threshold on the page and
// checks that the tape emphasizes exactly the trades at or above it, then
// goes back to the service's adaptive threshold.
func checkLargeThreshold(t *testing.T, b *browser) {
	t.Helper()
	const thr = "0.05"
	set := func(v string) {
		b.mustEval(t, `(() => { const e = document.getElementById('large'); e.value = '`+v+`';
			e.dispatchEvent(new Event('change')); return e.value; })()`, new(string))
	}
	set(thr)
	defer set("")
	limit := fixed.MustParse(thr)
	waitFor(t, 5*time.Second, "the tape to emphasize trades of at least "+thr, func() (bool, string) {
		var tape []struct {
			ID    int64
			Cls   string
			Cells []string
		}
		if err := b.eval(`window.__orderflow.tape()`, &tape); err != nil {
			return false, err.Error()
		}
		large := 0
		for _, row := range tape {
			q, err := fixed.ParseString(row.Cells[2])
			if err != nil {
				return false, fmt.Sprintf("tape qty %q: %v", row.Cells[2], err)
			}
			if (q >= limit) != strings.Contains(row.Cls, "large") {
				return false, fmt.Sprintf("row %d qty %s class %q", row.ID, row.Cells[2], row.Cls)
			}
			if q >= limit {
				large++
			}
		}
		return large > 0 && large < len(tape), fmt.Sprintf("%d of %d rows at or above %s", large, len(tape), thr)
	})
}
