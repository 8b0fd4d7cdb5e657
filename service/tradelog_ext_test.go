package service_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// TestTradeLogLevels: the first LogTrades trades of a symbol are logged at
// info in the original wording, later ones at debug; the connection logs
// its dial duration before "Connected to DENTUSDT aggTrades stream".
func TestTradeLogLevels(t *testing.T) {
	srv := startSim(t, sim.Config{Recording: recording(t, spot10...), Speed: 40, Paused: true})
	logs := newLogCapture(t)
	s := newService(t, srv, func(c *service.Config) {
		c.Symbols = []string{"DENTUSDT"}
		c.LogTrades = 3
		c.Backfill = -1
		c.Logger = logs.logger()
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stopService(t, s)
	waitStatus(t, s, "connected", 10*time.Second, connected)
	srv.Play()
	waitFor(t, "5 trades", 10*time.Second, func() bool { return len(logs.records("Trade #")) >= 5 })
	trades := restTrades(t, srv, "DENTUSDT")
	recs := logs.records("Trade #")
	for i, r := range recs[:5] {
		want := service.FormatTradeLine(int64(i+1), &trades[i])
		lvl := slog.LevelInfo
		if i >= 3 {
			lvl = slog.LevelDebug
		}
		if r.Msg != want || r.Level != lvl || r.Attrs["id"] != strconv.FormatInt(trades[i].ID, 10) {
			t.Fatalf("trade log %d: %v %q id %s, want %v %q id %d", i+1, r.Level, r.Msg, r.Attrs["id"], lvl, want, trades[i].ID)
		}
	}
	dial, conn := logs.index("Dialed Binance stream connection"), logs.index("Connected to DENTUSDT aggTrades stream")
	if dial < 0 || conn < dial {
		t.Fatalf("dial log at %d, connected log at %d", dial, conn)
	}
	if d := logs.records("Dialed Binance stream connection")[0].Attrs["duration"]; d == "" {
		t.Fatal("dial log without its duration")
	}
}
