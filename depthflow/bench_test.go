package depthflow

import (
	"math"
	"testing"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/market"
)

// BenchmarkReplay replays a whole recording per op (snapshot, updates and
// trades). BookOnly applies the updates to a book.Book alone, so the
// difference is what depthflow adds; ns/update is per applied update.
func BenchmarkReplay(b *testing.B) {
	for _, ds := range []dataset{datasets[0], datasets[2]} {
		tp := newTape(b, ds)
		updates := 0
		for _, it := range tp.items {
			if it.u != nil {
				updates++
			}
		}
		b.Run(ds.name+"/BookOnly", func(b *testing.B) {
			bk := book.New()
			b.ReportAllocs()
			for b.Loop() {
				if err := bk.Reset(tp.snap); err != nil {
					b.Fatal(err)
				}
				for _, u := range tp.replay {
					_ = bk.ApplyUpdate(u)
				}
				for _, it := range tp.items {
					if it.u != nil {
						_ = bk.ApplyUpdate(it.u)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(updates), "ns/update")
		})
		b.Run(ds.name+"/WithDepthflow", func(b *testing.B) {
			bk := book.New()
			tr := New("BTCUSDT", Config{})
			tp.run(b, tr, bk) // warm up
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				tp.run(b, tr, bk)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(updates), "ns/update")
		})
	}
}

// BenchmarkWallCounts replays each recording with the default Config and
// reports how many walls were announced (listed at some update), how many
// pulled/filled signals they made and how many candidates ended before
// WallMinAge, per recording: the calibration figures of Wall. One op is
// one replay.
func BenchmarkWallCounts(b *testing.B) {
	for _, ds := range datasets {
		tp := newTape(b, ds)
		b.Run(ds.name, func(b *testing.B) {
			var st Stats
			announced := 0
			for b.Loop() {
				tr := New("BTCUSDT", Config{EndedWallHistory: 1 << 20})
				tp.pass = 0
				tp.run(b, tr, book.New())
				st = tr.Stats()
				announced = len(tr.EndedWalls(math.MinInt64, nil)) + len(tr.Walls(market.Buy, nil)) + len(tr.Walls(market.Sell, nil))
			}
			b.ReportMetric(float64(announced), "walls")
			b.ReportMetric(float64(st.Signals[WallPulled]+st.Signals[WallFilled]), "signals")
			b.ReportMetric(float64(st.WallsUnannounced), "unannounced")
		})
	}
}
