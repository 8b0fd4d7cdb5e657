package engine_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// rec is one recorded record, copied.
type rec struct {
	kind        capture.RecordKind
	local       int64
	symbol      string
	mkt         market.Kind
	marketKnown bool
	data        []byte
	trade       bool
}

func loadRecords(tb testing.TB, file string) []rec {
	tb.Helper()
	r, err := capture.Open(testdata(file)[0], capture.OpenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	var out []rec
	for {
		x, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, rec{kind: x.Kind, local: x.Local, symbol: x.Symbol, mkt: x.Market, marketKnown: x.MarketKnown,
			data: bytes.Clone(x.Data), trade: x.Kind == capture.Frame && (bytes.Contains(x.Data, []byte(`"e":"trade"`)) || bytes.Contains(x.Data, []byte(`"e":"aggTrade"`)))})
	}
}

// report is one bar the engine reported: at close or as a revision, with
// the symbol's latest event time then (the watermark plus the lateness).
type report struct {
	Interval  time.Duration
	Revised   bool
	EventTime int64
	Bar       flow.Bar
}

// runRecords feeds recs to a fresh engine and returns it with what it
// reported. before, if set, runs before each record.
func runRecords(t *testing.T, recs []rec, lateness time.Duration, before func(*engine.Engine)) (*engine.Engine, []report) {
	t.Helper()
	var reps []report
	eng := engine.New(engine.Config{
		Flow:        flow.Config{BarIntervals: []time.Duration{time.Minute, 5 * time.Minute}},
		BarLateness: lateness,
		OnBarClose: func(s *engine.Symbol, iv time.Duration, b *flow.Bar) {
			reps = append(reps, report{Interval: iv, EventTime: s.EventTime, Bar: b.Clone()})
		},
		OnBarRevised: func(s *engine.Symbol, iv time.Duration, b *flow.Bar) {
			reps = append(reps, report{Interval: iv, Revised: true, EventTime: s.EventTime, Bar: b.Clone()})
		},
	})
	for i := range recs {
		r := &recs[i]
		if before != nil {
			before(eng)
		}
		var err error
		switch r.kind {
		case capture.Snapshot:
			err = eng.HandleSnapshot(r.symbol, r.data, r.mkt, r.marketKnown)
		case capture.Frame:
			_, err = eng.HandleFrame(r.data, r.mkt, r.marketKnown)
		}
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	return eng, reps
}

// delayed returns recs with every trade frame delivered later than
// recorded, relative to the other streams: each by a random 0..3 s, and
// the trades recorded in a 30 s block held back until 90 s after the
// block began, as a REST gap fill after a reconnect brings them (trades
// after the block wait behind it, as the service's sequencer holds them).
// Trades keep their order among themselves.
func delayed(recs []rec, seed uint64) []rec {
	rng := rand.New(rand.NewPCG(seed, 7))
	t0 := recs[0].local
	holdFrom, holdTo, release := t0+100e9, t0+130e9, t0+190e9
	type item struct {
		at int64
		i  int
	}
	items := make([]item, len(recs))
	var last int64
	for i, r := range recs {
		at := r.local
		if r.trade {
			at += rng.Int64N(3e9)
			if r.local >= holdFrom && r.local < holdTo {
				at = max(at, release)
			}
			at = max(at, last)
			last = at
		}
		items[i] = item{at, i}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	out := make([]rec, len(recs))
	for k, it := range items {
		out[k] = recs[it.i]
	}
	return out
}

func barsOf(eng *engine.Engine, sym string, iv time.Duration) []flow.Bar {
	s := eng.Symbol(sym)
	bars := s.Flow.Bars(iv, 0)
	if cur, ok := s.Flow.CurrentBar(iv); ok {
		bars = append(bars, cur)
	}
	for i := range bars {
		bars[i].LateTrades = 0 // how the trades were delivered, not what they were
	}
	return bars
}

// TestLateTradesEndWithSameBars: the real recording's trades delivered in
// order and delivered late against the depth stream (random skew and a
// held-back block) end with identical bars, every field and footprint,
// of both intervals, identical windows and totals, and the same as with
// time-driven closing off. The delayed run does amend bars.
func TestLateTradesEndWithSameBars(t *testing.T) {
	const sym = "BTCUSDT"
	recs := loadRecords(t, "hft-spot-btcusdt-20240808.txt.gz")
	inOrder, _ := runRecords(t, recs, 2*time.Second, nil)
	off, offReps := runRecords(t, recs, 0, nil)
	for _, seed := range []uint64{1, 2} {
		late, reps := runRecords(t, delayed(recs, seed), 2*time.Second, nil)
		st := late.Stats()
		revisions := 0
		for _, r := range reps {
			if r.Revised {
				revisions++
				if r.Bar.LateTrades == 0 || !r.Bar.Closed {
					t.Errorf("revision of bar %d: late %d closed %v", r.Bar.Start, r.Bar.LateTrades, r.Bar.Closed)
				}
			}
		}
		t.Logf("seed %d: %d trades, %d late, %d bars amended, %d revisions", seed, st.Trades, st.LateTrades, st.AmendedBars, revisions)
		if st.LateTrades == 0 || st.AmendedBars == 0 || revisions == 0 {
			t.Fatalf("seed %d: stats %+v, %d revisions: nothing came late", seed, st, revisions)
		}
		if st.Trades != inOrder.Stats().Trades || st.TradeRejected != 0 {
			t.Fatalf("seed %d: %d trades (%d rejected), in order %d", seed, st.Trades, st.TradeRejected, inOrder.Stats().Trades)
		}
		for _, iv := range []time.Duration{time.Minute, 5 * time.Minute} {
			a, b, c := barsOf(inOrder, sym, iv), barsOf(late, sym, iv), barsOf(off, sym, iv)
			if len(a) < 5 && iv == time.Minute {
				t.Fatalf("only %d bars", len(a))
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("seed %d, %v bars differ between in-order and late delivery", seed, iv)
				for i := range min(len(a), len(b)) {
					if !reflect.DeepEqual(a[i], b[i]) {
						t.Errorf("bar %d:\nin order %+v\nlate     %+v", a[i].Start, a[i], b[i])
						break
					}
				}
			}
			if !reflect.DeepEqual(a, c) {
				t.Errorf("%v bars differ between watermark on and off", iv)
			}
		}
		fa, fb := inOrder.Symbol(sym).Flow, late.Symbol(sym).Flow
		if fa.Now() != fb.Now() {
			t.Fatalf("clock %d in order, %d late", fa.Now(), fb.Now())
		}
		for _, w := range fa.Windows() {
			wa, _ := fa.Window(w)
			wb, _ := fb.Window(w)
			if !reflect.DeepEqual(wa, wb) {
				t.Errorf("window %v: in order %+v, late %+v", w, wa, wb)
			}
		}
		if !reflect.DeepEqual(fa.Totals(), fb.Totals()) {
			t.Errorf("totals: in order %+v, late %+v", fa.Totals(), fb.Totals())
		}
	}
	// Off: bars close only when the next bar's first trade arrives.
	for _, r := range offReps {
		if r.Revised || r.Bar.LateTrades != 0 {
			t.Errorf("watermark off: bar %d revised", r.Bar.Start)
		}
	}
}

// TestReplayTwiceSameCloses: the same input gives the same reports (bars,
// revisions, and the exchange time each was made at) every run.
func TestReplayTwiceSameCloses(t *testing.T) {
	recs := delayed(loadRecords(t, "hft-spot-btcusdt-20240808.txt.gz"), 3)
	_, a := runRecords(t, recs, 2*time.Second, nil)
	_, b := runRecords(t, recs, 2*time.Second, nil)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs differ: %d and %d reports", len(a), len(b))
	}
	closes := 0
	for _, r := range a {
		if !r.Revised {
			closes++
		}
	}
	t.Logf("%d reports, %d closes", len(a), closes)
}

// TestQuietBarClosesOnDepthTime: after the trades stop (the rest of the
// recording's trades left out, its depth frames kept), the open bar closes
// at the first depth event whose time is at least its end plus the
// lateness, not before; with the watermark off it stays open.
func TestQuietBarClosesOnDepthTime(t *testing.T) {
	const sym = "BTCUSDT"
	const lateness = 2 * time.Second
	all := loadRecords(t, "hft-spot-btcusdt-20240808.txt.gz")
	// Keep trades up to the middle of the recording, then depth only.
	cut := all[0].local + (all[len(all)-1].local-all[0].local)/2
	var recs []rec
	for _, r := range all {
		if r.trade && r.local > cut {
			continue
		}
		recs = append(recs, r)
	}
	eng, reps := runRecords(t, recs, lateness, nil)
	// The last 1m bar with trades: the one open when the trades stopped.
	var quiet *report
	for i := range reps {
		r := &reps[i]
		if r.Interval == time.Minute && !r.Revised {
			quiet = r
		}
	}
	if quiet == nil {
		t.Fatal("no 1m bar closed")
	}
	lastTrade := eng.Symbol(sym).Flow.Totals().LastTime
	if quiet.Bar.Start > lastTrade || quiet.Bar.End <= lastTrade {
		t.Fatalf("last closed bar %d..%d does not hold the last trade %d", quiet.Bar.Start, quiet.Bar.End, lastTrade)
	}
	if _, open := eng.Symbol(sym).Flow.CurrentBar(time.Minute); open {
		t.Error("a 1m bar is still open")
	}
	lms := lateness.Milliseconds()
	if quiet.EventTime-lms < quiet.Bar.End {
		t.Errorf("bar %d..%d closed at event time %d: watermark %d before its end", quiet.Bar.Start, quiet.Bar.End, quiet.EventTime, quiet.EventTime-lms)
	}
	// The event time just before the closing record: the same input again,
	// noting the latest event time below the closing one.
	var before int64
	runRecords(t, recs, lateness, func(e *engine.Engine) {
		if s := e.Symbol(sym); s != nil && s.EventTime < quiet.EventTime {
			before = s.EventTime
		}
	})
	if before-lms >= quiet.Bar.End {
		t.Errorf("bar %d closed late: an earlier event time %d already passed end %d + %d ms", quiet.Bar.Start, before, quiet.Bar.End, lms)
	}
	t.Logf("bar %d..%d (last trade %d) closed at depth event time %d; previous event %d", quiet.Bar.Start, quiet.Bar.End, lastTrade, quiet.EventTime, before)

	off, _ := runRecords(t, recs, 0, nil)
	if b, open := off.Symbol(sym).Flow.CurrentBar(time.Minute); !open || b.Start != quiet.Bar.Start {
		t.Errorf("watermark off: open bar %v %d, want bar %d still open", open, b.Start, quiet.Bar.Start)
	}
}

// BenchmarkRecordingWatermark replays the recording's frames through an
// engine with time-driven bar closing off and on (2 s): the cost of the
// watermark per frame, as a ratio of the two.
func BenchmarkRecordingWatermark(b *testing.B) {
	recs := loadRecords(b, "hft-spot-btcusdt-20240808.txt.gz")
	for _, c := range []struct {
		name     string
		lateness time.Duration
	}{{"Off", 0}, {"Lateness2s", 2 * time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				eng := engine.New(engine.Config{BarLateness: c.lateness})
				for i := range recs {
					r := &recs[i]
					if r.kind == capture.Snapshot {
						_ = eng.HandleSnapshot(r.symbol, r.data, r.mkt, r.marketKnown)
					} else {
						_, _ = eng.HandleFrame(r.data, r.mkt, r.marketKnown)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		})
	}
}
