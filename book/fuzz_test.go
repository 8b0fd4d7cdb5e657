package book

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// FuzzBookAgainstReference reads the input as a list of 5-byte operations
// (side, price offset, quantity) and checks the book against the naive map
// book after each one, including negative and zero inputs that must be
// refused without changing anything.
func FuzzBookAgainstReference(f *testing.F) {
	f.Add([]byte{0, 10, 0, 5, 0, 1, 20, 0, 7, 0, 0, 10, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, r := New(), newRef()
		rng := rand.New(rand.NewPCG(uint64(len(data)), 1))
		for len(data) >= 5 {
			side := market.Side(data[0] % 3) // 2 is an invalid side
			price := fixed.Dec(int16(binary.BigEndian.Uint16(data[1:3])))
			qty := fixed.Dec(int16(binary.BigEndian.Uint16(data[3:5])))
			data = data[5:]
			err := b.Apply(side, price, qty)
			if valid := side <= market.Sell && price > 0 && qty >= 0; valid != (err == nil) {
				t.Fatalf("Apply(%d, %d, %d): err %v", side, price, qty, err)
			}
			if err == nil {
				r.apply(side, price, qty)
			}
			if e := agree(b, r, rng); e != nil {
				t.Fatal(e)
			}
		}
	})
}

// FuzzSyncer feeds random update-id sequences (spot and futures) to a
// Syncer: it must never panic, never report a crossed book while synced, and
// its book must equal a reference that applies exactly the events the
// Syncer reports as applied.
func FuzzSyncer(f *testing.F) {
	f.Add(uint64(1), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(uint64(7), []byte{0, 0, 9, 1, 1, 1, 200, 3, 4, 5})
	f.Fuzz(func(t *testing.T, seed uint64, data []byte) {
		kind := market.Kind(seed % 2)
		s := NewSyncer(kind, SyncOptions{MaxBuffer: 4})
		rng := rand.New(rand.NewPCG(seed, 2))
		ref := New()
		var last, prev int64 = 10, 5
		for _, c := range data {
			if c%7 == 0 { // a snapshot from the reference state, or an arbitrary one
				snap := &market.DepthSnapshot{LastUpdateID: last - int64(c%3)}
				snap.Bids = []market.Level{{Price: 100 * fixed.One, Qty: fixed.Dec(c) + 1}}
				snap.Asks = []market.Level{{Price: 101 * fixed.One, Qty: 1}}
				res := s.OnSnapshot(snap)
				if res.Action == Applied {
					if res.Replayed != 0 {
						// Replayed events are not mirrored in ref: rebuild it.
						ref.CopyFrom(s.Book())
					} else {
						_ = ref.Reset(snap)
					}
				}
			} else {
				first := last + 1 + int64(c%4) - 1 // sometimes overlapping, sometimes a gap
				final := first + int64(c%5)
				u := &market.DepthUpdate{FirstID: first, FinalID: final}
				if kind == market.USDM {
					u.HasPrev = true
					u.PrevFinalID = prev
					if c%11 == 0 {
						u.PrevFinalID--
					}
				}
				side := market.Side(rng.IntN(2))
				l := market.Level{Price: fixed.Dec(90+rng.IntN(20)) * fixed.One, Qty: fixed.Dec(rng.IntN(3))}
				if side == market.Buy {
					u.Bids = []market.Level{l}
				} else {
					u.Asks = []market.Level{l}
				}
				res := s.OnUpdate(u)
				if res.Action == Applied {
					_ = ref.ApplyUpdate(u)
				}
				prev, last = final, final
			}
			if s.Synced() {
				if s.Book().Crossed() {
					t.Fatal("synced book is crossed")
				}
				if !s.Book().Equal(ref) {
					t.Fatal("book differs from the events reported applied")
				}
			}
			if st := s.Stats(); st.Buffered > 4 {
				t.Fatalf("buffered %d > MaxBuffer", st.Buffered)
			}
		}
	})
}
