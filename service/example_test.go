package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// Example embeds the service in a Go program: here against the bundled
// simulator replaying real BTCUSDT data (against Binance, leave WSURL and
// RESTURL empty), then reads the order flow directly, without HTTP.
func Example() {
	// The simulator stands in for Binance on loopback.
	srv, err := sim.New(sim.Config{Files: spotBTC, Speed: -1, Paused: true})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		panic(err)
	}
	defer srv.Close()
	ws, rest := srv.URL()

	svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}, Market: market.Spot, WSURL: ws, RESTURL: rest,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		panic(err)
	}
	defer svc.Stop(context.Background())

	for st := svc.Status(); len(st.Streams) == 0 || st.Streams[0].State != "connected"; st = svc.Status() {
		time.Sleep(10 * time.Millisecond)
	}
	srv.Play()
	<-srv.Done()
	// The recording's last trade is at 2024-08-09 00:05:05.800 UTC.
	for svc.Status().Symbols[0].LastTime != 1723161905800 {
		time.Sleep(10 * time.Millisecond)
	}

	// Read what a bot needs under the data lock, then use the copies.
	err = svc.ViewSymbol("BTCUSDT", func(s *engine.Symbol) error {
		t := s.Flow.Totals()
		w, _ := s.Flow.Window(5 * time.Minute)
		bid, _ := s.Book().BestBid()
		ask, _ := s.Book().BestAsk()
		fmt.Printf("trades %d, buy %s, sell %s, delta %s, VWAP %s\n", t.Trades, t.BuyVolume, t.SellVolume, t.Delta, t.VWAP)
		fmt.Printf("last 5m: delta %s over %d trades\n", w.Delta, w.Trades)
		fmt.Printf("book: %s / %s\n", bid.Price, ask.Price)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// trades 11348, buy 204.49112, sell 233.4044, delta -28.91328, VWAP 61671.54402136
	// last 5m: delta -11.11373 over 5405 trades
	// book: 61602.01 / 61602.02
}
