package chaos

import (
	"context"
	"testing"

	"github.com/orderflow/orderflow/book"
)

// TestForceResyncThenVerify drives verify's way out of an unjudgeable book
// on the real spot BTCUSDT recording: forceResync skips one depth event in
// the simulator, the service must count a gap resync for the symbol, and
// the following verify must find every trade and the book equal to the
// simulator's, with levels compared inside the new snapshot's known range.
func TestForceResyncThenVerify(t *testing.T) {
	h := newTestHarness(t, nil)
	ctx := context.Background()
	s, err := h.open(ctx, SpotBTC, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.close(); err != nil {
			t.Error(err)
		}
	}()
	if err := s.warmUp(ctx); err != nil {
		t.Fatal(err)
	}
	before := s.svc.Status().Symbols[0]
	if err := s.forceResync(ctx, []string{"BTCUSDT"}); err != nil {
		t.Fatal(err)
	}
	after := s.svc.Status().Symbols[0]
	// One resync more, and it is the gap's (spot: U above the book's id + 1).
	if after.Resyncs != before.Resyncs+1 || after.BookStats.Resyncs[book.CauseGap] != before.BookStats.Resyncs[book.CauseGap]+1 {
		t.Fatalf("resyncs %d -> %d (by cause %v -> %v), want exactly one more, for a gap", before.Resyncs, after.Resyncs,
			before.BookStats.Resyncs, after.BookStats.Resyncs)
	}
	v, err := s.verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.missing != 0 || v.duplicates != 0 || v.mismatches != 0 || len(v.reasons) != 0 {
		t.Fatalf("after the forced resync: %+v", v)
	}
}
