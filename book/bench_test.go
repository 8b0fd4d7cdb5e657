package book

import (
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

var benchRecordings = []struct {
	name  string
	kind  market.Kind
	files []string
}{
	{"SpotBTCUSDT", market.Spot, []string{"hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz"}},
	{"USDMBTCUSDT", market.USDM, []string{"hft-usdm-btcusdt-20240808.txt.gz"}},
}

func countLevels(ups []*market.DepthUpdate) int {
	n := 0
	for _, u := range ups {
		n += len(u.Bids) + len(u.Asks)
	}
	return n
}

// naiveBest scans a map side for its best price, as a map-based book must.
func naiveBest(m map[fixed.Dec]fixed.Dec, side market.Side) (best fixed.Dec, ok bool) {
	for p := range m {
		if !ok || (side == market.Buy && p > best) || (side == market.Sell && p < best) {
			best, ok = p, true
		}
	}
	return best, ok
}

func loadRef(snap *market.DepthSnapshot) *refBook {
	r := newRef()
	for _, l := range snap.Bids {
		r.apply(market.Buy, l.Price, l.Qty)
	}
	for _, l := range snap.Asks {
		r.apply(market.Sell, l.Price, l.Qty)
	}
	return r
}

func (r *refBook) applyUpdate(u *market.DepthUpdate) {
	for _, l := range u.Bids {
		r.apply(market.Buy, l.Price, l.Qty)
	}
	for _, l := range u.Asks {
		r.apply(market.Sell, l.Price, l.Qty)
	}
}

// warm grows bk's slices to the recording's size, so that the timed loop
// shows the steady state.
func warm(bk *Book, snap *market.DepthSnapshot, ups []*market.DepthUpdate) {
	_ = bk.Reset(snap)
	for _, u := range ups {
		_ = bk.ApplyUpdate(u)
	}
}

// BenchmarkReplay replays every depth update the sync procedure applies to
// a real recording, from its snapshot; one op is the whole replay.
// ns/update and ns/level divide it by the updates and levels applied.
func BenchmarkReplay(b *testing.B) {
	for _, rc := range benchRecordings {
		snap, ups := syncedUpdates(b, rc.kind, mustLoad(b, rc.files...))
		nu, nl := float64(len(ups)), float64(countLevels(ups))
		report := func(b *testing.B) {
			per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(per/nu, "ns/update")
			b.ReportMetric(per/nl, "ns/level")
		}
		b.Run(rc.name+"/Book", func(b *testing.B) {
			bk := New()
			warm(bk, snap, ups)
			b.ReportAllocs()
			for b.Loop() {
				_ = bk.Reset(snap)
				for _, u := range ups {
					_ = bk.ApplyUpdate(u)
				}
			}
			report(b)
		})
		b.Run(rc.name+"/BookWithTop", func(b *testing.B) {
			bk := New()
			warm(bk, snap, ups)
			b.ReportAllocs()
			for b.Loop() {
				_ = bk.Reset(snap)
				for _, u := range ups {
					_ = bk.ApplyUpdate(u)
					_, _ = bk.BestBid()
					_, _ = bk.BestAsk()
				}
			}
			report(b)
		})
		b.Run(rc.name+"/NaiveMap", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := loadRef(snap)
				for _, u := range ups {
					r.applyUpdate(u)
				}
			}
			report(b)
		})
		b.Run(rc.name+"/NaiveMapWithTop", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := loadRef(snap)
				for _, u := range ups {
					r.applyUpdate(u)
					_, _ = naiveBest(r.side[market.Buy], market.Buy)
					_, _ = naiveBest(r.side[market.Sell], market.Sell)
				}
			}
			report(b)
		})
		b.Run(rc.name+"/Syncer", func(b *testing.B) {
			s := NewSyncer(rc.kind, SyncOptions{})
			warm(s.Book(), snap, ups)
			b.ReportAllocs()
			for b.Loop() {
				s.Reset()
				s.OnUpdate(ups[0])
				if r := s.OnSnapshot(snap); r.Action != Applied {
					b.Fatalf("snapshot: %+v", r)
				}
				for _, u := range ups[1:] {
					if r := s.OnUpdate(u); r.Action != Applied {
						b.Fatalf("update: %+v", r)
					}
				}
			}
			report(b)
		})
	}
}

// BenchmarkApplyUpdate measures one real update at a time on the live book
// (the replay restarts from the snapshot, untimed, when it runs out).
func BenchmarkApplyUpdate(b *testing.B) {
	for _, rc := range benchRecordings {
		snap, ups := syncedUpdates(b, rc.kind, mustLoad(b, rc.files...))
		b.Run(rc.name, func(b *testing.B) {
			bk := New()
			_ = bk.Reset(snap)
			b.ReportAllocs()
			levels := 0
			for i := 0; i < b.N; i++ {
				k := i % len(ups)
				if k == 0 && i > 0 {
					b.StopTimer()
					_ = bk.Reset(snap)
					b.StartTimer()
				}
				_ = bk.ApplyUpdate(ups[k])
				levels += len(ups[k].Bids) + len(ups[k].Asks)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(levels), "ns/level")
		})
	}
}

// BenchmarkReads measures the reads a dashboard or strategy makes on the
// book at the end of the spot BTCUSDT recording, against the naive map.
func BenchmarkReads(b *testing.B) {
	snap, ups := syncedUpdates(b, market.Spot, mustLoad(b, benchRecordings[0].files...))
	bk := New()
	_ = bk.Reset(snap)
	r := loadRef(snap)
	for _, u := range ups {
		_ = bk.ApplyUpdate(u)
		r.applyUpdate(u)
	}
	b.Run("Top20/Book", func(b *testing.B) {
		dst := make([]market.Level, 0, 40)
		b.ReportAllocs()
		for b.Loop() {
			dst = bk.Bids(20, dst[:0])
			dst = bk.Asks(20, dst)
		}
	})
	b.Run("Top20/NaiveMap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.levels(market.Buy)[:20]
			_ = r.levels(market.Sell)[:20]
		}
	})
	b.Run("DepthWithin10bps/Book", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = bk.DepthWithin(10)
		}
	})
	b.Run("NotionalWithin10bps/Book", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = bk.NotionalWithin(10)
		}
	})
	b.Run("DepthWithin10bps/NaiveMap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bb, _ := naiveBest(r.side[market.Buy], market.Buy)
			ba, _ := naiveBest(r.side[market.Sell], market.Sell)
			// Integer bounds as in the book, so only the data structure differs.
			sum := int64(bb) + int64(ba)
			lo, hi := fixed.Dec(sum*9990/20000), fixed.Dec(sum*10010/20000)
			var qb, qa fixed.Int128
			for p, q := range r.side[market.Buy] {
				if p >= lo {
					qb = qb.AddDec(q)
				}
			}
			for p, q := range r.side[market.Sell] {
				if p <= hi {
					qa = qa.AddDec(q)
				}
			}
		}
	})
	b.Run("Compare1000/Book", func(b *testing.B) {
		var full market.DepthSnapshot
		bk.Snapshot(1000, &full)
		b.ReportAllocs()
		for b.Loop() {
			if m := bk.Compare(&full, 1000); m != nil {
				b.Fatal(m)
			}
		}
	})
}
