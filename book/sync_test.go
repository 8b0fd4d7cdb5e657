package book

import (
	"errors"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

func lv(p, q string) market.Level {
	return market.Level{Price: fixed.MustParse(p), Qty: fixed.MustParse(q)}
}

func lvs(l ...market.Level) []market.Level { return l }

// sev is a spot depth event U..u.
func sev(first, final int64, bids, asks []market.Level) *market.DepthUpdate {
	return &market.DepthUpdate{Symbol: "BTCUSDT", FirstID: first, FinalID: final, Bids: bids, Asks: asks}
}

// fev is a USD-M depth event U..u with pu.
func fev(first, final, prev int64, bids, asks []market.Level) *market.DepthUpdate {
	u := sev(first, final, bids, asks)
	u.PrevFinalID, u.HasPrev = prev, true
	return u
}

func snapAt(last int64, bids, asks []market.Level) *market.DepthSnapshot {
	return &market.DepthSnapshot{Symbol: "BTCUSDT", LastUpdateID: last, Bids: bids, Asks: asks}
}

// baseBook is the snapshot most scenarios start from.
func baseBook(last int64) *market.DepthSnapshot {
	return snapAt(last, lvs(lv("100", "1"), lv("99", "2")), lvs(lv("101", "1"), lv("102", "3")))
}

// syncStep is one input to a Syncer and what must come out.
type syncStep struct {
	ev     *market.DepthUpdate
	snap   *market.DepthSnapshot
	action Action
	cause  Cause
	// replayed is checked for snapshots.
	replayed int
	// id is the book's UpdateID expected after the step when synced.
	id int64
}

func TestSyncerRules(t *testing.T) {
	tests := []struct {
		name  string
		kind  market.Kind
		opts  SyncOptions
		steps []syncStep
		check func(t *testing.T, s *Syncer)
	}{
		{
			name: "FirstEventsDropped",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(1, 5, lvs(lv("100", "9")), nil), action: NeedSnapshot, cause: CauseInitial},
				{ev: sev(6, 8, lvs(lv("98", "1")), nil), action: Buffered},
				{ev: sev(9, 12, lvs(lv("100", "4")), lvs(lv("101", "0"))), action: Buffered},
				{snap: baseBook(8), action: Applied, replayed: 1, id: 12},
				{ev: sev(13, 13, nil, lvs(lv("101.5", "2"))), action: Applied, id: 13},
			},
			check: func(t *testing.T, s *Syncer) {
				b := s.Book()
				wantLevels(t, b, market.Buy, lv("100", "4"), lv("99", "2"))
				wantLevels(t, b, market.Sell, lv("101.5", "2"), lv("102", "3"))
				if st := s.Stats(); st.Covered != 2 || st.Applied != 2 || st.Buffered != 0 || st.Snapshots != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{
			name: "SnapshotTooOld",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				// lastUpdateId 9 = first U - 1: the documented rule asks
				// for lastUpdateId >= first U.
				{snap: baseBook(9), action: NeedSnapshot, cause: CauseSnapshotTooOld},
				{ev: sev(13, 14, nil, nil), action: Buffered},
				{snap: baseBook(10), action: Applied, replayed: 2, id: 14},
			},
			check: func(t *testing.T, s *Syncer) {
				if st := s.Stats(); st.Resyncs[CauseSnapshotTooOld] != 1 || st.Snapshots != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{
			name: "GapTriggersResync",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(12), action: Applied, id: 12},
				{ev: sev(13, 15, nil, nil), action: Applied, id: 15}, // U = id+1
				{ev: sev(14, 17, nil, nil), action: Applied, id: 17}, // overlap: U <= id < u
				{ev: sev(19, 20, nil, nil), action: NeedSnapshot, cause: CauseGap},
			},
			check: func(t *testing.T, s *Syncer) {
				if s.Synced() || s.State() != AwaitingSnapshot || s.Book().Len(market.Buy) != 0 || s.Book().UpdateID() != 0 {
					t.Errorf("after gap: state %s, book %d bids id %d", s.State(), s.Book().Len(market.Buy), s.Book().UpdateID())
				}
				if st := s.Stats(); st.Buffered != 1 || st.Resyncs[CauseGap] != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{
			name: "DuplicateIgnored",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(12), action: Applied, id: 12},
				{ev: sev(13, 15, lvs(lv("100", "5")), nil), action: Applied, id: 15},
				{ev: sev(13, 15, lvs(lv("100", "5")), nil), action: Ignored, cause: CauseStale, id: 15},
				{ev: sev(5, 11, lvs(lv("100", "7")), nil), action: Ignored, cause: CauseStale, id: 15},
				{ev: sev(16, 16, nil, nil), action: Applied, id: 16},
			},
			check: func(t *testing.T, s *Syncer) {
				wantLevels(t, s.Book(), market.Buy, lv("100", "5"), lv("99", "2"))
				if st := s.Stats(); st.Ignored != 2 || st.Applied != 2 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{
			name: "ResyncAfterGapMatchesAgain",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(12), action: Applied, id: 12},
				{ev: sev(20, 22, lvs(lv("100", "8")), nil), action: NeedSnapshot, cause: CauseGap},
				{ev: sev(23, 25, lvs(lv("99", "0")), nil), action: Buffered},
				{ev: sev(26, 30, nil, lvs(lv("101", "6"))), action: Buffered},
				// The snapshot at 24 holds the gap event and part of the next.
				{snap: snapAt(24, lvs(lv("100", "8"), lv("99", "1")), lvs(lv("101", "1"))), action: Applied, replayed: 2, id: 30},
				{ev: sev(31, 31, nil, nil), action: Applied, id: 31},
			},
			check: func(t *testing.T, s *Syncer) {
				wantLevels(t, s.Book(), market.Buy, lv("100", "8"))
				wantLevels(t, s.Book(), market.Sell, lv("101", "6"))
				if st := s.Stats(); st.Resyncs[CauseGap] != 1 || st.Snapshots != 2 || st.Covered != 2 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{
			name: "CrossedBookResyncs",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(12), action: Applied, id: 12},
				{ev: sev(13, 14, lvs(lv("101", "1")), nil), action: NeedSnapshot, cause: CauseCrossed},
				{ev: sev(15, 16, nil, nil), action: Buffered},
			},
			check: func(t *testing.T, s *Syncer) {
				if st := s.Stats(); st.Buffered != 2 || st.Resyncs[CauseCrossed] != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{
			name: "BufferOverflow",
			kind: market.Spot,
			opts: SyncOptions{MaxBuffer: 3},
			steps: []syncStep{
				{ev: sev(1, 2, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{ev: sev(3, 4, nil, nil), action: Buffered},
				{ev: sev(5, 6, nil, nil), action: Buffered},
				{ev: sev(7, 8, nil, nil), action: NeedSnapshot, cause: CauseBufferOverflow},
				{ev: sev(9, 10, nil, nil), action: Buffered, cause: CauseBufferOverflow},
				// The buffer now starts at U=5: a snapshot at 4 is too old.
				{snap: baseBook(4), action: NeedSnapshot, cause: CauseSnapshotTooOld},
				{snap: baseBook(6), action: Applied, replayed: 2, id: 10},
			},
			check: func(t *testing.T, s *Syncer) {
				if st := s.Stats(); st.Overflow != 2 || st.Resyncs[CauseBufferOverflow] != 1 || st.Covered != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{
			name: "FuturesBridgeEvent",
			kind: market.USDM,
			steps: []syncStep{
				{ev: fev(100, 110, 90, lvs(lv("100", "7")), nil), action: NeedSnapshot, cause: CauseInitial},
				{ev: fev(115, 130, 110, lvs(lv("99", "5")), nil), action: Buffered},
				{ev: fev(131, 140, 130, nil, lvs(lv("101", "0"))), action: Buffered},
				// u=110 < 120 is dropped; 115 <= 120 <= 130 bridges.
				{snap: baseBook(120), action: Applied, replayed: 2, id: 140},
				{ev: fev(150, 155, 140, nil, nil), action: Applied, id: 155},
			},
			check: func(t *testing.T, s *Syncer) {
				wantLevels(t, s.Book(), market.Buy, lv("100", "1"), lv("99", "5"))
				wantLevels(t, s.Book(), market.Sell, lv("102", "3"))
				if st := s.Stats(); st.Covered != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{
			name: "FuturesBridgeAtExactU",
			kind: market.USDM,
			steps: []syncStep{
				{ev: fev(100, 110, 90, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				// u == lastUpdateId is kept (drop is u < lastUpdateId) and bridges.
				{snap: baseBook(110), action: Applied, replayed: 1, id: 110},
				{ev: fev(120, 125, 110, nil, nil), action: Applied, id: 125},
			},
		},
		{
			name: "FuturesLiveBridgeAfterStale",
			kind: market.USDM,
			steps: []syncStep{
				{ev: fev(100, 110, 90, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(130), action: Applied, id: 130},
				{ev: fev(111, 120, 110, nil, nil), action: Ignored, cause: CauseStale, id: 130},
				{ev: fev(121, 135, 120, nil, nil), action: Applied, id: 135},
			},
		},
		{
			name: "FuturesNoBridge",
			kind: market.USDM,
			steps: []syncStep{
				{ev: fev(100, 110, 90, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{ev: fev(120, 130, 110, nil, nil), action: Buffered},
				{snap: baseBook(115), action: NeedSnapshot, cause: CauseNoBridge},
			},
			check: func(t *testing.T, s *Syncer) {
				if st := s.Stats(); st.Buffered != 1 || st.Snapshots != 1 || s.Synced() {
					t.Errorf("stats %+v state %s", st, s.State())
				}
			},
		},
		{
			name: "FuturesSnapshotTooOld",
			kind: market.USDM,
			steps: []syncStep{
				{ev: fev(100, 110, 90, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(99), action: NeedSnapshot, cause: CauseSnapshotTooOld},
			},
		},
		{
			name: "FuturesPuBreak",
			kind: market.USDM,
			steps: []syncStep{
				{ev: fev(100, 110, 90, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(105), action: Applied, replayed: 1, id: 110},
				{ev: fev(115, 120, 110, nil, nil), action: Applied, id: 120},
				{ev: fev(130, 140, 125, nil, nil), action: NeedSnapshot, cause: CausePrevMismatch},
			},
		},
		{
			name: "FuturesNeverUsesSpotRule",
			kind: market.USDM,
			steps: []syncStep{
				{ev: fev(100, 110, 90, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(105), action: Applied, replayed: 1, id: 110},
				// U > id+1 would be a spot gap; pu matches, so it applies.
				{ev: fev(150, 160, 110, nil, nil), action: Applied, id: 160},
				// U = id+1 would pass the spot rule; pu does not match.
				{ev: fev(161, 170, 155, nil, nil), action: NeedSnapshot, cause: CausePrevMismatch},
			},
		},
		{
			name: "FuturesDuplicateIgnored",
			kind: market.USDM,
			steps: []syncStep{
				{ev: fev(100, 110, 90, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(105), action: Applied, replayed: 1, id: 110},
				{ev: fev(115, 120, 110, nil, nil), action: Applied, id: 120},
				{ev: fev(115, 120, 110, nil, nil), action: Ignored, cause: CauseStale, id: 120},
				{ev: fev(121, 125, 120, nil, nil), action: Applied, id: 125},
			},
		},
		{
			name: "SnapshotWhileSyncedIgnored",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(12), action: Applied, id: 12},
				{snap: snapAt(50, nil, nil), action: Ignored, cause: CauseUnexpected, id: 12},
			},
			check: func(t *testing.T, s *Syncer) {
				wantLevels(t, s.Book(), market.Buy, lv("100", "1"), lv("99", "2"))
			},
		},
		{
			name: "InvalidEventResyncs",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: baseBook(12), action: Applied, id: 12},
				{ev: sev(13, 14, lvs(lv("100", "-1")), nil), action: NeedSnapshot, cause: CauseInvalid},
				{ev: sev(15, 16, nil, nil), action: Buffered},
				{snap: baseBook(15), action: Applied, replayed: 1, id: 16},
			},
			check: func(t *testing.T, s *Syncer) {
				if st := s.Stats(); st.Invalid != 1 || st.Resyncs[CauseInvalid] != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{
			name: "InvalidIDsRefused",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(14, 13, nil, nil), action: NeedSnapshot, cause: CauseInvalid},
			},
		},
		{
			name: "FuturesEventOnSpotSyncerRefused",
			kind: market.Spot,
			steps: []syncStep{
				{ev: fev(10, 12, 9, nil, nil), action: NeedSnapshot, cause: CauseInvalid},
			},
		},
		{
			name: "SpotEventOnFuturesSyncerRefused",
			kind: market.USDM,
			steps: []syncStep{
				{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInvalid},
			},
		},
		{
			name: "CrossedSnapshotRefused",
			kind: market.Spot,
			steps: []syncStep{
				{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInitial},
				{snap: snapAt(12, lvs(lv("101", "1")), lvs(lv("100", "1"))), action: NeedSnapshot, cause: CauseInvalid},
				{snap: baseBook(12), action: Applied, id: 12},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSyncer(tc.kind, tc.opts)
			runSteps(t, s, tc.steps)
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func runSteps(t *testing.T, s *Syncer, steps []syncStep) {
	t.Helper()
	for i, st := range steps {
		var r Result
		what := "snapshot"
		if st.ev != nil {
			r = s.OnUpdate(st.ev)
			what = "event"
		} else {
			r = s.OnSnapshot(st.snap)
		}
		if r.Action != st.action || r.Cause != st.cause {
			t.Fatalf("step %d (%s): %s %s (%v), want %s %s", i, what, r.Action, r.Cause, r.Err, st.action, st.cause)
		}
		if (r.Cause == CauseInvalid) != (r.Err != nil) {
			t.Fatalf("step %d: cause %s with error %v", i, r.Cause, r.Err)
		}
		if st.snap != nil && r.Replayed != st.replayed {
			t.Fatalf("step %d: replayed %d, want %d", i, r.Replayed, st.replayed)
		}
		if r.Action == Applied || r.Action == Ignored {
			if r.UpdateID != st.id || s.Book().UpdateID() != st.id {
				t.Fatalf("step %d: update id %d (book %d), want %d", i, r.UpdateID, s.Book().UpdateID(), st.id)
			}
		}
		if s.Synced() != (r.Action == Applied || r.Action == Ignored) {
			t.Fatalf("step %d: Synced %v after %s", i, s.Synced(), r.Action)
		}
	}
}

func wantLevels(t *testing.T, b *Book, side market.Side, want ...market.Level) {
	t.Helper()
	var got []market.Level
	if side == market.Buy {
		got = b.Bids(0, nil)
	} else {
		got = b.Asks(0, nil)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %v, want %v", side, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: %v, want %v", side, got, want)
		}
	}
}

func TestSyncerResetStartsOver(t *testing.T) {
	s := NewSyncer(market.Spot, SyncOptions{})
	runSteps(t, s, []syncStep{
		{ev: sev(10, 12, nil, nil), action: NeedSnapshot, cause: CauseInitial},
		{ev: sev(13, 14, nil, nil), action: Buffered},
	})
	s.Reset()
	if s.State() != WaitingForEvents || s.Stats().Buffered != 0 || s.Stats().Discarded != 2 {
		t.Fatalf("after Reset: state %s stats %+v", s.State(), s.Stats())
	}
	runSteps(t, s, []syncStep{
		{ev: sev(20, 22, nil, nil), action: NeedSnapshot, cause: CauseInitial},
		{snap: baseBook(21), action: Applied, replayed: 1, id: 22},
	})
	if got := s.Stats().Resyncs[CauseInitial]; got != 2 {
		t.Fatalf("initial syncs %d, want 2", got)
	}
}

func TestSyncerInvalidErrorNamesField(t *testing.T) {
	s := NewSyncer(market.Spot, SyncOptions{})
	r := s.OnUpdate(sev(1, 2, lvs(lv("100", "1")), lvs(lv("101", "1"), lv("0", "1"))))
	if !errors.Is(r.Err, ErrPrice) {
		t.Fatalf("err %v, want ErrPrice", r.Err)
	}
	if want := "depth update u=2: a[1] 1@0: book: price must be positive"; r.Err.Error() != want {
		t.Fatalf("err %q, want %q", r.Err, want)
	}
	if r := s.OnSnapshot(nil); r.Action != NeedSnapshot || !errors.Is(r.Err, ErrNil) {
		t.Fatalf("nil snapshot: %+v", r)
	}
	if r := s.OnUpdate(nil); r.Action != NeedSnapshot || !errors.Is(r.Err, ErrNil) {
		t.Fatalf("nil event: %+v", r)
	}
}

// TestSyncerBufferCopiesEvents checks that buffered events do not alias the
// caller's slices, which decoders reuse.
func TestSyncerBufferCopiesEvents(t *testing.T) {
	s := NewSyncer(market.Spot, SyncOptions{})
	u := sev(10, 12, lvs(lv("100", "3")), nil)
	s.OnUpdate(u)
	u.Bids[0] = lv("100", "999") // the decoder reuses its slice
	u.FirstID, u.FinalID = 13, 13
	s.OnUpdate(u)
	if r := s.OnSnapshot(baseBook(10)); r.Action != Applied || r.Replayed != 2 {
		t.Fatalf("snapshot: %+v", r)
	}
	wantLevels(t, s.Book(), market.Buy, lv("100", "999"), lv("99", "2"))
	// The first event's copy must have kept 3, visible by replaying only it.
	s2 := NewSyncer(market.Spot, SyncOptions{})
	u2 := sev(10, 12, lvs(lv("100", "3")), nil)
	s2.OnUpdate(u2)
	u2.Bids[0] = lv("100", "999")
	s2.OnSnapshot(baseBook(10))
	wantLevels(t, s2.Book(), market.Buy, lv("100", "3"), lv("99", "2"))
}

func TestSyncerSteadyStateAllocatesNothing(t *testing.T) {
	s := NewSyncer(market.Spot, SyncOptions{})
	up := sev(1, 1, lvs(lv("100", "1"), lv("98", "1")), lvs(lv("101", "2")))
	s.OnUpdate(up)
	s.OnSnapshot(baseBook(1))
	id := int64(1)
	live := testing.AllocsPerRun(1000, func() {
		id++
		up.FirstID, up.FinalID = id, id
		if r := s.OnUpdate(up); r.Action != Applied {
			t.Fatalf("live: %+v", r)
		}
	})
	if live != 0 {
		t.Errorf("live OnUpdate: %v allocs/op, want 0", live)
	}
	// Buffering reuses recycled events once a resync cycle has warmed up.
	snap := baseBook(0)
	cycle := func() {
		s.Reset()
		for range 20 {
			id++
			up.FirstID, up.FinalID = id, id
			s.OnUpdate(up)
		}
		snap.LastUpdateID = id - 5
		if r := s.OnSnapshot(snap); r.Action != Applied {
			t.Fatalf("cycle: %+v", r)
		}
	}
	cycle()
	if n := testing.AllocsPerRun(50, cycle); n != 0 {
		t.Errorf("buffer, snapshot and replay: %v allocs/op, want 0", n)
	}
}
