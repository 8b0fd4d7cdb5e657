package flow

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestLateTradesAmendClosedBars drives the watermark ahead of the tape:
// after each real trade, Advance moves it up to 5 s past that trade's time
// (a pseudo-random lead, fixed seed), so bars close before their last
// trades arrive and those trades amend them. The final bars must equal the
// math/big reference and, field by field with footprints (LateTrades
// aside, which records the delivery), the bars of a tracker fed the same
// trades without a watermark; windows must be the same too.
func TestLateTradesAmendClosedBars(t *testing.T) {
	for _, ds := range []dataset{datasets[0], datasets[3]} {
		t.Run(ds.name, func(t *testing.T) {
			trades := load(t, ds)
			cfg := Config{BarIntervals: []time.Duration{time.Minute, 5 * time.Minute}}
			plain := NewTracker(ds.symbol, cfg)
			feed(t, plain, trades)

			var closed, revised []Bar
			lcfg := cfg
			lcfg.OnBarClose = func(iv time.Duration, b *Bar) {
				if iv == time.Minute {
					closed = append(closed, b.Clone())
				}
			}
			lcfg.OnBarRevised = func(iv time.Duration, b *Bar) {
				if !b.Closed || b.LateTrades == 0 {
					t.Errorf("OnBarRevised(%v) with bar %d closed=%v late=%d", iv, b.Start, b.Closed, b.LateTrades)
				}
				if iv == time.Minute {
					revised = append(revised, b.Clone())
				}
			}
			late := NewTracker(ds.symbol, lcfg)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range trades {
				if err := late.Add(&trades[i].T); err != nil {
					t.Fatalf("trade %d: %v", i, err)
				}
				late.Advance(trades[i].T.Time + rng.Int64N(5000))
			}
			lt := late.Late()
			if lt.Trades == 0 || lt.AmendedBars == 0 || len(revised) == 0 {
				t.Fatalf("late %+v, %d revisions: the test amends nothing", lt, len(revised))
			}
			t.Logf("%d trades, %d late, %d bars amended, %d revisions of 1m bars", len(trades), lt.Trades, lt.AmendedBars, len(revised))

			ref := refBars(trades, 60_000, nil, DefaultImbalancePercent, DefaultStackedImbalanceMin)
			late.Flush()
			got := late.Bars(time.Minute, 0)
			if len(got) != len(ref) {
				t.Fatalf("%d bars, want %d", len(got), len(ref))
			}
			for i := range ref {
				checkBar(t, &got[i], ref[i])
			}
			// The last report of each bar (a close, then its revisions) is the
			// final bar.
			last := map[int64]Bar{}
			for _, b := range append(closed, revised...) {
				if prev, ok := last[b.Start]; !ok || b.LateTrades >= prev.LateTrades {
					last[b.Start] = b
				}
			}
			for i := range got {
				if !reflect.DeepEqual(last[got[i].Start], got[i]) {
					t.Errorf("bar %d: last report differs from the kept bar", got[i].Start)
				}
			}

			plain.Flush()
			for _, iv := range cfg.BarIntervals {
				a, b := plain.Bars(iv, 0), late.Bars(iv, 0)
				if len(a) != len(b) {
					t.Fatalf("%v: %d bars in time, %d with late trades", iv, len(a), len(b))
				}
				for i := range a {
					b[i].LateTrades = 0
					if !reflect.DeepEqual(a[i], b[i]) {
						t.Errorf("%v bar %d differs:\nin time %+v\nlate    %+v", iv, a[i].Start, a[i], b[i])
					}
				}
			}
			at := late.Now()
			for _, w := range plain.Windows() {
				a, oka := plain.WindowAt(w, at)
				b, okb := late.WindowAt(w, at)
				if !oka || !okb || !reflect.DeepEqual(a, b) {
					t.Errorf("window %v at %d: in time %+v (%v), late %+v (%v)", w, at, a, oka, b, okb)
				}
			}
			if !reflect.DeepEqual(plain.Totals(), late.Totals()) {
				t.Errorf("totals differ:\n%+v\n%+v", plain.Totals(), late.Totals())
			}
		})
	}
}

// TestAdvanceOverdueBar: a trade whose interval the watermark already
// passed, in an interval that had no bar, opens a bar that the next
// Advance closes, even one not moving the watermark; it counts as late
// but amends nothing.
func TestAdvanceOverdueBar(t *testing.T) {
	trades := load(t, datasets[0])
	var closed []int64
	tk := NewTracker("BTCUSDT", Config{OnBarClose: func(_ time.Duration, b *Bar) { closed = append(closed, b.Start) }})
	first := trades[0].T.Time
	if err := tk.Add(&trades[0].T); err != nil {
		t.Fatal(err)
	}
	// Find the first trade two intervals later, and put the watermark past
	// its interval before it arrives.
	start0 := first - first%60_000
	k := 0
	for k = range trades {
		if trades[k].T.Time >= start0+120_000 {
			break
		}
	}
	tr := trades[k].T
	end := tr.Time - tr.Time%60_000 + 60_000
	tk.Advance(end + 5000)
	if len(closed) != 1 || closed[0] != start0 {
		t.Fatalf("closed %v, want [%d]", closed, start0)
	}
	if err := tk.Add(&tr); err != nil {
		t.Fatal(err)
	}
	if l := tk.Late(); l.Trades != 1 || l.AmendedBars != 0 {
		t.Fatalf("late %+v, want 1 trade, 0 amended bars", l)
	}
	if _, ok := tk.CurrentBar(time.Minute); !ok {
		t.Fatal("the late trade opened no bar")
	}
	tk.Advance(end) // behind the watermark: still closes the overdue bar
	if len(closed) != 2 || closed[1] != end-60_000 {
		t.Fatalf("closed %v, want the overdue bar %d second", closed, end-60_000)
	}
	if tk.Watermark() != end+5000 {
		t.Errorf("watermark %d moved back, want %d", tk.Watermark(), end+5000)
	}
}
