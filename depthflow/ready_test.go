package depthflow

import (
	"math"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/market"
)

// cutSnapshot returns the recorded snapshot cut to its best n levels a
// side: what Binance returns for a request with limit n (it lists levels
// best first).
func cutSnapshot(e *event, n int) *event {
	c := *e
	c.bids = e.bids[:min(n, len(e.bids))]
	c.asks = e.asks[:min(n, len(e.asks))]
	return &c
}

// readyCounts counts, per band (by bps), the updates at which the band was
// ready and not ready, and the walls' and 1m liquidity window's readiness.
type readyCounts struct {
	bandReady, bandNot    map[int]int
	wallReady, wallNot    [2]int
	liqReady, liqNot      int
	updates               int
	reasons               map[NotReady]int
	knownBid, knownAsk    int64
	bidReachBps, askReach float64
}

// replayReadiness replays ds from its snapshot cut to depth levels and
// checks, at every update, each band's, each wall side's and the 1m
// liquidity window's Ready and Reason against an independent computation:
// a map book's touch, the raw snapshot's worst prices, and bounds decided
// in math/big.Rat.
func replayReadiness(t *testing.T, ds dataset, depth int, cfg Config) readyCounts {
	t.Helper()
	evs := load(t, ds)
	snapAt := slices.IndexFunc(evs, func(e event) bool { return e.kind == evSnap })
	if snapAt < 0 {
		t.Fatal("no snapshot")
	}
	snap := cutSnapshot(&evs[snapAt], depth)
	tr := New("TEST", cfg)
	cfg = tr.Config()
	bk := book.New()
	ref := newRefBook()
	if err := bk.Reset(toSnapshot(snap)); err != nil {
		t.Fatal(err)
	}
	ref.load(snap)
	id, bridged := snap.last, false
	for i := 0; i < snapAt; i++ {
		e := &evs[i]
		if e.kind != evDepth || stale(ds.kind, e, id, bridged) {
			continue
		}
		if err := bk.ApplyUpdate(toUpdate(e)); err != nil {
			t.Fatal(err)
		}
		ref.apply(e)
		id, bridged = e.u, true
	}
	tr.Reset(bk, depth)
	knownBid, knownAsk := snapKnown(snap)
	rc := readyCounts{bandReady: map[int]int{}, bandNot: map[int]int{}, reasons: map[NotReady]int{},
		knownBid: knownBid, knownAsk: knownAsk}
	X := int64(cfg.TouchBps)
	N := cfg.WallNeighbors
	first := int64(-1)
	beyondSec := map[int64]bool{} // seconds holding an update whose near range left the known range
	for i := snapAt + 1; i < len(evs); i++ {
		e := &evs[i]
		if e.kind == evTrade {
			trd := toTrade(e)
			if err := tr.OnTrade(&trd); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if e.kind != evDepth || stale(ds.kind, e, id, bridged) {
			continue
		}
		bb0, ba0 := ref.best(0), ref.best(1)
		u := toUpdate(e)
		tr.BeforeDepth(u, bk)
		if err := bk.ApplyUpdate(u); err != nil {
			t.Fatal(err)
		}
		if err := tr.OnDepth(u, bk); err != nil {
			t.Fatal(err)
		}
		ref.apply(e)
		id, bridged = e.u, true
		now := uTime(e)
		if first < 0 {
			first = now
		}
		rc.updates++
		bb, ba := ref.best(0), ref.best(1)
		if rc.updates == 1 {
			mid, _ := new(big.Rat).SetFrac64(bb+ba, 2).Float64()
			rc.bidReachBps = (mid - float64(knownBid)) / mid * 1e4
			rc.askReach = (float64(knownAsk) - mid) / mid * 1e4
		}

		m := tr.Metrics()
		for k, bps := range cfg.Bands {
			bidOK, askOK := bandKnown(bandBound(bb, ba, bps, false), bandBound(bb, ba, bps, true), knownBid, knownAsk)
			bd := m.Bands[k]
			if bd.Ready != (bidOK && askOK) || bd.Reason != wantReason(bidOK, askOK) {
				t.Fatalf("update %d band %d bps: ready %v reason %q, reference bids known %v asks known %v",
					e.u, bps, bd.Ready, bd.Reason, bidOK, askOK)
			}
			if bd.Ready {
				rc.bandReady[bps]++
			} else {
				rc.bandNot[bps]++
				rc.reasons[bd.Reason]++
			}
		}

		// Walls: ready when the whole WallMaxBps range and the
		// neighbourhood of its deepest level are known.
		for s, side := range [2]market.Side{market.Buy, market.Sell} {
			// Counts over the map: levels inside the bound, and known.
			bound := bandBound(bb, ba, cfg.WallMaxBps, s == 1)
			lim := new(big.Int).Quo(bound.Num(), bound.Denom()) // floor
			if s == 0 && !bound.IsInt() {
				lim.Add(lim, big.NewInt(1)) // ceil for bids
			}
			li := lim.Int64()
			m, known, n := 0, 0, len(ref.side[s])
			for p := range ref.side[s] {
				if s == 0 && p >= li || s == 1 && p <= li {
					m++
				}
				if s == 0 && p >= knownBid || s == 1 && p <= knownAsk {
					known++
				}
			}
			bidOK, askOK := bandKnown(bound, bound, knownBid, knownAsk)
			ok := s == 0 && bidOK || s == 1 && askOK
			want := n > N && ok && (m == 0 || nbLast(m-1, n, N) < known)
			if got := tr.WallsReady(side); got != want {
				t.Fatalf("update %d side %v: walls ready %v (%q), reference %v", e.u, side, got, tr.WallsNotReady(side), want)
			}
			if want {
				rc.wallReady[s]++
			} else {
				rc.wallNot[s]++
				if r := tr.WallsNotReady(side); r != NotReadyBidsUnknown+NotReady(s) {
					t.Fatalf("update %d side %v: walls not ready for %q", e.u, side, r)
				}
			}
		}

		// Liquidity: the near range of the touch before the update.
		sec := now / 1000
		if bb0 != 0 && knownBid > 0 && new(big.Rat).Mul(ratU(bb0), big.NewRat(10_000-X, 10_000)).Cmp(ratU(knownBid-1)) <= 0 ||
			ba0 != 0 && knownAsk < math.MaxInt64 && new(big.Rat).Mul(ratU(ba0), big.NewRat(10_000+X, 10_000)).Cmp(ratU(knownAsk+1)) >= 0 {
			beyondSec[sec] = true
		}
		from := (sec - 59) * 1000
		anyBeyond := false
		for k := sec - 59; k <= sec; k++ {
			anyBeyond = anyBeyond || beyondSec[k]
		}
		lq, _ := tr.Liquidity(time.Minute)
		wantReady := first <= from && !anyBeyond
		if lq.Ready != wantReady || (first > from) != (lq.Reason == NotReadyWarmingUp) {
			t.Fatalf("update %d: liquidity ready %v (%q), reference %v (covered %v, beyond %v)", e.u, lq.Ready, lq.Reason, wantReady, first <= from, anyBeyond)
		}
		if lq.Ready {
			rc.liqReady++
		} else {
			rc.liqNot++
		}
	}
	return rc
}

// best returns the best price of side s of the map book (0 when empty).
func (r *refBook) best(s int) int64 {
	var b int64
	for p := range r.side[s] {
		if b == 0 || s == 0 && p > b || s == 1 && p < b {
			b = p
		}
	}
	return b
}

func TestReadinessFollowsKnownRange(t *testing.T) {
	ds := datasets[0] // spot BTCUSDT: 100 levels reach about 4-5 bps, 1000 about 33
	cfg := Config{Bands: []int{2, 10, 25, 100}}
	t.Run("HundredLevelSnapshotLeavesWideBandsUnready", func(t *testing.T) {
		rc := replayReadiness(t, ds, 100, cfg)
		t.Logf("100 levels: known to %.2f bps below / %.2f above the mid; %d updates; band ready %v, not %v; walls ready %v not %v; 1m liquidity ready %d not %d; reasons %v",
			rc.bidReachBps, rc.askReach, rc.updates, rc.bandReady, rc.bandNot, rc.wallReady, rc.wallNot, rc.liqReady, rc.liqNot, rc.reasons)
		if rc.bandReady[100] != 0 || rc.bandReady[25] != 0 || rc.bandReady[10] != 0 {
			t.Errorf("a band of 10 bps or more was ready with a 100-level snapshot: %v", rc.bandReady)
		}
		if rc.bandReady[2] == 0 {
			t.Errorf("the 2 bps band was never ready with a 100-level snapshot: %v", rc.bandNot)
		}
		if rc.wallReady != [2]int{} || rc.liqReady != 0 {
			t.Errorf("walls (%v) or the 10 bps liquidity window (%d) ready with a 100-level snapshot", rc.wallReady, rc.liqReady)
		}
		if rc.reasons[NotReadyBothUnknown] == 0 {
			t.Errorf("no band reported both sides beyond the known range: %v", rc.reasons)
		}
	})
	if raceOn {
		return // the 100-level case has ready and unready bands already
	}
	t.Run("ThousandLevelSnapshotCoversNarrowBands", func(t *testing.T) {
		rc := replayReadiness(t, ds, 1000, cfg)
		t.Logf("1000 levels: known to %.2f bps below / %.2f above the mid; %d updates; band ready %v, not %v; walls ready %v not %v; 1m liquidity ready %d not %d; reasons %v",
			rc.bidReachBps, rc.askReach, rc.updates, rc.bandReady, rc.bandNot, rc.wallReady, rc.wallNot, rc.liqReady, rc.liqNot, rc.reasons)
		// The price fell through the snapshot's bids during the
		// recording, so even narrow bands are unready at the end.
		if rc.bandReady[10] == 0 || rc.bandReady[25] == 0 || rc.bandReady[100] != 0 {
			t.Errorf("1000 levels: band ready %v, not ready %v; want 10 and 25 bps at times, 100 bps never", rc.bandReady, rc.bandNot)
		}
		if rc.liqReady == 0 {
			t.Errorf("the 1m liquidity window was never ready")
		}
	})
}
