package book

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// chooser is where a deep stream draws its choices from: a seeded PCG in
// the property test, the fuzzer's bytes in the fuzz target.
type chooser interface {
	// intn returns a choice in [0, n), n > 0.
	intn(n int) int
	// more reports whether there are choices left.
	more() bool
}

type rngChooser struct {
	r    *rand.Rand
	left int // steps left
}

func (c *rngChooser) intn(n int) int { return c.r.IntN(n) }
func (c *rngChooser) more() bool     { c.left--; return c.left >= 0 }

type byteChooser struct{ b []byte }

func (c *byteChooser) intn(n int) int {
	if len(c.b) < 2 {
		c.b = nil
		return 0
	}
	v := int(binary.LittleEndian.Uint16(c.b))
	c.b = c.b[2:]
	return v % n
}
func (c *byteChooser) more() bool { return len(c.b) >= 2 }

// deepStream drives a Book and the naive map reference with the same
// operations on a grid of prices, dense enough for thousands of levels a
// side and sparse enough (a grid step of 64 units of 1e-8) that a new
// price fits between any two neighbours, so insertions can be placed at
// any distance from a tombstone.
type deepStream struct {
	c     chooser
	b     *Book
	r     *refBook
	width int // grid points a side
	// drain is a phase of the stream in which deletions dominate, so a
	// deep side fills with tombstones and gets compacted; it toggles at
	// random every few hundred steps.
	drain bool
	steps int
	// Counts of what the stream exercised, for the test to require.
	tombInserts     int    // new prices that took a tombstone
	shiftInserts    int    // new prices that shifted to the end of the side
	atReach         [2]int // new prices with the nearest tombstone at the reach bound: inside, just outside
	compactions     int
	revived, resets int
	maxLen          int
}

const (
	deepCenter = 60000 * fixed.One
	deepStep   = 64
)

// gridPrice is grid point g (0 nearest the touch) of side s.
func (d *deepStream) gridPrice(s market.Side, g int) fixed.Dec {
	if s == market.Buy {
		return deepCenter - deepStep - fixed.Dec(g)*deepStep
	}
	return deepCenter + deepStep + fixed.Dec(g)*deepStep
}

func (d *deepStream) side(s market.Side) ([]market.Level, int) {
	if s == market.Buy {
		return d.b.bids, d.b.bidTomb
	}
	return d.b.asks, d.b.askTomb
}

func (d *deepStream) set(s market.Side, p, q fixed.Dec) error {
	_, had := d.r.side[s][p]
	before, tb := d.side(s)
	// The insertion index and the tombstones in reach, found by a plain
	// scan: a new price takes a tombstone when one lies within tombReach
	// levels (the one beside it included), else the side grows.
	ins, present := len(before), false
	for i, l := range before {
		if l.Price == p {
			present = true
			break
		}
		if (s == market.Buy && l.Price > p) || (s == market.Sell && l.Price < p) {
			ins = i
			break
		}
	}
	nearest := -1
	if !present && q != 0 {
		for i, l := range before {
			if l.Qty != 0 {
				continue
			}
			dist := ins - i // tombstones below the insertion point: s[ins-1] is 1
			if i >= ins {
				dist = i - ins + 1 // s[ins] is 1
			}
			if nearest < 0 || dist < nearest {
				nearest = dist
			}
		}
	}
	if err := d.b.Apply(s, p, q); err != nil {
		return err
	}
	d.r.apply(s, p, q)
	after, ta := d.side(s)
	switch {
	case q != 0 && !had && !present:
		used := ta == tb-1 && len(after) == len(before)
		grew := ta == tb && len(after) == len(before)+1
		if want := nearest > 0 && nearest <= tombReach; used != want || used == grew {
			return fmt.Errorf("insert %s %s: tombstones %d -> %d, len %d -> %d; nearest tombstone %d levels away (reach %d)",
				s, p, tb, ta, len(before), len(after), nearest, tombReach)
		}
		if used {
			d.tombInserts++
		} else {
			d.shiftInserts++
		}
		switch nearest {
		case tombReach:
			d.atReach[0]++
		case tombReach + 1:
			d.atReach[1]++
		}
	case q != 0 && present && !had:
		d.revived++
	case q == 0 && had && p != before[len(before)-1].Price && ta == 0 && tb+1 >= compactMin:
		// Not the best level, so nothing was trimmed: the side was compacted.
		d.compactions++
	}
	d.maxLen = max(d.maxLen, len(after))
	return nil
}

