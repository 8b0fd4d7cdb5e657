package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// TestBarsCloseOnWatermarkAgainstSimulator runs the service (default bar
// lateness, 2 s) against the simulator replaying real BTCUSDT data. In the
// middle, the simulator leaves out a few aggTrades and delays its REST
// answers by a second (40 s of replayed time): the service holds the
// stream's trades behind the id gap while the depth stream moves the
// watermark on, so the fill's trades arrive after their bars closed. They
// must amend those bars (reported again as revised, the last report equal
// to the kept bar), the bars must end equal to an uninterrupted run over
// the same trades, and at the end every bar the watermark passed is
// closed, the open one not.
func TestBarsCloseOnWatermarkAgainstSimulator(t *testing.T) {
	const sym = "BTCUSDT"
	srv := startSim(t, sim.Config{Recording: recording(t, spotBTC...), Speed: 40, Paused: true})
	reps := &barReports{}
	s := newService(t, srv, func(c *service.Config) {
		c.Symbols = []string{sym}
		c.Flow = testFlow
		c.OnEvent = reps.add
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stopService(t, s)
	waitStatus(t, s, "connected", 10*time.Second, connected)
	srv.Play()
	waitFor(t, "2000 trades applied", 30*time.Second, func() bool { return serviceMetrics(t, s, sym).Totals.Trades >= 2000 })
	srv.Faults().DelayREST(time.Second)
	if err := srv.Faults().Skip(sym, "aggTrade", 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "late trades applied", 30*time.Second, func() bool { return s.Status().Engine.LateTrades > 0 })
	srv.Faults().DelayREST(0)
	select {
	case <-srv.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the simulator's replay did not end")
	}
	want := restTrades(t, srv, sym)
	last := want[len(want)-1].ID
	waitFor(t, "caught up to the last trade", 20*time.Second, func() bool { return serviceMetrics(t, s, sym).Totals.LastID == last })

	var got struct {
		m         metrics
		eventTime int64
	}
	if err := s.ViewSymbol(sym, func(es *engine.Symbol) error {
		got.m, got.eventTime = trackerMetrics(es.Flow), es.EventTime
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The warm start's 1000 trades come first: compare from the service's
	// first trade on.
	first := got.m.IDs[0]
	for len(want) > 0 && want[0].ID < first {
		want = want[1:]
	}
	checkConsecutive(t, sym, got.m.IDs)
	compareMetrics(t, sym, got.m, referenceMetrics(t, want, sym, testFlow))
	reps.check(t, sym, got.m)

	st := s.Status().Engine
	t.Logf("%d trades, %d late, %d bars amended; %d closes and %d revisions reported; watermark %d (event time %d)",
		st.Trades, st.LateTrades, st.AmendedBars, reps.closes, reps.revised, got.m.Mark, got.eventTime)
	if st.AmendedBars == 0 || reps.revised == 0 {
		t.Fatalf("%d bars amended, %d revisions reported: the delayed fill amended nothing", st.AmendedBars, reps.revised)
	}
	if mark := got.eventTime - service.DefaultBarLateness.Milliseconds(); got.m.Mark != mark {
		t.Fatalf("watermark %d, want the latest event time %d minus the lateness", got.m.Mark, got.eventTime)
	}
	for iv, cur := range got.m.Cur {
		if cur.Trades > 0 && cur.End <= got.m.Mark {
			t.Errorf("%v bar %d..%d still open with the watermark at %d", iv, cur.Start, cur.End, got.m.Mark)
		}
		for _, b := range got.m.Bars[iv] {
			if b.End > got.m.Mark && cur.Trades == 0 {
				t.Errorf("%v bar %d..%d closed before the watermark (%d) passed it, no later bar", iv, b.Start, b.End, got.m.Mark)
			}
		}
	}
}
