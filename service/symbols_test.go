package service_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/feed"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// TestAddRemoveSymbolLive: a symbol added to a running service is
// subscribed on the existing connection, gets its backfill, trades and a
// synced book; removing it unsubscribes it; the other symbol is never
// touched (no reconnect, no trade id gap).
func TestAddRemoveSymbolLive(t *testing.T) {
	srv := startSim(t, sim.Config{Recording: recording(t, spot10...), Speed: 10, Loop: true})
	s := newService(t, srv, func(c *service.Config) { c.Symbols = []string{"DENTUSDT"}; c.Flow = testFlow })
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stopService(t, s)
	waitStatus(t, s, "connected", 10*time.Second, connected)
	waitFor(t, "DENTUSDT trades", 10*time.Second, func() bool { return s.Status().Symbols[0].Trades > 0 })

	if err := s.AddSymbol(ctx, "zilusdt"); err != nil {
		t.Fatal(err)
	}
	if got := s.Symbols(); strings.Join(got, ",") != "DENTUSDT,ZILUSDT" {
		t.Fatalf("symbols %v", got)
	}
	st := s.Status()
	if len(st.Streams) != 1 || st.Streams[0].Streams != 4 {
		t.Fatalf("want one connection with 4 streams, got %+v", st.Streams)
	}
	// ZILUSDT: warm start from REST (the simulator has published trades by
	// now), then live trades and a synced book.
	waitStatus(t, s, "ZILUSDT book synced", 15*time.Second, func(st service.Status) bool { return st.Ready() })
	waitFor(t, "ZILUSDT live trades after the backfill", 15*time.Second, func() bool {
		return s.Status().Backfill.Fetched > 0 && serviceMetrics(t, s, "ZILUSDT").Totals.Trades > int64(s.Status().Backfill.Fetched)
	})
	zil := serviceMetrics(t, s, "ZILUSDT")
	checkConsecutive(t, "ZILUSDT", zil.IDs)

	if err := s.RemoveSymbol(ctx, "ZILUSDT"); err != nil {
		t.Fatal(err)
	}
	st = s.Status()
	if len(st.Symbols) != 1 || st.Symbols[0].Symbol != "DENTUSDT" || st.Streams[0].Streams != 2 {
		t.Fatalf("after remove: %+v", st)
	}
	if err := s.ViewSymbol("ZILUSDT", func(*engineSymbol) error { return nil }); !errors.Is(err, service.ErrUnknownSymbol) {
		t.Fatalf("ViewSymbol of a removed symbol: %v", err)
	}
	// The server stops sending it: its frame count stops growing while
	// DENTUSDT's goes on.
	sent := srv.Stats().FramesSent
	zilSent, dentSent := sent["zilusdt@aggTrade"]+sent["zilusdt@depth@100ms"], sent["dentusdt@depth@100ms"]
	waitFor(t, "DENTUSDT frames go on", 10*time.Second, func() bool { return srv.Stats().FramesSent["dentusdt@depth@100ms"] > dentSent+5 })
	sent = srv.Stats().FramesSent
	if n := sent["zilusdt@aggTrade"] + sent["zilusdt@depth@100ms"]; n != zilSent {
		t.Fatalf("ZILUSDT still sent after unsubscribe: %d frames, was %d", n, zilSent)
	}
	if err := s.RemoveSymbol(ctx, "ZILUSDT"); !errors.Is(err, service.ErrUnknownSymbol) {
		t.Fatalf("second remove: %v", err)
	}

	// DENTUSDT was never touched: one connection all along, no reconnect,
	// no missing id.
	st = s.Status()
	if st.Streams[0].Reconnects != 0 || srv.Stats().ConnsTotal != 1 || st.Backfill.Missing != 0 {
		t.Fatalf("other symbol disturbed: %+v, simulator connections %d", st, srv.Stats().ConnsTotal)
	}
	checkConsecutive(t, "DENTUSDT", serviceMetrics(t, s, "DENTUSDT").IDs)
}

