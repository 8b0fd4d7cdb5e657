package book

import (
	"maps"
	"slices"
	"testing"

	"github.com/orderflow/orderflow/market"
)

type tickerKey struct {
	sym string
	id  int64
}

// tickerIndex holds the bookTickers of a recording by symbol and update id.
// The bookTicker stream runs ahead of the batched depth stream, so a ticker
// is matched by its update id wherever it sits in the file.
type tickerIndex map[tickerKey][]market.BookTicker

func indexTickers(recs []rec) tickerIndex {
	idx := tickerIndex{}
	for _, r := range recs {
		if r.kind == recTicker {
			k := tickerKey{r.sym, r.ticker.UpdateID}
			idx[k] = append(idx[k], r.ticker)
		}
	}
	return idx
}

// check compares b's best bid and ask, price and quantity, with every
// bookTicker at b's update id; it returns how many it compared and how many
// differed, reporting at most report of them.
func (idx tickerIndex) check(t *testing.T, sym string, b *Book, report int) (compared, bad int) {
	t.Helper()
	for _, tk := range idx[tickerKey{sym, b.UpdateID()}] {
		compared++
		bid, ok1 := b.BestBid()
		ask, ok2 := b.BestAsk()
		if !ok1 || !ok2 || bid.Price != tk.BidPrice || bid.Qty != tk.BidQty || ask.Price != tk.AskPrice || ask.Qty != tk.AskQty {
			bad++
			if bad <= report {
				t.Errorf("%s u=%d: book bid %v ask %v, bookTicker bid %s x %s ask %s x %s", sym, tk.UpdateID, bid, ask, tk.BidPrice, tk.BidQty, tk.AskPrice, tk.AskQty)
			}
		}
	}
	return compared, bad
}

// replayStats is what replaying a recording through Syncers produced.
type replayStats struct {
	compared map[string]int // bookTicker comparisons per symbol
	syncers  map[string]*Syncer
}

