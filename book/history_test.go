package book

import (
	"slices"
	"testing"

	"github.com/orderflow/orderflow/market"
)

// TestHistoryOnRealStream records the spot BTCUSDT book once per second of
// exchange time into a ring smaller than the recording and checks every
// frame against a copy taken when it was recorded, then At and Range.
func TestHistoryOnRealStream(t *testing.T) {
	const (
		interval = 1000
		depth    = 10
		capacity = 120
	)
	h := NewHistory(HistoryOptions{Interval: interval, Depth: depth, Capacity: capacity})
	s := NewSyncer(market.Spot, SyncOptions{})
	type kept struct {
		time, id   int64
		bids, asks []market.Level
	}
	var all []kept
	seconds := map[int64]bool{}
	for _, r := range mustLoad(t, "hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz") {
		switch r.kind {
		case recSnapshot:
			s.OnSnapshot(r.snap)
		case recDepth:
			if s.OnUpdate(r.depth).Action != Applied {
				continue
			}
			b := s.Book()
			sec := r.depth.EventTime / interval
			recorded := h.Record(r.depth.EventTime, b)
			if recorded == seconds[sec] {
				t.Fatalf("E=%d: recorded %v, but second seen before: %v", r.depth.EventTime, recorded, seconds[sec])
			}
			seconds[sec] = true
			if recorded {
				all = append(all, kept{r.depth.EventTime, b.UpdateID(), b.Bids(depth, nil), b.Asks(depth, nil)})
			}
		}
	}
	if len(all) < 600 || h.Len() != capacity {
		t.Fatalf("%d frames recorded (%d held), want >= 600 seconds and a full ring of %d", len(all), h.Len(), capacity)
	}
	want := all[len(all)-capacity:]
	got := slices.Collect(h.Range(want[0].time, want[len(want)-1].time))
	if len(got) != capacity {
		t.Fatalf("Range over the ring: %d frames, want %d", len(got), capacity)
	}
	for i, f := range got {
		w := want[i]
		if f.Time != w.time || f.UpdateID != w.id || !slices.Equal(f.Bids, w.bids) || !slices.Equal(f.Asks, w.asks) || len(f.Bids) != depth {
			t.Fatalf("frame %d: got t=%d id=%d, want t=%d id=%d (or levels differ)", i, f.Time, f.UpdateID, w.time, w.id)
		}
	}
	// "Where was the book 60 s before the last frame?"
	last := want[len(want)-1].time
	f, ok := h.At(last - 60_000)
	var wantAt kept
	for _, w := range want {
		if w.time <= last-60_000 {
			wantAt = w
		}
	}
	if !ok || f.Time != wantAt.time || !slices.Equal(f.Bids, wantAt.bids) {
		t.Fatalf("At(last-60s) = t=%d %v, want t=%d", f.Time, ok, wantAt.time)
	}
	if f, ok := h.At(want[0].time - 1); ok {
		t.Fatalf("At before the oldest frame returned t=%d", f.Time)
	}
	if f, ok := h.At(last + 1e9); !ok || f.Time != last {
		t.Fatalf("At after the newest frame: t=%d %v", f.Time, ok)
	}
	if n := len(slices.Collect(h.Range(want[10].time, want[19].time))); n != 10 {
		t.Fatalf("Range of 10 frames gave %d", n)
	}
	// A full ring reuses its memory.
	b := s.Book()
	next := last
	if n := testing.AllocsPerRun(100, func() {
		next += interval
		if !h.Record(next, b) {
			t.Fatal("not recorded")
		}
	}); n != 0 {
		t.Fatalf("Record on a full ring: %v allocs, want 0", n)
	}
}

func TestHistoryRecordRules(t *testing.T) {
	b := mustBook(t, baseBook(3))
	h := NewHistory(HistoryOptions{Interval: 1000, Depth: 1, Capacity: 3})
	steps := []struct {
		name string
		t    int64
		want bool
	}{
		{"FirstFrame", 10_500, true},
		{"SameInterval", 10_999, false},
		{"NextInterval", 11_000, true},
		{"Late", 9_000, false},
		{"SkipsEmptyIntervals", 15_200, true},
		{"WrapsRing", 16_000, true},
	}
	for _, st := range steps {
		if got := h.Record(st.t, b); got != st.want {
			t.Fatalf("%s: Record(%d) = %v, want %v", st.name, st.t, got, st.want)
		}
	}
	if h.Late() != 1 || h.Len() != 3 {
		t.Fatalf("Late %d Len %d", h.Late(), h.Len())
	}
	var times []int64
	for f := range h.Range(0, 1<<62) {
		times = append(times, f.Time)
		if !slices.Equal(f.Bids, lvs(lv("100", "1"))) || !slices.Equal(f.Asks, lvs(lv("101", "1"))) {
			t.Fatalf("frame levels %v %v", f.Bids, f.Asks)
		}
	}
	if !slices.Equal(times, []int64{11_000, 15_200, 16_000}) {
		t.Fatalf("frames %v", times)
	}
	f, _ := h.At(15_999)
	c := f.Clone()
	h.Record(17_000, b) // overwrites the oldest slot, not c
	if c.Time != 15_200 || &c.Bids[0] == &f.Bids[0] {
		t.Fatal("Clone shares memory")
	}
}

// TestHistoryRecordAllocsOnce: the ring is allocated at the first frame;
// every later Record, while the ring fills and after it wraps, allocates
// nothing (the engine records once per second of every synced symbol).
func TestHistoryRecordAllocsOnce(t *testing.T) {
	var bk Book
	for _, r := range mustLoad(t, "hft-spot-btcusdt-20240808.txt.gz") {
		if r.kind == recSnapshot {
			if err := bk.Reset(r.snap); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if bk.Len(market.Buy) < 20 || bk.Len(market.Sell) < 20 {
		t.Fatalf("snapshot book too small: %d/%d", bk.Len(market.Buy), bk.Len(market.Sell))
	}
	const capacity = 50
	h := NewHistory(HistoryOptions{Capacity: capacity})
	first := testing.AllocsPerRun(1, func() { h.Record(0, &bk) })
	if first > 2 {
		t.Fatalf("first Record: %v allocations, want at most 2 (frames and levels)", first)
	}
	ts := int64(0)
	if n := testing.AllocsPerRun(3*capacity, func() {
		ts += 1000
		if !h.Record(ts, &bk) {
			t.Fatal("not recorded")
		}
	}); n != 0 {
		t.Fatalf("Record after the first: %v allocations, want 0", n)
	}
	if h.Len() != capacity {
		t.Fatalf("Len %d, want %d", h.Len(), capacity)
	}
	f, ok := h.At(ts)
	if !ok || len(f.Bids) != 20 || len(f.Asks) != 20 || cap(f.Bids) != 20 {
		t.Fatalf("newest frame: ok=%v bids %d (cap %d) asks %d", ok, len(f.Bids), cap(f.Bids), len(f.Asks))
	}
	if want := bk.Bids(20, nil); !slices.Equal(f.Bids, want) {
		t.Fatalf("newest frame bids %v, want %v", f.Bids, want)
	}
}