// TestAddSymbolOpensConnectionWhenFull: streams are packed per connection
// up to the limit; a symbol that does not fit gets a new connection, which
// is closed again when its last stream is removed.
func TestAddSymbolOpensConnectionWhenFull(t *testing.T) {
	cases := []struct {
		name    string
		fanout  int
		start   int // symbols at start
		perConn int // Config.MaxStreamsPerConn (0: the default, DefaultStreamsPerConn)
	}{
		{"SmallLimit", 1, 2, 4},
		// 512 symbols x 2 streams fill one connection to Binance's limit
		// exactly; the simulator refuses a 1,025th stream on it.
		{"BinanceLimit1024", 65, 512, binance.MaxStreamsPerConn},
		// By default a connection takes 200 spot symbols (400 streams),
		// not Binance's 1,024 (see DefaultStreamsPerConn).
		{"Default400", 65, 200, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSim(t, sim.Config{Recording: recording(t, spot10...), Fanout: tc.fanout, Paused: true})
			// NEOUSDC and RENBTCETH have no aggTrades in the recording,
			// so the simulator serves no aggTrade stream for them.
			all := slices.DeleteFunc(srv.Symbols(), func(s string) bool {
				return strings.HasPrefix(s, "NEO") || strings.HasPrefix(s, "RENBTC")
			})
			s := newService(t, srv, func(c *service.Config) {
				c.Symbols = all[:tc.start]
				c.MaxStreamsPerConn = tc.perConn
				c.Backfill = -1
			})
			ctx := context.Background()
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer stopService(t, s)
			waitStatus(t, s, "connected", 20*time.Second, connected)
			limit := tc.perConn
			if limit == 0 {
				limit = 400
			}
			if st := s.Status(); len(st.Streams) != 1 || st.Streams[0].Streams != limit {
				t.Fatalf("want one full connection of %d streams: %+v", limit, st.Streams)
			}
			extra := all[tc.start]
			if err := s.AddSymbol(ctx, extra); err != nil {
				t.Fatal(err)
			}
			st := waitStatus(t, s, "second connection up", 10*time.Second, connected)
			if len(st.Streams) != 2 || st.Streams[0].Streams != limit || st.Streams[1].Streams != 2 {
				t.Fatalf("want a second connection with 2 streams: %+v", st.Streams)
			}
			waitServerConnsClosed(t, srv, 2)
			if err := s.RemoveSymbol(ctx, extra); err != nil {
				t.Fatal(err)
			}
			if st := s.Status(); len(st.Streams) != 1 {
				t.Fatalf("empty connection kept: %+v", st.Streams)
			}
			waitServerConnsClosed(t, srv, 1)
			if st := srv.Stats(); st.ConnsTotal != 2 {
				t.Fatalf("simulator saw %d connections, want 2", st.ConnsTotal)
			}
		})
	}
}

// TestAddSymbolRefused: a symbol the server does not know is refused by
// SUBSCRIBE's error reply; the service rolls it back entirely.
func TestAddSymbolRefused(t *testing.T) {
	cases := []struct {
		name, symbol string
		inject       func(*sim.Server)
	}{
		{"UnknownSymbol", "NOSUCHUSDT", nil},
		{"SubscribeRefused", "ZILUSDT", func(srv *sim.Server) { srv.Faults().RefuseSubscribe(1) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSim(t, sim.Config{Recording: recording(t, spot10...), Paused: true})
			s := newService(t, srv, func(c *service.Config) { c.Symbols = []string{"DENTUSDT"} })
			ctx := context.Background()
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer stopService(t, s)
			waitStatus(t, s, "connected", 10*time.Second, connected)
			if tc.inject != nil {
				tc.inject(srv)
			}
			err := s.AddSymbol(ctx, tc.symbol)
			var re *feed.ReplyError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.symbol) {
				t.Fatalf("AddSymbol: %v, want a refusal naming %s", err, tc.symbol)
			}
			st := s.Status()
			if len(s.Symbols()) != 1 || len(st.Symbols) != 1 || st.Streams[0].Streams != 2 || st.Streams[0].Reconnects != 0 {
				t.Fatalf("not rolled back: symbols %v, status %+v", s.Symbols(), st)
			}
			if err := s.ViewSymbol(tc.symbol, func(*engineSymbol) error { return nil }); !errors.Is(err, service.ErrUnknownSymbol) {
				t.Fatalf("engine state left: %v", err)
			}
		})
	}
}

// TestSymbolsWhileStopped: AddSymbol and RemoveSymbol on a stopped
// service change the set the next Start streams.
func TestSymbolsWhileStopped(t *testing.T) {
	srv := startSim(t, sim.Config{Recording: recording(t, spot10...), Paused: true})
	logs := newLogCapture(t)
	s := newService(t, srv, func(c *service.Config) { c.Symbols = []string{"DENTUSDT"}; c.Logger = logs.logger() })
	ctx := context.Background()
	for _, sym := range []string{"ZILUSDT", "MANAUSDT", "ZILUSDT"} {
		if err := s.AddSymbol(ctx, sym); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveSymbol(ctx, "DENTUSDT"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSymbol(ctx, "BAD-SYMBOL"); err == nil {
		t.Fatal("invalid symbol accepted")
	}
	if srv.Stats().ConnsTotal != 0 {
		t.Fatal("a stopped service connected")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stopService(t, s)
	st := waitStatus(t, s, "connected", 10*time.Second, connected)
	if len(st.Symbols) != 2 || st.Symbols[0].Symbol != "ZILUSDT" || st.Symbols[1].Symbol != "MANAUSDT" || st.Streams[0].Streams != 4 {
		t.Fatalf("status %+v", st)
	}
	if r := logs.records("Starting order flow service"); len(r) != 1 || r[0].Msg != "Starting order flow service for 2 symbols" || r[0].Attrs["symbols"] != "ZILUSDT,MANAUSDT" {
		t.Fatalf("start log %+v", r)
	}
}