// replayRecording feeds every depth event and snapshot of recs to one Syncer
// per symbol, the way a live client would, and at every bookTicker whose u
// is the book's current update id compares best bid and ask, price and
// quantity. Any resync other than the initial one, any refused snapshot and
// any mismatch fails the test.
func replayRecording(t *testing.T, kind market.Kind, recs []rec) replayStats {
	t.Helper()
	st := replayStats{compared: map[string]int{}, syncers: map[string]*Syncer{}}
	tickers := indexTickers(recs)
	get := func(sym string) *Syncer {
		s := st.syncers[sym]
		if s == nil {
			s = NewSyncer(kind, SyncOptions{})
			st.syncers[sym] = s
		}
		return s
	}
	mismatches := 0
	compare := func(sym string, b *Book) {
		n, bad := tickers.check(t, sym, b, 5-mismatches)
		st.compared[sym] += n
		mismatches += bad
	}
	for _, r := range recs {
		switch r.kind {
		case recDepth:
			s := get(r.sym)
			res := s.OnUpdate(r.depth)
			if res.Action == NeedSnapshot && res.Cause != CauseInitial {
				t.Errorf("%s: event U=%d u=%d: resync %s (%v)", r.sym, r.depth.FirstID, r.depth.FinalID, res.Cause, res.Err)
			}
			if s.Book().Crossed() {
				t.Errorf("%s: crossed after u=%d", r.sym, r.depth.FinalID)
			}
			if res.Action == Applied {
				compare(r.sym, s.Book())
			}
		case recSnapshot:
			s := get(r.sym)
			res := s.OnSnapshot(r.snap)
			if res.Action != Applied {
				t.Errorf("%s: snapshot lastUpdateId=%d: %s %s (%v)", r.sym, r.snap.LastUpdateID, res.Action, res.Cause, res.Err)
				continue
			}
			// SOURCES.md counts the ids reached by applying diffs, so the
			// snapshot's own id is not compared unless diffs were replayed.
			if res.Replayed > 0 {
				compare(r.sym, s.Book())
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d bookTicker mismatches", mismatches)
	}
	for sym, s := range st.syncers {
		if !s.Synced() {
			t.Errorf("%s: not synced at the end (state %s)", sym, s.State())
		}
	}
	return st
}

func TestRealRecordingsMatchBookTicker(t *testing.T) {
	tests := []struct {
		name  string
		kind  market.Kind
		files []string
		// From testdata/binance/SOURCES.md, "Verified".
		wantCompared int
		wantApplied  uint64 // 0: not stated for this recording
		wantSymbols  int
		// wantPerSymbol: per-symbol comparison counts SOURCES.md states.
		wantPerSymbol map[string]int
	}{
		{"SpotBTCUSDT", market.Spot, []string{"hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz"}, 1072, 6493, 1, nil},
		{"SpotETHUSDT", market.Spot, []string{"hft-spot-ethusdt-20240808.txt.gz", "hft-spot-ethusdt-20240809.txt.gz"}, 1056, 6468, 1, nil},
		{"USDMBTCUSDT0808", market.USDM, []string{"hft-usdm-btcusdt-20240808.txt.gz"}, 629, 6547, 1, nil},
		{"USDMETHUSDT0808", market.USDM, []string{"hft-usdm-ethusdt-20240808.txt.gz"}, 551, 6581, 1, nil},
		{"USDMBTCUSDT0718And0719", market.USDM, []string{"hft-usdm-btcusdt-20240718.txt.gz", "hft-usdm-btcusdt-20240719.txt.gz"}, 625, 9017, 1, nil},
		{"CryptofeedSpot10Symbols", market.Spot, []string{"cryptofeed-spot-10sym-20210405.txt.gz"}, 1152, 0, 10, map[string]int{"DENTUSDT": 301, "ZILUSDT": 178}},
		{"CryptofeedUSDM5Symbols", market.USDM, []string{"cryptofeed-usdm-5sym-20210405.txt.gz"}, 215, 0, 5, nil},
	}
	if testing.Short() {
		// The race stage of make test: one spot and one USD-M recording
		// (the book is single-threaded; the full set runs without -race).
		tests = append(tests[:1], tests[2])
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := replayRecording(t, tc.kind, mustLoad(t, tc.files...))
			total := 0
			for _, n := range st.compared {
				total += n
			}
			if total != tc.wantCompared {
				t.Errorf("compared %d bookTickers (%v), want %d", total, st.compared, tc.wantCompared)
			}
			for sym, n := range tc.wantPerSymbol {
				if st.compared[sym] != n {
					t.Errorf("%s: compared %d, want %d", sym, st.compared[sym], n)
				}
			}
			if len(st.syncers) != tc.wantSymbols {
				t.Errorf("symbols %v, want %d", slices.Sorted(maps.Keys(st.syncers)), tc.wantSymbols)
			}
			var applied uint64
			for sym, s := range st.syncers {
				ss := s.Stats()
				applied += ss.Applied
				if ss.Snapshots != 1 || ss.Resyncs[CauseInitial] != 1 {
					t.Errorf("%s: %d snapshots, %d initial syncs, want 1 and 1", sym, ss.Snapshots, ss.Resyncs[CauseInitial])
				}
				for c := CauseSnapshotTooOld; c < NumCauses; c++ {
					if ss.Resyncs[c] != 0 {
						t.Errorf("%s: %d resyncs for %s", sym, ss.Resyncs[c], c)
					}
				}
				// Ignored is not asserted: cryptofeed's snapshots were fetched
				// seconds in, ahead of diffs still in flight, which are then
				// rightly ignored as stale.
				if ss.Invalid != 0 || ss.Overflow != 0 || ss.Discarded != 0 {
					t.Errorf("%s: stats %+v", sym, ss)
				}
				if st.compared[sym] == 0 {
					t.Errorf("%s: no bookTicker comparison", sym)
				}
			}
			if tc.wantApplied != 0 && applied != tc.wantApplied {
				t.Errorf("applied %d diffs, want %d", applied, tc.wantApplied)
			}
			t.Logf("compared %v, applied %d", st.compared, applied)
		})
	}
}
