package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// TestEndToEndAgainstSimulator is the original checklist: connections
// complete, trade history populates, metrics become available, the book
// syncs and matches the exchange's, Stop ends every task and every
// connection closes on the server side.
func TestEndToEndAgainstSimulator(t *testing.T) {
	srv := startSim(t, sim.Config{Recording: recording(t, spotBTC...), Speed: 400, Paused: true})
	s := newService(t, srv, func(c *service.Config) { c.Flow = testFlow })
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, "streams connected", 10*time.Second, connected)
	srv.Play()
	select {
	case <-srv.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("replay did not finish")
	}
	want := restTrades(t, srv, "BTCUSDT")
	// The recording's trades end at id 3735703162 (SOURCES.md); the
	// simulator derives aggTrades from them (the first, before the book's
	// sync point, is not published), each covering consecutive trade ids.
	if len(want) < 10000 || want[len(want)-1].LastID != 3735703162 {
		t.Fatalf("simulator published %d aggTrades ending at trade %d", len(want), want[len(want)-1].LastID)
	}
	for i := 1; i < len(want); i++ {
		if want[i].FirstID != want[i-1].LastID+1 || want[i].ID != want[i-1].ID+1 {
			t.Fatalf("published aggTrades not contiguous at %d", i)
		}
	}
	last := want[len(want)-1].ID
	waitFor(t, "last trade applied", 10*time.Second, func() bool { return serviceMetrics(t, s, "BTCUSDT").Totals.LastID == last })
	waitStatus(t, s, "ready", 10*time.Second, service.Status.Ready)
	got := serviceMetrics(t, s, "BTCUSDT")
	checkConsecutive(t, "BTCUSDT", got.IDs)
	compareMetrics(t, "BTCUSDT", got, referenceMetrics(t, want, "BTCUSDT", testFlow))
	checkBookMatchesSim(t, s, srv, "BTCUSDT")
	st := s.Status()
	if st.Backfill.Missing != 0 || st.Engine.DecodeErrors != 0 || st.Engine.TradeRejected != 0 {
		t.Fatalf("missing %d, decode errors %d, rejected %d", st.Backfill.Missing, st.Engine.DecodeErrors, st.Engine.TradeRejected)
	}
	stopService(t, s)
	if s.State() != service.Stopped {
		t.Fatalf("state %v after Stop", s.State())
	}
	waitServerConnsClosed(t, srv, 0)
}
