package book

import (
	"testing"

	"github.com/orderflow/orderflow/market"
)

// TestRealStreamMissingEventResyncs removes one depth event from a real
// stream: the next event must reveal the gap, a snapshot from before the gap
// must be refused as too old, and a snapshot built from a reference book fed
// the complete stream must bring the book back, identical to the reference
// and matching bookTicker again.
func TestRealStreamMissingEventResyncs(t *testing.T) {
	tests := []struct {
		name      string
		kind      market.Kind
		files     []string
		wantCause Cause
	}{
		{"SpotGap", market.Spot, []string{"hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz"}, CauseGap},
		{"FuturesPuBreak", market.USDM, []string{"hft-usdm-btcusdt-20240808.txt.gz"}, CausePrevMismatch},
	}
	const (
		dropAt   = 2000 // index among depth events of the one removed
		afterGap = 5    // events buffered before the new snapshot arrives
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := mustLoad(t, tc.files...)
			tickers := indexTickers(recs)
			ref := NewSyncer(tc.kind, SyncOptions{})
			got := NewSyncer(tc.kind, SyncOptions{})
			var (
				depthN     int
				oldSnap    market.DepthSnapshot // ref before the removed event
				sawGap     bool
				resynced   bool
				buffered   int
				compared   int
				mismatches int
			)
			for _, r := range recs {
				switch r.kind {
				case recSnapshot:
					for _, s := range []*Syncer{ref, got} {
						if res := s.OnSnapshot(r.snap); res.Action != Applied {
							t.Fatalf("initial snapshot: %s %s", res.Action, res.Cause)
						}
					}
					continue
				case recTicker:
					continue
				}
				depthN++
				rr := ref.OnUpdate(r.depth)
				if rr.Action == NeedSnapshot && rr.Cause != CauseInitial {
					t.Fatalf("reference resynced at u=%d: %s", r.depth.FinalID, rr.Cause)
				}
				switch {
				case depthN == dropAt-1:
					ref.Book().Snapshot(0, &oldSnap)
				case depthN == dropAt:
					if !got.Synced() || !ref.Synced() {
						t.Fatalf("not synced at event %d", depthN)
					}
					continue // the event the broken stream lost
				}
				res := got.OnUpdate(r.depth)
				switch {
				case depthN == dropAt+1:
					if res.Action != NeedSnapshot || res.Cause != tc.wantCause {
						t.Fatalf("event after the removed one: %s %s, want need_snapshot %s", res.Action, res.Cause, tc.wantCause)
					}
					if got.Synced() || got.Book().Len(market.Buy) != 0 {
						t.Fatalf("book kept after the gap: state %s, %d bids", got.State(), got.Book().Len(market.Buy))
					}
					sawGap = true
					buffered = 1
					// A snapshot from before the gap cannot bridge it.
					if res := got.OnSnapshot(&oldSnap); res.Action != NeedSnapshot || res.Cause != CauseSnapshotTooOld {
						t.Fatalf("snapshot from before the gap: %s %s, want need_snapshot snapshot_too_old", res.Action, res.Cause)
					}
				case sawGap && !resynced:
					if res.Action != Buffered {
						t.Fatalf("while awaiting the snapshot: %s %s", res.Action, res.Cause)
					}
					buffered++
					if buffered == afterGap {
						var snap market.DepthSnapshot
						ref.Book().Snapshot(0, &snap)
						res := got.OnSnapshot(&snap)
						if res.Action != Applied {
							t.Fatalf("snapshot from the reference: %s %s (%v)", res.Action, res.Cause, res.Err)
						}
						if !got.Book().Equal(ref.Book()) {
							t.Fatalf("book differs from the reference after resync: %v", got.Book().Compare(&snap, 0))
						}
						resynced = true
					}
				case resynced:
					if res.Action != Applied {
						t.Fatalf("after resync, u=%d: %s %s", r.depth.FinalID, res.Action, res.Cause)
					}
					n, bad := tickers.check(t, r.depth.Symbol, got.Book(), 5-mismatches)
					compared += n
					mismatches += bad
				}
			}
			if !resynced {
				t.Fatal("the resync never happened")
			}
			if compared == 0 || mismatches != 0 {
				t.Errorf("after resync: %d bookTicker comparisons, %d mismatches", compared, mismatches)
			}
			if !got.Book().Equal(ref.Book()) {
				t.Error("book differs from the reference at the end")
			}
			st := got.Stats()
			if st.Resyncs[tc.wantCause] != 1 || st.Resyncs[CauseSnapshotTooOld] != 1 || st.Snapshots != 2 {
				t.Errorf("stats %+v", st)
			}
			t.Logf("%d bookTicker comparisons after the resync", compared)
		})
	}
}

// TestRealSpotFirstEventsDropped checks the start of the spot BTCUSDT
// recording against SOURCES.md: two buffered diffs are covered by the
// snapshot and the first applied one is U=50093239208 u=50093239224.
func TestRealSpotFirstEventsDropped(t *testing.T) {
	s := NewSyncer(market.Spot, SyncOptions{})
	for _, r := range mustLoad(t, "hft-spot-btcusdt-20240808.txt.gz") {
		switch r.kind {
		case recDepth:
			s.OnUpdate(r.depth)
			continue
		case recSnapshot:
		default:
			continue
		}
		res := s.OnSnapshot(r.snap)
		if res.Action != Applied || res.Replayed != 1 || res.UpdateID != 50093239224 {
			t.Fatalf("snapshot: %+v, want applied with 1 replayed event up to u=50093239224", res)
		}
		if st := s.Stats(); st.Covered != 2 || st.Applied != 1 {
			t.Fatalf("stats %+v, want 2 covered, 1 applied", st)
		}
		return
	}
	t.Fatal("no snapshot in the recording")
}