// pick returns a price of side s chosen by one of the stream's strategies.
func (d *deepStream) pick(s market.Side) fixed.Dec {
	sl, tomb := d.side(s)
	switch d.c.intn(6) {
	case 0, 1: // anywhere on the grid, often near the touch
		w := d.width
		if d.c.intn(2) == 0 {
			w = min(w, 40)
		}
		return d.gridPrice(s, d.c.intn(w))
	case 2: // an existing level (or tombstone) of the side
		if len(sl) > 0 {
			return sl[d.c.intn(len(sl))].Price
		}
	case 3, 4: // between two neighbours, at a chosen distance from a tombstone
		if tomb > 0 && len(sl) > 1 {
			t := d.c.intn(len(sl))
			for k := 0; sl[t].Qty != 0 && k < len(sl); k++ {
				t = (t + 1) % len(sl)
			}
			dists := [...]int{1, 2, tombReach - 1, tombReach, tombReach + 1, tombReach + 2, 1 + d.c.intn(3*tombReach)}
			dist := dists[d.c.intn(len(dists))]
			// dist as set counts it: a tombstone at t >= ins is t-ins+1
			// away, one at t < ins is ins-t away.
			ins := t + 1 - dist
			if d.c.intn(2) == 0 {
				ins = t + dist
			}
			if ins > 0 && ins < len(sl) {
				lo, hi := sl[ins-1].Price, sl[ins].Price
				if gap := hi - lo; gap < 0 {
					lo, gap = hi, -gap
					if gap > 1 {
						return lo + 1 + fixed.Dec(d.c.intn(int(gap-1)))
					}
				} else if gap > 1 {
					return lo + 1 + fixed.Dec(d.c.intn(int(gap-1)))
				}
			}
		}
	}
	return d.gridPrice(s, d.c.intn(d.width)) + fixed.Dec(d.c.intn(deepStep))
}

func (d *deepStream) qty() fixed.Dec {
	if d.c.intn(3) == 0 {
		return fixed.Dec(1 + d.c.intn(3)) // small and repeated: updates to an equal quantity
	}
	return fixed.Dec(1 + d.c.intn(1<<30))
}

