package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// demoAPI serves what `orderflow demo` serves: the real BTCUSDT recording
// replayed through a service, with the HTTP API in front. It returns the
// API's URL and a function that stops everything.
func demoAPI() (string, func()) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "testdata", "binance")
	srv, err := sim.New(sim.Config{Files: []string{filepath.Join(dir, "hft-spot-btcusdt-20240808.txt.gz"),
		filepath.Join(dir, "hft-spot-btcusdt-20240809.txt.gz")}, Speed: -1, Paused: true})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		panic(err)
	}
	ws, rest := srv.URL()
	log := slog.New(slog.DiscardHandler)
	svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}, Market: market.Spot, WSURL: ws, RESTURL: rest, Logger: log})
	if err != nil {
		panic(err)
	}
	a := api.New(svc, api.Options{Logger: log})
	hs := httptest.NewServer(a)
	if err := svc.Start(context.Background()); err != nil {
		panic(err)
	}
	for st := svc.Status(); len(st.Streams) == 0 || st.Streams[0].State != "connected"; st = svc.Status() {
		time.Sleep(10 * time.Millisecond)
	}
	srv.Play()
	<-srv.Done()
	for svc.Status().Symbols[0].LastTime != 1723161905800 || !svc.Status().Ready() { // the recording's last trade
		time.Sleep(10 * time.Millisecond)
	}
	return hs.URL, func() {
		a.Close()
		hs.Close()
		_ = svc.Stop(context.Background())
		_ = srv.Close()
	}
}

// Example reads a running service's order flow over HTTP, as a bot in
// another process or language would.
func Example() {
	url, stop := demoAPI() // in real use: client.DefaultURL, where orderflow run listens
	defer stop()

	c, err := client.New(url, client.Options{})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	m, err := c.Metrics(ctx, "BTCUSDT", client.MetricsQuery{Window: "5m"})
	if err != nil {
		panic(err)
	}
	w := m.Windows[0]
	fmt.Printf("%s: %d trades, delta %s, CVD %s\n", m.Symbol, m.Totals.Trades, m.Totals.Delta, m.Totals.CVD)
	fmt.Printf("last %s (ready %v): buy %s sell %s, buy ratio %s\n", w.Window, w.Ready, w.BuyVolume, w.SellVolume, w.BuyRatio)

	b, err := c.Book(ctx, "BTCUSDT", client.BookQuery{Depth: 1, Bands: []int{10}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("book: %s / %s, spread %s, imbalance within 10 bps %s\n", b.BestBid.Price, b.BestAsk.Price, b.Spread, b.Bands[0].Imbalance)

	_, err = c.Metrics(ctx, "BTCUSDT", client.MetricsQuery{Window: "7m"})
	fmt.Println(client.IsCode(err, "bad_request"), err)
	// Output:
	// BTCUSDT: 11348 trades, delta -28.91328, CVD -28.91328
	// last 5m (ready true): buy 105.41992 sell 116.53365, buy ratio 0.47496384
	// book: 61602.01 / 61602.02, spread 0.01, imbalance within 10 bps -0.17218418
	// true orderflow api: bad_request (400): window "7m": not configured; available: 1m, 5m, 15m, 1h
}
