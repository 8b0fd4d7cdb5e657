package flow

import (
	"runtime"
	"testing"
	"time"

	"github.com/orderflow/orderflow/market"
)

// replay yields the real trades again and again, each pass shifted by one
// day and past the previous pass's ids, so the tracker sees an endless,
// valid tape made only of recorded prints.
type replay struct {
	trades []rawTrade
	i      int
}

func (r *replay) next() market.Trade {
	pass, k := r.i/len(r.trades), r.i%len(r.trades)
	r.i++
	first, last := r.trades[0].T, r.trades[len(r.trades)-1].T
	tr := r.trades[k].T
	tr.ID += int64(pass) * (last.ID - first.ID + 1)
	tr.Time += int64(pass) * 86_400_000
	return tr
}

func TestAddDoesNotAllocate(t *testing.T) {
	trades := load(t, datasets[0])
	tk := NewTracker("BTCUSDT", Config{})
	rp := &replay{trades: trades}
	// Warm up: fill the bar ring (120 bars at 12 a pass) and let every
	// recycled footprint slice and the session profile reach their size.
	for range 15 * len(trades) {
		tr := rp.next()
		if err := tk.Add(&tr); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("AllocsPerRun", func(t *testing.T) {
		var err error
		avg := testing.AllocsPerRun(len(trades), func() {
			tr := rp.next()
			err = tk.Add(&tr)
		})
		if err != nil {
			t.Fatal(err)
		}
		if avg != 0 {
			t.Errorf("Add allocates %v times per trade", avg)
		}
	})
	t.Run("WholePassExactCount", func(t *testing.T) {
		// AllocsPerRun rounds down; count every allocation of a full pass.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range len(trades) {
			tr := rp.next()
			if err := tk.Add(&tr); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		if n := after.Mallocs - before.Mallocs; n != 0 {
			t.Errorf("%d allocations over %d trades", n, len(trades))
		}
	})
}

func TestMemoryPerSymbol(t *testing.T) {
	trades := load(t, datasets[0])
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	tk := NewTracker("BTCUSDT", Config{})
	empty := heap()
	rp := &replay{trades: trades}
	for range len(trades) {
		tr := rp.next()
		if err := tk.Add(&tr); err != nil {
			t.Fatal(err)
		}
	}
	fed := heap()
	for range 12 * len(trades) { // past the 120-bar ring
		tr := rp.next()
		if err := tk.Add(&tr); err != nil {
			t.Fatal(err)
		}
	}
	full := heap()
	runtime.KeepAlive(tk)
	mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
	t.Logf("default config, one symbol: new %.2f MiB; after the 19,904-trade BTCUSDT recording %.2f MiB; with the 120-bar ring full %.2f MiB",
		mib(empty-base), mib(fed-base), mib(full-base))
	if full-base > 64<<20 {
		t.Errorf("a tracker holds %.1f MiB", mib(full-base))
	}
}

func BenchmarkAdd(b *testing.B) {
	trades := load(b, datasets[0])
	tk := NewTracker("BTCUSDT", Config{})
	rp := &replay{trades: trades}
	b.ReportAllocs()
	for b.Loop() {
		tr := rp.next()
		if err := tk.Add(&tr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQueries(b *testing.B) {
	trades := load(b, datasets[0])
	tk := NewTracker("BTCUSDT", Config{})
	feed(b, tk, trades)
	b.Run("Window1h", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tk.Window(time.Hour)
		}
	})
	b.Run("Window1m", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tk.Window(time.Minute)
		}
	})
	b.Run("CurrentBar", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tk.CurrentBar(time.Minute)
		}
	})
	b.Run("SessionProfile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tk.SessionProfile()
		}
	})
}
