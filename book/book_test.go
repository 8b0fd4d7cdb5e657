package book

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

func mustBook(t *testing.T, snap *market.DepthSnapshot) *Book {
	t.Helper()
	b := New()
	if err := b.Reset(snap); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResetValidates(t *testing.T) {
	tests := []struct {
		name    string
		snap    *market.DepthSnapshot
		wantErr error
		wantMsg string
	}{
		{"NegativeQty", snapAt(1, lvs(lv("100", "1"), lv("99", "-2")), nil), ErrQty, "reset from snapshot lastUpdateId=1: bids[1] -2@99: book: quantity must not be negative"},
		{"ZeroPrice", snapAt(1, nil, lvs(lv("0", "1"))), ErrPrice, "reset from snapshot lastUpdateId=1: asks[0] 1@0: book: price must be positive"},
		{"DuplicatePrice", snapAt(1, lvs(lv("100", "1"), lv("99", "1"), lv("100", "2")), nil), ErrDuplicate, "reset from snapshot lastUpdateId=1: bids: price 100: book: duplicate price in snapshot"},
		{"Crossed", snapAt(1, lvs(lv("101", "1")), lvs(lv("101", "1"))), ErrCrossed, ""},
		{"Nil", nil, ErrNil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustBook(t, baseBook(7))
			err := b.Reset(tc.snap)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Fatalf("err %q, want %q", err, tc.wantMsg)
			}
			if b.Len(market.Buy) != 0 || b.Len(market.Sell) != 0 || b.UpdateID() != 0 {
				t.Fatalf("book not emptied after a refused snapshot: %d/%d id %d", b.Len(market.Buy), b.Len(market.Sell), b.UpdateID())
			}
		})
	}
}

func TestResetSortsAndDropsZeroLevels(t *testing.T) {
	tests := []struct {
		name string
		snap *market.DepthSnapshot
	}{
		{"BinanceOrder", snapAt(9, lvs(lv("100", "1"), lv("99.5", "0"), lv("99", "2")), lvs(lv("101", "1"), lv("102", "3")))},
		{"Shuffled", snapAt(9, lvs(lv("99", "2"), lv("100", "1"), lv("99.5", "0")), lvs(lv("102", "3"), lv("101", "1"), lv("150", "0")))},
		{"Ascending", snapAt(9, lvs(lv("99", "2"), lv("100", "1")), lvs(lv("101", "1"), lv("102", "3")))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustBook(t, tc.snap)
			wantLevels(t, b, market.Buy, lv("100", "1"), lv("99", "2"))
			wantLevels(t, b, market.Sell, lv("101", "1"), lv("102", "3"))
			if b.UpdateID() != 9 {
				t.Fatalf("UpdateID %d", b.UpdateID())
			}
		})
	}
}

func TestApplyAndApplyUpdateRefuseBadLevels(t *testing.T) {
	b := mustBook(t, baseBook(5))
	before := b.Clone()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"BadSide", b.Apply(market.Side(7), fixed.One, fixed.One), ErrSide},
		{"NegativePrice", b.Apply(market.Buy, -fixed.One, fixed.One), ErrPrice},
		{"NegativeQty", b.Apply(market.Sell, fixed.One, -1), ErrQty},
		// The good first level must not be applied when a later one is bad.
		{"UpdateIsAtomic", b.ApplyUpdate(sev(6, 6, lvs(lv("100", "50")), lvs(lv("101", "-1")))), ErrQty},
		{"NilUpdate", b.ApplyUpdate(nil), ErrNil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("err %v, want %v", tc.err, tc.want)
			}
		})
	}
	if !b.Equal(before) {
		t.Fatal("a refused input changed the book")
	}
}

