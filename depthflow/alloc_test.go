package depthflow

import (
	"runtime"
	"testing"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/market"
)

// tape is a recording prepared for repeated passes: the snapshot, then
// applied updates and trades in arrival order. Each pass shifts times by a
// day so the windows keep moving forward.
type tape struct {
	snap   *market.DepthSnapshot
	replay []*market.DepthUpdate // buffered before the snapshot, applied with it
	items  []item
	pass   int64
}

type item struct {
	u  *market.DepthUpdate
	tr market.Trade
	t0 int64 // original times
	t1 int64
}

func newTape(tb testing.TB, ds dataset) *tape {
	evs := load(tb, ds)
	tp := &tape{}
	id, bridged := int64(0), false
	var buffered []*market.DepthUpdate
	for i := range evs {
		e := &evs[i]
		switch e.kind {
		case evSnap:
			tp.snap = toSnapshot(e)
			id = e.last
			for _, u := range buffered { // replayed with the snapshot
				if ds.kind == market.USDM && !bridged && u.FinalID < id || (bridged || ds.kind == market.Spot) && u.FinalID <= id {
					continue
				}
				tp.replay = append(tp.replay, u)
				id, bridged = u.FinalID, true
			}
		case evDepth:
			if tp.snap == nil {
				buffered = append(buffered, toUpdate(e))
				continue
			}
			if stale(ds.kind, e, id, bridged) {
				continue
			}
			u := toUpdate(e)
			tp.items = append(tp.items, item{u: u, t0: u.EventTime, t1: u.TransactTime})
			id, bridged = e.u, true
		case evTrade:
			if tp.snap != nil {
				tr := toTrade(e)
				tp.items = append(tp.items, item{tr: tr, t0: tr.Time})
			}
		}
	}
	return tp
}

// run replays one pass into tr and bk.
func (tp *tape) run(tb testing.TB, tr *Tracker, bk *book.Book) {
	shift := tp.pass * 86_400_000
	tp.pass++
	if err := bk.Reset(tp.snap); err != nil {
		tb.Fatal(err)
	}
	for _, u := range tp.replay {
		if err := bk.ApplyUpdate(u); err != nil {
			tb.Fatal(err)
		}
	}
	tr.Reset(bk, 1000)
	for i := range tp.items {
		it := &tp.items[i]
		if it.u != nil {
			it.u.EventTime = it.t0 + shift
			if it.t1 != 0 {
				it.u.TransactTime = it.t1 + shift
			}
			tr.BeforeDepth(it.u, bk)
			if err := bk.ApplyUpdate(it.u); err != nil {
				tb.Fatal(err)
			}
			if err := tr.OnDepth(it.u, bk); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		it.tr.Time = it.t0 + shift
		if err := tr.OnTrade(&it.tr); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	for _, ds := range []dataset{datasets[2]} {
		t.Run(ds.name, func(t *testing.T) {
			tp := newTape(t, ds)
			if raceOn {
				// Single-threaded package: a quarter of the tape under the
				// race detector; make test runs it whole without -race.
				tp.items = tp.items[:len(tp.items)/4]
			}
			tr := New("BTCUSDT", Config{})
			bk := book.New()
			for range 3 { // warm up: buffers, rings and the signal ring
				tp.run(t, tr, bk)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			tp.run(t, tr, bk)
			runtime.ReadMemStats(&after)
			if n := after.Mallocs - before.Mallocs; n != 0 {
				t.Errorf("a pass of %d updates and trades allocated %d times", len(tp.items), n)
			}
		})
	}
}
