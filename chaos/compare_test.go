package chaos

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// loadSpotBTC reads the spot BTCUSDT recording the soak replays: its REST
// snapshot, every depth diff in file order, and how many diffs came before
// the snapshot.
func loadSpotBTC(t *testing.T) (snap *market.DepthSnapshot, diffs []market.DepthUpdate, snapAt int) {
	t.Helper()
	dec := binance.NewDecoder()
	var m binance.Message
	for _, name := range specs[SpotBTC].files {
		r, err := capture.Open(filepath.Join(dataDir(), name), capture.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			switch rec.Kind {
			case capture.Snapshot:
				snap, snapAt = &market.DepthSnapshot{}, len(diffs)
				if err := binance.DecodeDepthSnapshot(rec.Data, snap); err != nil {
					t.Fatalf("%s: snapshot: %v", name, err)
				}
			case capture.Frame:
				if err := dec.Decode(rec.Data, &m); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if m.Kind == binance.KindDepthUpdate {
					u := m.Depth
					u.Bids, u.Asks = slices.Clone(u.Bids), slices.Clone(u.Asks)
					diffs = append(diffs, u)
				}
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if snap == nil || len(diffs) < 6000 {
		t.Fatalf("recording: snapshot %v, %d diffs", snap != nil, len(diffs))
	}
	return snap, diffs, snapAt
}

// refBookOf is the simulator's REST answer for limit levels, built from a
// book as the simulator builds it from its own.
func refBookOf(b *book.Book, limit int) *refBook {
	return &refBook{LastUpdateID: b.UpdateID(), bids: b.Bids(limit, nil), asks: b.Asks(limit, nil)}
}

func serviceBookOf(b *book.Book, levels int) *serviceBook {
	sb := &serviceBook{uid: b.UpdateID(), synced: true, bids: b.Bids(levels, nil), asks: b.Asks(levels, nil)}
	sb.bidFloor, sb.askCeil = b.KnownRange()
	return sb
}

// TestCompareBookKnownRange replays the soak's real spot BTCUSDT recording
// into two books: the simulator's (the recording's snapshot and every
// diff) and a service's that resynced early from a shallow snapshot of the
// simulator's book (400 levels a side) and then applied every later diff,
// as the service does after a resync. As the price moves away from that
// snapshot, the simulator's top 50 levels include ones the service's book
// never heard of (unchanged since the snapshot and beyond it): a strict
// top-50 comparison fails there, compareBook must not, and the levels it
// compares strictly must be exactly the simulator's top-50 levels inside
// the known range, counted independently; where the price left the
// snapshot's range entirely on a side, compareBook must fail, saying it
// compared nothing there. Then single corruptions of the service's book,
// inside the range and beyond it, must each be reported.
func TestCompareBookKnownRange(t *testing.T) {
	const (
		levels    = 50
		shallow   = 400 // levels a side of the service's snapshot
		resyncAt  = 300 // the diff after which the service resyncs
		checkEach = 25  // diffs between two comparisons
	)
	snap, diffs, snapAt := loadSpotBTC(t)
	// The simulator's book, synced as the simulator syncs its own.
	sim := book.NewSyncer(market.Spot, book.SyncOptions{MaxBuffer: len(diffs)})
	var (
		svc                        *book.Book
		checks, partial, uncovered int
		corrupted                  [2][]string // per side, the corruption cases run
	)
	for i := range diffs {
		if i == snapAt {
			if r := sim.OnSnapshot(snap); r.Action != book.Applied {
				t.Fatalf("recording snapshot: %s %s", r.Action, r.Cause)
			}
		}
		if r := sim.OnUpdate(&diffs[i]); r.Action == book.NeedSnapshot && i > snapAt {
			t.Fatalf("simulator book lost sync at diff %d: %s", i, r.Cause)
		}
		if !sim.Synced() {
			continue
		}
		if svc != nil {
			if diffs[i].FinalID <= svc.UpdateID() {
				continue
			}
			if err := svc.ApplyUpdate(&diffs[i]); err != nil {
				t.Fatal(err)
			}
		} else if i >= resyncAt {
			var s market.DepthSnapshot
			sim.Book().Snapshot(shallow, &s)
			svc = book.New()
			if err := svc.Reset(&s); err != nil {
				t.Fatal(err)
			}
		}
		if svc == nil || i%checkEach != 0 {
			continue
		}
		if svc.UpdateID() != sim.Book().UpdateID() {
			t.Fatalf("diff %d: service book at %d, simulator's at %d", i, svc.UpdateID(), sim.Book().UpdateID())
		}
		rb, sb := refBookOf(sim.Book(), levels), serviceBookOf(svc, levels)
		checks++
		// The levels to judge strictly, counted by a plain loop.
		floor, ceil := svc.KnownRange()
		var want [2]int
		for _, l := range rb.bids {
			if l.Price >= floor {
				want[0]++
			}
		}
		for _, l := range rb.asks {
			if l.Price <= ceil {
				want[1]++
			}
		}
		strictEqual := slices.Equal(rb.bids, sb.bids) && slices.Equal(rb.asks, sb.asks)
		c := compareBook(rb, sb, levels)
		if want[0] == 0 || want[1] == 0 {
			// The price moved past the whole snapshot on a side: nothing
			// to judge strictly there, and compareBook must say so.
			uncovered++
			if !strings.Contains(c.why, "level compared inside the book's known range") || !c.unjudged {
				t.Fatalf("diff %d: known range covers none of a side's top %d (bids %d, asks %d), compareBook said %q", i, levels, want[0], want[1], c.why)
			}
			continue
		}
		if c.why != "" {
			t.Fatalf("diff %d: compareBook: %s", i, c.why)
		}
		if c.compared != want {
			t.Fatalf("diff %d: compared %v levels inside the known range, want %v", i, c.compared, want)
		}
		if !strictEqual {
			partial++
			if c.absent[0]+c.absent[1] == 0 {
				t.Fatalf("diff %d: the top levels differ but compareBook found no level absent beyond the range", i)
			}
		}
		for side := range 2 {
			if len(corrupted[side]) == 0 && c.beyond[side] > 0 && want[side] > 1 {
				corrupted[side] = corruptions(t, rb, sb, side, levels)
			}
		}
	}
	t.Logf("%d comparisons; %d where a strict top-%d comparison fails (levels beyond the known range); %d with a side entirely beyond it",
		checks, partial, levels, uncovered)
	if checks < 100 || partial == 0 {
		t.Fatalf("the replay did not exercise the known range: %d comparisons, %d partial", checks, partial)
	}
	if len(corrupted[0])+len(corrupted[1]) == 0 {
		t.Fatal("no comparison had levels both inside and beyond the known range to corrupt")
	}
	t.Logf("corrupted: bids %v, asks %v", corrupted[0], corrupted[1])
}

// corruptions alters one level of copies of sb's side (0 bids, 1 asks)
// at a time, and its known range, and checks that compareBook reports
// each change; it returns the cases run.
func corruptions(t *testing.T, rb *refBook, sb *serviceBook, side, levels int) []string {
	t.Helper()
	name, mine, theirs := "bid", sb.bids, rb.bids
	known := func(p fixed.Dec) bool { return p >= sb.bidFloor }
	next := fixed.Dec(-1) // one 1e-8 step away from the touch: off the tick grid
	if side == 1 {
		name, mine, theirs = "ask", sb.asks, rb.asks
		known = func(p fixed.Dec) bool { return p <= sb.askCeil }
		next = 1
	}
	// inside: a level of the book inside the known range; beyond: one
	// beyond it that the simulator's top levels also list.
	inside, beyond := -1, -1
	for i, l := range mine {
		if known(l.Price) && inside < 0 {
			inside = i
		}
		if !known(l.Price) && beyond < 0 && slices.ContainsFunc(theirs, func(r market.Level) bool { return r.Price == l.Price }) {
			beyond = i
		}
	}
	if inside < 0 || beyond < 0 {
		t.Fatalf("no %s level inside (%d) or beyond (%d) the known range", name, inside, beyond)
	}
	mod := func(f func(ls []market.Level) []market.Level) *serviceBook {
		c := *sb
		if side == 0 {
			c.bids = f(slices.Clone(sb.bids))
		} else {
			c.asks = f(slices.Clone(sb.asks))
		}
		return &c
	}
	nothing := *sb
	if side == 0 {
		nothing.bidFloor = theirs[0].Price + 1
	} else {
		nothing.askCeil = theirs[0].Price - 1
	}
	other, unsynced := *sb, *sb
	other.uid--
	unsynced.synced = false
	cases := []struct {
		name string
		sb   *serviceBook
		want string
	}{
		{"LevelMissingInside", mod(func(ls []market.Level) []market.Level { return slices.Delete(ls, inside, inside+1) }),
			name + " level " + strconv.Itoa(inside) + " at update id"},
		{"QtyDiffersInside", mod(func(ls []market.Level) []market.Level { ls[inside].Qty++; return ls }),
			"(inside the known range)"},
		{"QtyDiffersBeyond", mod(func(ls []market.Level) []market.Level { ls[beyond].Qty++; return ls }),
			"(beyond the known range)"},
		{"ExtraLevelBeyond", mod(func(ls []market.Level) []market.Level {
			return slices.Insert(ls, beyond+1, market.Level{Price: ls[beyond].Price + next, Qty: 7})
		}), "the simulator has no such level (beyond the known range)"},
		{"NothingKnown", &nothing, "no " + name + " level compared inside the book's known range"},
		{"OtherUpdateID", &other, "update id"},
		{"NotSynced", &unsynced, "not synced"},
	}
	var names []string
	for _, tc := range cases {
		c := compareBook(rb, tc.sb, levels)
		if !strings.Contains(c.why, tc.want) {
			t.Errorf("%s %s: compareBook said %q, want it to contain %q", name, tc.name, c.why, tc.want)
		}
		// Only a side with nothing to judge asks verify for a resync: a
		// real difference is a mismatch at once.
		if c.unjudged != (tc.name == "NothingKnown") {
			t.Errorf("%s %s: unjudged %v", name, tc.name, c.unjudged)
		}
		names = append(names, tc.name)
	}
	return names
}

// TestCompareBookAfterLoopTransition replays what the 10-minute release
// soak (seed 1795754233271262219) found: "BTCUSDT book: ask level 22 at
// update id 50101496490: 61861.8 x 0.00017, simulator 61861.44 x 0.00018".
// The simulator loops the recording; a new round starts with one diff
// that turns its book at the end of the recording back into the book at
// the start. A service that resynced near the end of a round, when the
// touch was about 61,600, holds a 1000-level snapshot whose worst ask is
// 61,856.32; the level 61861.44 x 0.00018 is in the recording's snapshot
// and no diff ever changes it, so it is equal in both books, the
// transition does not send it and the service never learns it, while the
// price returns to 61,838 and it becomes the 23rd ask. Update id
// 50101496490 is a diff early in round 18. The strict top-50 comparison
// the soak made must fail there exactly as it did (same level, same
// prices and quantities), and compareBook must pass, judging the asks up
// to the known range strictly and counting 61861.44 as absent beyond it.
func TestCompareBookAfterLoopTransition(t *testing.T) {
	const (
		levels  = 50
		soakUID = 50101496490 // the soak's update id at the verification
	)
	snap, diffs, snapAt := loadSpotBTC(t)
	sim := book.NewSyncer(market.Spot, book.SyncOptions{MaxBuffer: len(diffs)})
	var (
		start *book.Book // the simulator's book at the sync point: every round starts here
		first int        // the first diff after the sync point
	)
	for i := range diffs {
		if i == snapAt {
			if r := sim.OnSnapshot(snap); r.Action != book.Applied {
				t.Fatalf("recording snapshot: %s %s", r.Action, r.Cause)
			}
		}
		if start == nil && sim.Synced() {
			start, first = sim.Book().Clone(), i
		}
		sim.OnUpdate(&diffs[i])
		if start == nil && sim.Synced() {
			start, first = sim.Book().Clone(), i+1
		}
	}
	for first < len(diffs) && diffs[first].FinalID <= start.UpdateID() {
		first++ // already in the start book
	}
	if start == nil {
		t.Fatal("the recording never synced")
	}
	end := sim.Book()
	// The simulator shifts each round's ids by the span from the sync
	// point's u to the last u, plus one (the transition diff's id).
	span := end.UpdateID() + 1 - start.UpdateID()
	round := (soakUID - start.UpdateID()) / span
	verifyAt := soakUID - round*span
	t.Logf("update id %d is round %d's %d", int64(soakUID), round, verifyAt)
	// The service resyncs from a 1000-level snapshot at the end of a round.
	var s market.DepthSnapshot
	end.Snapshot(1000, &s)
	svc := book.New()
	if err := svc.Reset(&s); err != nil {
		t.Fatal(err)
	}
	// The transition diff, built by a plain walk of both books: every
	// level of the end book that the start book lacks is removed, every
	// level of the start book that differs is set.
	tr := market.DepthUpdate{FirstID: end.UpdateID() + 1, FinalID: end.UpdateID() + 1}
	for _, side := range []market.Side{market.Buy, market.Sell} {
		var ls []market.Level
		for l := range end.Levels(side) {
			if _, ok := start.Level(side, l.Price); !ok {
				ls = append(ls, market.Level{Price: l.Price})
			}
		}
		for l := range start.Levels(side) {
			if q, ok := end.Level(side, l.Price); !ok || q != l.Qty {
				ls = append(ls, l)
			}
		}
		if side == market.Buy {
			tr.Bids = ls
		} else {
			tr.Asks = ls
		}
	}
	target := fixed.MustParse("61861.44")
	if slices.ContainsFunc(tr.Asks, func(l market.Level) bool { return l.Price == target }) {
		t.Fatal("the transition diff lists 61861.44: the recording changed it")
	}
	simBook := end.Clone()
	for _, b := range []*book.Book{simBook, svc} {
		if err := b.ApplyUpdate(&tr); err != nil {
			t.Fatal(err)
		}
	}
	if !simBook.Equal(start) && simBook.UpdateID() == start.UpdateID() {
		t.Fatal("the transition diff does not turn the end book into the start book")
	}
	reached := false
	for i := first; i < len(diffs) && !reached; i++ {
		for _, b := range []*book.Book{simBook, svc} {
			if err := b.ApplyUpdate(&diffs[i]); err != nil {
				t.Fatal(err)
			}
		}
		reached = diffs[i].FinalID == verifyAt
	}
	if !reached {
		t.Fatalf("update id %d not in the recording", verifyAt)
	}
	_, ceil := svc.KnownRange()
	t.Logf("service's known asks up to %s; simulator's best ask %v", ceil, simBook.Asks(1, nil))
	rb, sb := refBookOf(simBook, levels), serviceBookOf(svc, levels)
	// The soak's strict comparison, level by level.
	strict := ""
	for i := range min(len(rb.asks), len(sb.asks)) {
		if rb.asks[i] != sb.asks[i] {
			strict = fmt.Sprintf("ask level %d: %v x %v, simulator %v x %v", i, sb.asks[i].Price, sb.asks[i].Qty, rb.asks[i].Price, rb.asks[i].Qty)
			break
		}
	}
	if want := "ask level 22: 61861.8 x 0.00017, simulator 61861.44 x 0.00018"; strict != want {
		t.Fatalf("strict top-%d comparison: %q, want the soak's %q", levels, strict, want)
	}
	c := compareBook(rb, sb, levels)
	if c.why != "" {
		t.Fatalf("compareBook: %s", c.why)
	}
	// Of the 22 asks before 61861.44, those up to the known range's
	// ceiling are judged strictly, the others (held: changed since the
	// snapshot) checked one way; 61861.44 itself is absent beyond it.
	inside := 0
	for _, l := range rb.asks[:22] {
		if l.Price <= ceil {
			inside++
		}
	}
	if c.compared[1] != inside || c.beyond[1] < 22-inside || c.absent[1] == 0 || c.compared[0] == 0 {
		t.Fatalf("compareBook: compared %v inside the range, %v held beyond it, %v absent beyond it; want %d asks inside, at least %d held beyond, 61861.44 absent",
			c.compared, c.beyond, c.absent, inside, 22-inside)
	}
	t.Log(c.rangeLine(rb, sb))
}