// step runs one operation and returns what it did.
func (d *deepStream) step() (string, error) {
	s := market.Side(d.c.intn(2))
	if d.steps++; d.steps%250 == 0 {
		d.drain = d.c.intn(3) == 0
	}
	op := d.c.intn(100)
	if d.drain && (op < 40 || op >= 99) {
		op = 55 + op%25 // a deletion run instead of a fill, a set or a reset
	}
	switch {
	case op < 6: // fill a run of grid levels: a deep side quickly
		g, n := d.c.intn(d.width), 1+d.c.intn(200)
		for k := range n {
			if g+k >= d.width {
				break
			}
			if err := d.set(s, d.gridPrice(s, g+k), d.qty()); err != nil {
				return "fill", err
			}
		}
		return fmt.Sprintf("fill %s %d levels from grid %d", s, n, g), nil
	case op < 40: // set a price (insert, change, revive)
		p, q := d.pick(s), d.qty()
		return fmt.Sprintf("set %s %s@%s", s, q, p), d.set(s, p, q)
	case op < 55: // change an existing live level, the best often
		sl, _ := d.side(s)
		if len(sl) == 0 {
			return "noop", nil
		}
		i := len(sl) - 1
		if d.c.intn(2) == 0 {
			i = d.c.intn(len(sl))
		}
		p := sl[i].Price
		return fmt.Sprintf("change %s %s", s, p), d.set(s, p, d.qty())
	case op < 80: // delete a run of levels (tombstones, trims at the best, compaction)
		sl, _ := d.side(s)
		if len(sl) == 0 {
			return "noop", nil
		}
		i, n := d.c.intn(len(sl)), 1+d.c.intn(8)
		if d.c.intn(4) == 0 {
			i, n = len(sl)-1, 1+d.c.intn(3)
		}
		var ps []fixed.Dec
		for k := 0; k < n && i-k >= 0; k++ {
			ps = append(ps, sl[i-k].Price)
		}
		for _, p := range ps {
			if err := d.set(s, p, 0); err != nil {
				return "delete", err
			}
		}
		return fmt.Sprintf("delete %s %v", s, ps), nil
	case op < 85: // delete a price that may be absent or a tombstone
		p := d.pick(s)
		return fmt.Sprintf("delete %s %s", s, p), d.set(s, p, 0)
	case op < 99: // a batched diff, the same prices repeated within it
		var u market.DepthUpdate
		u.FinalID = d.r.id + 1 + int64(d.c.intn(5))
		var prev fixed.Dec
		for range 1 + d.c.intn(20) {
			ls := market.Side(d.c.intn(2))
			p := d.pick(ls)
			if prev != 0 && d.c.intn(4) == 0 {
				p, ls = prev, s
			}
			q := d.qty()
			if d.c.intn(3) == 0 {
				q = 0
			}
			l := market.Level{Price: p, Qty: q}
			if ls == market.Buy {
				u.Bids = append(u.Bids, l)
			} else {
				u.Asks = append(u.Asks, l)
			}
			if ls == s {
				prev = p
			}
		}
		before := [2]int{len(d.b.bids), len(d.b.asks)}
		if err := d.b.ApplyUpdate(&u); err != nil {
			return "update", err
		}
		for _, l := range u.Bids {
			d.r.apply(market.Buy, l.Price, l.Qty)
		}
		for _, l := range u.Asks {
			d.r.apply(market.Sell, l.Price, l.Qty)
		}
		d.r.id = u.FinalID
		d.maxLen = max(d.maxLen, len(d.b.bids), len(d.b.asks), before[0], before[1])
		return fmt.Sprintf("update %d bids %d asks", len(u.Bids), len(u.Asks)), nil
	default: // reset from a snapshot of grid levels, listed best first
		snap := &market.DepthSnapshot{LastUpdateID: d.r.id + 1000}
		nr := newRef()
		nr.id = snap.LastUpdateID
		for _, ls := range []market.Side{market.Buy, market.Sell} {
			for g := range d.c.intn(d.width) {
				if d.c.intn(3) == 0 {
					continue
				}
				l := market.Level{Price: d.gridPrice(ls, g), Qty: d.qty()}
				nr.apply(ls, l.Price, l.Qty)
				if ls == market.Buy {
					snap.Bids = append(snap.Bids, l)
				} else {
					snap.Asks = append(snap.Asks, l)
				}
			}
		}
		if err := d.b.Reset(snap); err != nil {
			return "reset", err
		}
		d.r = nr
		d.resets++
		return fmt.Sprintf("reset %d bids %d asks", len(snap.Bids), len(snap.Asks)), nil
	}
}

// exact checks every level of b against the reference and the book's
// own invariants: each side strictly ordered (tombstones included, so a
// price is never held twice), the tombstone count equal to the zero levels
// present, the best level live, compaction done whenever due.
func exact(b *Book, r *refBook) error {
	if b.UpdateID() != r.id {
		return fmt.Errorf("UpdateID %d, want %d", b.UpdateID(), r.id)
	}
	for _, s := range []market.Side{market.Buy, market.Sell} {
		sl, tomb := b.bids, b.bidTomb
		if s == market.Sell {
			sl, tomb = b.asks, b.askTomb
		}
		zeros, live := 0, 0
		for i, l := range sl {
			if i > 0 {
				if (s == market.Buy && sl[i-1].Price >= l.Price) || (s == market.Sell && sl[i-1].Price <= l.Price) {
					return fmt.Errorf("%s: index %d price %s after %s: out of order", s, i, l.Price, sl[i-1].Price)
				}
			}
			if l.Qty == 0 {
				zeros++
				continue
			}
			live++
			if q, ok := r.side[s][l.Price]; !ok || q != l.Qty {
				return fmt.Errorf("%s: book holds %s x %s, reference %s (present %v)", s, l.Price, l.Qty, q, ok)
			}
		}
		if live != len(r.side[s]) {
			return fmt.Errorf("%s: %d live levels, reference %d (a level lost)", s, live, len(r.side[s]))
		}
		if zeros != tomb {
			return fmt.Errorf("%s: %d zero levels, tombstone count %d", s, zeros, tomb)
		}
		if len(sl) > 0 && sl[len(sl)-1].Qty == 0 {
			return fmt.Errorf("%s: the best level is a tombstone", s)
		}
		if tomb >= compactMin && tomb*4 > len(sl) {
			return fmt.Errorf("%s: %d tombstones in %d levels: compaction overdue", s, tomb, len(sl))
		}
		if b.Len(s) != live {
			return fmt.Errorf("%s: Len %d, want %d", s, b.Len(s), live)
		}
	}
	return nil
}