func TestApplyEdgeCases(t *testing.T) {
	b := mustBook(t, baseBook(5))
	if err := b.Apply(market.Buy, fixed.MustParse("98"), 0); err != nil { // absent: no-op
		t.Fatal(err)
	}
	if err := b.Apply(market.Sell, fixed.MustParse("101"), 0); err != nil { // remove best ask
		t.Fatal(err)
	}
	if err := b.Apply(market.Buy, fixed.MustParse("99.5"), fixed.MustParse("0.00000001")); err != nil {
		t.Fatal(err)
	}
	wantLevels(t, b, market.Buy, lv("100", "1"), lv("99.5", "0.00000001"), lv("99", "2"))
	wantLevels(t, b, market.Sell, lv("102", "3"))
	if b.UpdateID() != 5 {
		t.Fatalf("Apply changed UpdateID to %d", b.UpdateID())
	}
	// A crossing level is accepted and reported.
	if b.Crossed() {
		t.Fatal("crossed too early")
	}
	_ = b.Apply(market.Buy, fixed.MustParse("102"), fixed.One)
	if !b.Crossed() {
		t.Fatal("bid at the best ask must be crossed (locked)")
	}
	if sp, ok := b.Spread(); !ok || sp != 0 {
		t.Fatalf("Spread %s %v", sp, ok)
	}
	b.Clear()
	if _, ok := b.BestBid(); ok || b.Crossed() || b.UpdateID() != 0 {
		t.Fatal("Clear left levels")
	}
	for name, ok := range map[string]bool{
		"Spread": second(b.Spread()), "Mid": second(b.Mid()), "Microprice": second(b.Microprice()),
		"DepthWithin": third(b.DepthWithin(10)), "NotionalWithin": third(b.NotionalWithin(10)),
	} {
		if ok {
			t.Errorf("%s ok on an empty book", name)
		}
	}
}

func second[A any](_ A, ok bool) bool           { return ok }
func third[A, B any](_ A, _ B, ok bool) bool    { return ok }
func must2[A any](t *testing.T, a A, ok bool) A { t.Helper(); mustOK(t, ok); return a }
func mustOK(t *testing.T, ok bool) {
	t.Helper()
	if !ok {
		t.Fatal("not ok")
	}
}

func TestPricesAtTheTop(t *testing.T) {
	// The first bookTicker of the spot BTCUSDT recording.
	b := mustBook(t, snapAt(1, lvs(lv("61837.63", "3.78826")), lvs(lv("61837.64", "1.54698"))))
	if mid, ok := b.Mid(); !ok || mid.FormatScaled(MidScale) != "61837.635" {
		t.Errorf("Mid %s %v, want 61837.635", mid.FormatScaled(MidScale), ok)
	}
	if sp, ok := b.Spread(); !ok || sp != fixed.MustParse("0.01") {
		t.Errorf("Spread %s %v", sp, ok)
	}
	// (61837.63*1.54698 + 61837.64*3.78826) / 5.33524 = 61837.637100...
	mp, ok := b.Microprice()
	mustOK(t, ok)
	if want := 61837.63 + 0.01*3.78826/5.33524; math.Abs(mp-want) > 1e-9 {
		t.Errorf("Microprice %.10f, want %.10f", mp, want)
	}
	// Equal sizes: microprice is the mid.
	b2 := mustBook(t, snapAt(1, lvs(lv("1", "2")), lvs(lv("3", "2"))))
	if mp, _ := b2.Microprice(); mp != 2 {
		t.Errorf("Microprice %v, want 2", mp)
	}
}

