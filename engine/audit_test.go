package engine_test

import (
	"io"
	"testing"

	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/market"
)

// feed runs the first n records of the spot BTCUSDT recording (all if n <
// 0) through e and returns how many it fed.
func feed(t *testing.T, e *engine.Engine, from, n int) int {
	t.Helper()
	r, err := capture.Open(testdata("hft-spot-btcusdt-20240808.txt.gz")[0], capture.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	i := 0
	for ; n < 0 || i < from+n; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i < from {
			continue
		}
		if rec.Kind == capture.Snapshot {
			if err := e.HandleSnapshot(rec.Symbol, rec.Data, rec.Market, rec.MarketKnown); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := e.HandleFrame(rec.Data, rec.Market, rec.MarketKnown); err != nil {
			t.Fatal(err)
		}
	}
	return i
}

// TestAudit hands engine A a snapshot of engine B's book taken further
// along the same stream: A compares it when its own book reaches that
// update id. A good snapshot agrees; a corrupted one is a mismatch that
// forces a resync.
func TestAudit(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		name := map[bool]string{false: "AgreesAtSameID", true: "MismatchResyncs"}[corrupt]
		t.Run(name, func(t *testing.T) {
			b := engine.New(engine.Config{})
			feed(t, b, 0, 20000)
			sb := b.Symbol("BTCUSDT")
			if !sb.Synced() {
				t.Fatal("reference engine not synced")
			}
			var snap market.DepthSnapshot
			sb.Book().Snapshot(1000, &snap)
			snap.Symbol = "BTCUSDT"
			if corrupt {
				snap.Bids[3].Qty++ // one unit of 1e-8 off
			}

			a := engine.New(engine.Config{})
			fed := feed(t, a, 0, 10000)
			a.Audit(&snap, 1000)
			if st := a.Stats(); st.Audits != 0 || st.AuditSkipped != 0 {
				t.Fatalf("audit resolved before the book reached its id: %+v", st)
			}
			feed(t, a, fed, 10000)
			st := a.Stats()
			if st.Audits != 1 {
				t.Fatalf("audits = %d, want 1 (skipped %d)", st.Audits, st.AuditSkipped)
			}
			sa := a.Symbol("BTCUSDT")
			if corrupt {
				if st.AuditMismatches != 1 || len(sa.LastAudit.Mismatches) != 1 || sa.Synced() {
					t.Fatalf("corrupted snapshot: mismatches %d (%v), synced %v", st.AuditMismatches, sa.LastAudit.Mismatches, sa.Synced())
				}
			} else if st.AuditMismatches != 0 || !sa.Synced() {
				t.Fatalf("good snapshot: mismatches %d (%v)", st.AuditMismatches, sa.LastAudit.Mismatches)
			}
		})
	}
}