// TestBookDeepStreamsAgainstReference drives the book and the naive map
// book with long seeded streams on shallow (40 grid levels) and deep (4,000)
// sides: runs of inserts, deletes of runs of levels, changes, batched diffs
// repeating a price, revivals of tombstones and resets; new prices are
// placed at chosen distances from a tombstone, at and around tombReach.
// After every step every level is compared with the reference, the
// book's internal invariants are checked and an insertion must have taken a
// tombstone exactly when one was within reach; every 500 steps every read
// (agree) is compared too. The streams must have exercised inserts into a
// tombstone at the reach bound and one level beyond it, compactions (on
// the wider sides), revivals and sides of over 2,000 levels.
func TestBookDeepStreamsAgainstReference(t *testing.T) {
	cases := []struct {
		name         string
		width, steps int
	}{
		{"Shallow", 40, 20_000},
		{"Medium", 400, 20_000},
		{"Deep", 4000, 12_000},
	}
	seeds, div := uint64(4), 1
	if testing.Short() {
		seeds, div = 1, 4 // the race stage of make test
	}
	for _, tc := range cases {
		var total deepStream
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s/Seed%d", tc.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0xdee9))
				d := &deepStream{c: &rngChooser{r: rng, left: tc.steps / div}, b: New(), r: newRef(), width: tc.width}
				for step := 0; d.c.more(); step++ {
					desc, err := d.step()
					if err == nil {
						err = exact(d.b, d.r)
					}
					if err == nil && step%500 == 0 {
						err = agree(d.b, d.r, rng)
					}
					if err != nil {
						t.Fatalf("step %d (%s): %v", step, desc, err)
					}
				}
				t.Logf("max side %d levels; inserts into a tombstone %d, shifting %d; nearest tombstone at reach %d, one beyond %d; compactions %d, revivals %d, resets %d",
					d.maxLen, d.tombInserts, d.shiftInserts, d.atReach[0], d.atReach[1], d.compactions, d.revived, d.resets)
				total.tombInserts += d.tombInserts
				total.atReach[0] += d.atReach[0]
				total.atReach[1] += d.atReach[1]
				total.compactions += d.compactions
				total.revived += d.revived
				total.maxLen = max(total.maxLen, d.maxLen)
			})
		}
		if t.Failed() {
			return
		}
		// A 40-level side reaches compactMin tombstones only now and then.
		if total.tombInserts == 0 || total.revived == 0 || (tc.width >= 400 && total.compactions == 0) {
			t.Errorf("%s: streams did not exercise tombstones: %d inserts into one, %d compactions, %d revivals",
				tc.name, total.tombInserts, total.compactions, total.revived)
		}
		if tc.width >= 400 && (total.atReach[0] == 0 || total.atReach[1] == 0) {
			t.Errorf("%s: no insertion with the nearest tombstone at the reach bound (%d) or just beyond (%d)",
				tc.name, total.atReach[0], total.atReach[1])
		}
		if tc.width >= 4000 && total.maxLen < 2000 {
			t.Errorf("%s: sides reached only %d levels", tc.name, total.maxLen)
		}
	}
}

// FuzzBookDeepStream runs the deep stream of
// TestBookDeepStreamsAgainstReference with every choice taken from the
// fuzzer's bytes (two per choice), checking every level and the
// invariants after each step.
func FuzzBookDeepStream(f *testing.F) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 7))
		b := make([]byte, 600)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f.Add(uint16(40+seed*300), b)
	}
	f.Fuzz(func(t *testing.T, width uint16, data []byte) {
		d := &deepStream{c: &byteChooser{b: data}, b: New(), r: newRef(), width: 1 + int(width%4096)}
		rng := rand.New(rand.NewPCG(uint64(len(data)), 3))
		for step := 0; d.c.more(); step++ {
			desc, err := d.step()
			if err == nil {
				err = exact(d.b, d.r)
			}
			if err == nil && step%64 == 0 {
				err = agree(d.b, d.r, rng)
			}
			if err != nil {
				t.Fatalf("step %d (%s): %v", step, desc, err)
			}
		}
	})
}