func TestDepthWithinBounds(t *testing.T) {
	tests := []struct {
		name           string
		bids, asks     []market.Level
		bps            int
		wantB, wantA   string // quantities
		wantBN, wantAN string // notionals
	}{
		{
			// mid 100: 1 bps is 99.99..100.01, bounds included.
			name: "BoundsIncluded",
			bids: lvs(lv("99.99", "1"), lv("99.98", "5")), asks: lvs(lv("100.01", "2"), lv("100.02", "7")),
			bps: 1, wantB: "1", wantA: "2", wantBN: "99.99", wantAN: "200.02",
		},
		{
			// bid 3e-8, ask 4e-8: mid 3.5e-8 lies between representable
			// prices, so with 0 bps neither side is inside.
			name: "MidBetweenSteps",
			bids: lvs(lv("0.00000003", "1")), asks: lvs(lv("0.00000004", "1")),
			bps: 0, wantB: "0", wantA: "0", wantBN: "0", wantAN: "0",
		},
		{
			name: "WholeBidSideAt10000Bps",
			bids: lvs(lv("100", "1"), lv("0.00000001", "4")), asks: lvs(lv("101", "1"), lv("1000", "9")),
			bps: 10000, wantB: "5", wantA: "1", wantBN: "100.00000004", wantAN: "101",
		},
		{
			// Prices near the int64 limit: the band bound overflows and
			// must clamp instead of wrapping; (2^63-1)^2 * 1e-16 checked
			// with Python decimal.
			name: "HugePricesHugeBand",
			bids: lvs(lv("92233720368.5", "1")), asks: lvs(lv("92233720368.54775807", "92233720368.54775807")),
			bps: math.MaxInt32, wantB: "1", wantA: "92233720368.54775807",
			wantBN: "92233720368.5", wantAN: "8507059173023461584739.6907784232501249",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustBook(t, snapAt(1, tc.bids, tc.asks))
			bq, aq, ok := b.DepthWithin(tc.bps)
			mustOK(t, ok)
			bn, an, ok := b.NotionalWithin(tc.bps)
			mustOK(t, ok)
			got := []string{bq.FormatScaled(8), aq.FormatScaled(8), bn.FormatScaled(16), an.FormatScaled(16)}
			want := []string{tc.wantB, tc.wantA, tc.wantBN, tc.wantAN}
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
	b := mustBook(t, baseBook(1))
	if _, _, ok := b.DepthWithin(-1); ok {
		t.Error("negative bps must not be ok")
	}
}

func TestCompare(t *testing.T) {
	// Book: bids 100 x1, 99 x2, 98 x4, 90 x1; asks 101 x1, 102 x3, 110 x5.
	book := mustBook(t, snapAt(10,
		lvs(lv("100", "1"), lv("99", "2"), lv("98", "4"), lv("90", "1")),
		lvs(lv("101", "1"), lv("102", "3"), lv("110", "5"))))
	tests := []struct {
		name  string
		snap  *market.DepthSnapshot
		limit int
		want  []Mismatch
	}{
		{
			name:  "TruncatedSnapshotIgnoresDeeperLevels",
			snap:  snapAt(10, lvs(lv("100", "1"), lv("99", "2")), lvs(lv("101", "1"), lv("102", "3"))),
			limit: 2,
		},
		{
			name:  "CompleteSideCoversEverything",
			snap:  snapAt(10, lvs(lv("100", "1"), lv("99", "2"), lv("98", "4")), lvs(lv("101", "1"), lv("102", "3"))),
			limit: 5,
			want: []Mismatch{
				{Side: market.Buy, Price: fixed.MustParse("90"), BookQty: fixed.One},
				{Side: market.Sell, Price: fixed.MustParse("110"), BookQty: 5 * fixed.One},
			},
		},
		{
			name: "QtyAndPresenceDiffer",
			// unsorted on purpose; 99.5 missing from the book, 99 missing
			// from the snapshot, 100 different, 101.5 extra ask.
			snap: snapAt(10, lvs(lv("98", "4"), lv("100", "1.5"), lv("99.5", "7")), lvs(lv("102", "3"), lv("101.5", "1"), lv("101", "1"))),
			want: []Mismatch{
				{Side: market.Buy, Price: fixed.MustParse("100"), BookQty: fixed.One, SnapQty: fixed.MustParse("1.5")},
				{Side: market.Buy, Price: fixed.MustParse("99.5"), SnapQty: 7 * fixed.One},
				{Side: market.Buy, Price: fixed.MustParse("99"), BookQty: 2 * fixed.One},
				{Side: market.Sell, Price: fixed.MustParse("101.5"), SnapQty: fixed.One},
			},
		},
		{
			name: "BetterLevelOnlyInBook",
			snap: snapAt(10, lvs(lv("99", "2"), lv("98", "4")), lvs(lv("102", "3"))),
			want: []Mismatch{
				{Side: market.Buy, Price: fixed.MustParse("100"), BookQty: fixed.One},
				{Side: market.Sell, Price: fixed.MustParse("101"), BookQty: fixed.One},
			},
		},
		{
			name:  "EmptyCompleteSide",
			snap:  snapAt(10, nil, lvs(lv("101", "1"), lv("102", "3"), lv("110", "5"))),
			limit: 100,
			want: []Mismatch{
				{Side: market.Buy, Price: fixed.MustParse("100"), BookQty: fixed.One},
				{Side: market.Buy, Price: fixed.MustParse("99"), BookQty: 2 * fixed.One},
				{Side: market.Buy, Price: fixed.MustParse("98"), BookQty: 4 * fixed.One},
				{Side: market.Buy, Price: fixed.MustParse("90"), BookQty: fixed.One},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := book.Compare(tc.snap, tc.limit)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
	m := Mismatch{Side: market.Buy, Price: fixed.MustParse("61837.63"), BookQty: fixed.MustParse("3.78826")}
	if got := m.String(); got != "BUY 61837.63: book 3.78826 snapshot absent" {
		t.Errorf("String %q", got)
	}
}

func TestSnapshotTopAndCloneAreIndependent(t *testing.T) {
	b := mustBook(t, snapAt(10,
		lvs(lv("100", "1"), lv("99", "2"), lv("98", "4")),
		lvs(lv("101", "1"), lv("102", "3"))))
	dst := &market.DepthSnapshot{Symbol: "BTCUSDT", Bids: make([]market.Level, 0, 8)}
	b.Snapshot(2, dst)
	if dst.Symbol != "BTCUSDT" || dst.LastUpdateID != 10 ||
		!slices.Equal(dst.Bids, lvs(lv("100", "1"), lv("99", "2"))) ||
		!slices.Equal(dst.Asks, lvs(lv("101", "1"), lv("102", "3"))) {
		t.Fatalf("Snapshot(2) = %+v", dst)
	}
	c := b.Clone()
	_ = b.Apply(market.Buy, fixed.MustParse("100"), 0)
	if c.Equal(b) {
		t.Fatal("clone shares memory with the book")
	}
	b.CopyFrom(c)
	if !c.Equal(b) {
		t.Fatal("CopyFrom did not copy")
	}
	// A round trip through Snapshot and Reset gives the same book.
	var full market.DepthSnapshot
	b.Snapshot(0, &full)
	if r := mustBook(t, &full); !r.Equal(b) {
		t.Fatal("Snapshot/Reset round trip differs")
	}
}

func TestApplyUpdateAllocatesNothing(t *testing.T) {
	recs := mustLoad(t, "hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz")
	snap, ups := syncedUpdates(t, market.Spot, recs)
	b := New()
	replay := func() {
		if err := b.Reset(snap); err != nil {
			t.Fatal(err)
		}
		for _, u := range ups {
			if err := b.ApplyUpdate(u); err != nil {
				t.Fatal(err)
			}
		}
	}
	replay() // grow the slices once
	if n := testing.AllocsPerRun(3, replay); n != 0 {
		t.Fatalf("replaying %d real updates: %v allocs, want 0", len(ups), n)
	}
	var dst []market.Level
	if n := testing.AllocsPerRun(100, func() {
		dst = b.Bids(20, dst[:0])
		_, _, _ = b.DepthWithin(10)
		_, _, _ = b.NotionalWithin(10)
		_, _ = b.Mid()
		_, _ = b.Microprice()
	}); n != 0 {
		t.Fatalf("reads: %v allocs, want 0", n)
	}
}

// syncedUpdates returns a recording's snapshot and the depth updates that
// the sync procedure applies after it, in order.
func syncedUpdates(tb testing.TB, kind market.Kind, recs []rec) (*market.DepthSnapshot, []*market.DepthUpdate) {
	tb.Helper()
	s := NewSyncer(kind, SyncOptions{})
	var snap *market.DepthSnapshot
	var pending, ups []*market.DepthUpdate
	for _, r := range recs {
		switch r.kind {
		case recDepth:
			res := s.OnUpdate(r.depth)
			if snap == nil {
				pending = append(pending, r.depth)
			} else if res.Action == Applied {
				ups = append(ups, r.depth)
			}
		case recSnapshot:
			snap = r.snap
			res := s.OnSnapshot(snap)
			if res.Action != Applied {
				tb.Fatalf("snapshot: %+v", res)
			}
			// The replayed events are the last Replayed of the buffered.
			ups = append(ups, pending[len(pending)-res.Replayed:]...)
		}
	}
	if snap == nil || len(ups) == 0 || !s.Synced() {
		tb.Fatal("recording did not sync")
	}
	return snap, ups
}
