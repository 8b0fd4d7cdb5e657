package chaos

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// verdict is what verify found.
type verdict struct {
	missing, duplicates, mismatches int
	reasons                         []string
}

func (v *verdict) add(format string, args ...any) {
	if len(v.reasons) < 12 {
		v.reasons = append(v.reasons, fmt.Sprintf(format, args...))
	}
}

// symbolRef is the simulator's final state of one symbol.
type symbolRef struct {
	lastID, lastU int64
}

// quiesce ends the injections: pending fault actions run, REST faults are
// cleared, the replay is paused and the harness waits until the simulator
// publishes nothing more.
func (s *scenario) quiesce(ctx context.Context) error {
	s.t.finish()
	f := s.srv.Faults()
	f.FailREST(0, 0, 0)
	f.DelayREST(0)
	s.srv.Pause()
	last := s.srv.Stats().Events
	stable := 0
	ok := waitFor(ctx, 5*time.Second, func() bool {
		time.Sleep(40 * time.Millisecond)
		n := s.srv.Stats().Events
		if n == last {
			stable++
		} else {
			stable, last = 0, n
		}
		return stable >= 5
	})
	if !ok {
		return fmt.Errorf("chaos: the simulator kept publishing after Pause")
	}
	return nil
}

// converge waits until the service holds every symbol's last trade and its
// book stands at the simulator's last update id.
func (s *scenario) converge(ctx context.Context, refs map[string]symbolRef) error {
	var st probe
	ok := waitFor(ctx, s.h.opts.RecoveryBound, func() bool {
		st = s.probe("")
		if !st.ready {
			return false
		}
		for _, sy := range st.status.Symbols {
			r, ok := refs[sy.Symbol]
			if !ok {
				continue
			}
			if sy.LastTrade != r.lastID || sy.UpdateID != r.lastU {
				return false
			}
		}
		return true
	})
	if ok {
		return nil
	}
	for _, sy := range st.status.Symbols {
		if r := refs[sy.Symbol]; sy.LastTrade != r.lastID || sy.UpdateID != r.lastU || !sy.BookSynced {
			return fmt.Errorf("did not converge within %v: %s last trade %d (simulator %d), book %s at %d (simulator %d); %s",
				s.h.opts.RecoveryBound, sy.Symbol, sy.LastTrade, r.lastID, sy.BookState, sy.UpdateID, r.lastU, statusLine(st.status))
		}
	}
	return fmt.Errorf("did not converge within %v: %s", s.h.opts.RecoveryBound, statusLine(st.status))
}

// verifyAttempts bounds how often verify resyncs a book it could not judge.
const verifyAttempts = 3

// verify pauses the replay, lets the service catch up, and compares every
// symbol's trade history, totals and book with the simulator's.
//
// A book whose touch has moved entirely beyond the range its last snapshot
// made certain on one side (a legitimate state: see compareBook) cannot be
// judged there. Rather than pass it unjudged or fail a sound book, verify
// then skips one depth event of that symbol in the simulator, so the
// service must detect the gap and resync, resumes the replay until it has,
// and judges again, at most verifyAttempts times; the last attempt counts
// an unjudged side as a mismatch.
func (s *scenario) verify(ctx context.Context) (verdict, error) {
	for attempt := 1; ; attempt++ {
		v, unjudged, err := s.verifyOnce(ctx, attempt == verifyAttempts)
		if err != nil || len(unjudged) == 0 {
			return v, err
		}
		select {
		case <-s.srv.Done():
			// The replay has ended: no event is left to skip.
			v, _, err := s.verifyOnce(ctx, true)
			return v, err
		default:
		}
		s.h.log.Info("book not judgeable: forcing a resync and verifying again", "symbols", unjudged, "attempt", attempt)
		if err := s.forceResync(ctx, unjudged); err != nil {
			return v, err
		}
	}
}

// forceResync skips one depth event of each symbol, resumes the replay and
// waits until the service counted a resync for each (the next verifyOnce
// pauses the replay again and waits for convergence).
func (s *scenario) forceResync(ctx context.Context, syms []string) error {
	before := map[string]uint64{}
	for _, ss := range s.svc.Status().Symbols {
		before[ss.Symbol] = ss.Resyncs
	}
	for _, sym := range syms {
		if err := s.srv.Faults().SkipDepth(sym); err != nil {
			return fmt.Errorf("chaos: force a resync of %s: %w", sym, err)
		}
	}
	s.srv.Play()
	ok := waitFor(ctx, s.h.opts.RecoveryBound, func() bool {
		n := 0
		for _, ss := range s.svc.Status().Symbols {
			if slices.Contains(syms, ss.Symbol) && ss.Resyncs > before[ss.Symbol] {
				n++
			}
		}
		return n == len(syms)
	})
	if !ok {
		return fmt.Errorf("chaos: no resync of %v within %v after skipping a depth event", syms, s.h.opts.RecoveryBound)
	}
	return nil
}

// verifyOnce is one attempt of verify. It returns the symbols whose book
// could not be judged on a side (nothing inside the known range), which
// are not counted as mismatches unless final.
func (s *scenario) verifyOnce(ctx context.Context, final bool) (v verdict, unjudged []string, err error) {
	if err := s.quiesce(ctx); err != nil {
		return v, nil, err
	}
	syms := s.t.symbols()
	levels := s.h.opts.BookLevels
	refs := map[string]symbolRef{}
	for _, sym := range syms {
		last, err := s.ref.lastAggID(ctx, sym)
		if err != nil {
			return v, nil, err
		}
		b, err := s.ref.depth(ctx, sym, 5)
		if err != nil {
			return v, nil, err
		}
		refs[sym] = symbolRef{lastID: last, lastU: b.LastUpdateID}
	}
	if err := s.converge(ctx, refs); err != nil {
		v.add("%v", err)
	}
	if st := s.svc.Status(); st.Backfill.Missing > 0 {
		v.add("the service itself counted %d aggregate ids it could not recover (backfill %+v)", st.Backfill.Missing, st.Backfill)
	}
	for _, sym := range syms {
		want, err := s.ref.aggTrades(ctx, sym)
		if err != nil {
			return v, nil, err
		}
		var (
			hist     []market.Trade
			tot      flow.Totals
			sb       serviceBook
			histSize int
		)
		err = s.svc.ViewSymbol(sym, func(es *engine.Symbol) error {
			hist = es.Flow.Trades(flow.TradeQuery{}, nil)
			tot = es.Flow.Totals()
			histSize = es.Flow.Config().HistorySize
			if b := es.Book(); b != nil {
				sb.uid, sb.bids, sb.asks = b.UpdateID(), b.Bids(levels, nil), b.Asks(levels, nil)
				sb.bidFloor, sb.askCeil = b.KnownRange()
			}
			sb.synced = es.Synced()
			return nil
		})
		if err != nil {
			return v, nil, fmt.Errorf("chaos: read %s from the service: %w", sym, err)
		}
		// A symbol added at run time starts with its warm-start backfill:
		// judge it from the first trade it holds, which must not come after
		// the first trade published once it was added.
		if lastBefore, late := s.t.late[sym]; late {
			from := lastBefore + 1
			if len(hist) > 0 {
				from = min(from, hist[0].ID)
			}
			want = tradesFrom(want, from)
		}
		c := compareTrades(want, hist, histSize)
		v.missing += c.missing
		v.duplicates += c.duplicates
		if c.missing > 0 || c.duplicates > 0 || c.extra > 0 || c.differ > 0 {
			v.add("%s trades: %s", sym, c.detail)
		}
		if c.extra > 0 || c.differ > 0 {
			v.mismatches++
		}
		if ref := referenceTotals(sym, s.spec.historySize, want); !reflect.DeepEqual(ref, tot) {
			v.mismatches++
			v.add("%s totals differ from the reference fed the simulator's %d trades: service %s; reference %s",
				sym, len(want), totalsLine(tot), totalsLine(ref))
		}
		rb, err := s.ref.depth(ctx, sym, levels)
		if err != nil {
			return v, nil, err
		}
		bc := compareBook(rb, &sb, levels)
		if bc.unjudged && !final {
			unjudged = append(unjudged, sym)
			s.h.log.Info("book not judgeable", "symbol", sym, "update_id", sb.uid, "detail", bc.why)
			continue
		}
		if bc.why != "" {
			v.mismatches++
			v.add("%s book: %s", sym, bc.why)
		} else {
			s.h.log.Info("book verified", "symbol", sym, "update_id", sb.uid, "detail", bc.rangeLine(rb, &sb))
		}
	}
	return v, unjudged, nil
}

func tradesFrom(ts []market.Trade, from int64) []market.Trade {
	for i := range ts {
		if ts[i].ID >= from {
			return ts[i:]
		}
	}
	return nil
}

// tradeDiff is the comparison of a service's trade history with the
// simulator's list.
type tradeDiff struct {
	missing    int // ids of the simulator's list (within the history's window) not held
	duplicates int // ids held more than once
	extra      int // ids held that the simulator never published
	differ     int // ids held with another price, quantity, time or side
	detail     string
}

// compareTrades compares the service's history (oldest first) with the
// simulator's complete list want. When the history ring is full its oldest
// trades have rotated out: the window starts at its first id.
func compareTrades(want, hist []market.Trade, histSize int) tradeDiff {
	var d tradeDiff
	if len(hist) >= histSize && len(hist) > 0 {
		want = tradesFrom(want, hist[0].ID)
	}
	byID := make(map[int64]*market.Trade, len(want))
	for i := range want {
		byID[want[i].ID] = &want[i]
	}
	seen := make(map[int64]bool, len(hist))
	var firstDup, firstExtra, firstDiffer, firstMissing int64
	for i := range hist {
		h := &hist[i]
		if seen[h.ID] {
			d.duplicates++
			if firstDup == 0 {
				firstDup = h.ID
			}
			continue
		}
		seen[h.ID] = true
		w := byID[h.ID]
		if w == nil {
			d.extra++
			if firstExtra == 0 {
				firstExtra = h.ID
			}
			continue
		}
		if w.Price != h.Price || w.Qty != h.Qty || w.Time != h.Time || w.BuyerMaker != h.BuyerMaker ||
			w.FirstID != h.FirstID || w.LastID != h.LastID {
			d.differ++
			if firstDiffer == 0 {
				firstDiffer = h.ID
			}
		}
	}
	for i := range want {
		if !seen[want[i].ID] {
			d.missing++
			if firstMissing == 0 {
				firstMissing = want[i].ID
			}
		}
	}
	// Ids must also come in increasing order: the history is the tape.
	outOfOrder := 0
	for i := 1; i < len(hist); i++ {
		if hist[i].ID <= hist[i-1].ID {
			outOfOrder++
		}
	}
	d.detail = fmt.Sprintf("simulator %d, service %d; missing %d (first %d), duplicates %d (first %d), not published %d (first %d), fields differ %d (first %d), out of order %d",
		len(want), len(hist), d.missing, firstMissing, d.duplicates, firstDup, d.extra, firstExtra, d.differ, firstDiffer, outOfOrder)
	d.differ += outOfOrder
	return d
}

// referenceTotals feeds the simulator's trades to a fresh tracker
// configured like the service's: the totals an uninterrupted connection
// would have produced.
func referenceTotals(sym string, history int, trades []market.Trade) flow.Totals {
	tr := flow.NewTracker(sym, flowConfig(history))
	for i := range trades {
		t := trades[i]
		_ = tr.Add(&t) // a rejection is counted in Totals.Rejected and compared
	}
	return tr.Totals()
}

func totalsLine(t flow.Totals) string {
	return fmt.Sprintf("trades=%d buy=%d sell=%d volume=%v delta=%v vwap=%v high=%v low=%v last=%v lastID=%d rejected=%+v",
		t.Trades, t.BuyTrades, t.SellTrades, t.Volume, t.Delta, t.VWAP, t.High, t.Low, t.Last, t.LastID, t.Rejected)
}

// serviceBook is what verify reads of one symbol's book in the service.
type serviceBook struct {
	uid    int64
	synced bool
	// bids and asks are the book's best levels, best first (at most the
	// levels compared).
	bids, asks []market.Level
	// bidFloor and askCeil are book.KnownRange: the worst bid and ask of
	// the book's last snapshot.
	bidFloor, askCeil fixed.Dec
}

// bookCheck is what compareBook found.
type bookCheck struct {
	// why describes the first difference; "" when the books agree.
	why string
	// compared counts, per side (bids, asks), the simulator's levels
	// judged strictly: inside the book's known range, where the book must
	// hold exactly the simulator's levels.
	compared [2]int
	// beyond counts, per side, the book's own levels beyond the known
	// range checked against the simulator's (each must be there with the
	// same quantity), and absent the simulator's levels beyond it that the
	// book does not hold (allowed: a level unchanged since the book's
	// snapshot that the snapshot was too shallow to list).
	beyond, absent [2]int
	// unjudged is set when the only failure is a side with nothing
	// compared inside the known range: the book may be sound, but this
	// state cannot prove it (verify resyncs and judges again).
	unjudged bool
}

// rangeLine names the known range and what was compared, for the table's
// reasons.
func (c *bookCheck) rangeLine(rb *refBook, sb *serviceBook) string {
	ceil := "whole side"
	if sb.askCeil < math.MaxInt64 {
		ceil = sb.askCeil.String()
	}
	floor := "whole side"
	if sb.bidFloor > 0 {
		floor = sb.bidFloor.String()
	}
	touch := func(ls []market.Level) string {
		if len(ls) == 0 {
			return "none"
		}
		return ls[0].Price.String()
	}
	return fmt.Sprintf("known range: bids down to %s, asks up to %s (simulator's best bid %s, ask %s); "+
		"levels compared inside it: %d bids, %d asks; beyond it, the book's held and checked: %d bids, %d asks; the simulator's absent from the book: %d bids, %d asks",
		floor, ceil, touch(rb.bids), touch(rb.asks), c.compared[0], c.compared[1], c.beyond[0], c.beyond[1], c.absent[0], c.absent[1])
}

// compareBook compares the service's top levels with the simulator's
// snapshot rb (its best levels a side), both at most levels deep.
//
// A book resynced from a snapshot knows for certain only the range the
// snapshot covered (book.KnownRange): beyond it, a level that has not
// changed since is absent by Binance's procedure (BINANCE.md), not by a
// bug, and the price may have moved there since the resync. So inside the
// known range the book must hold exactly the simulator's levels; beyond
// it, every level it does hold came from a diff and must equal the
// simulator's, while the simulator's levels it lacks are allowed. A side
// with no level compared inside the known range fails: the check would
// prove nothing.
func compareBook(rb *refBook, sb *serviceBook, levels int) bookCheck {
	var c bookCheck
	if !sb.synced {
		c.why = fmt.Sprintf("not synced (update id %d, simulator %d)", sb.uid, rb.LastUpdateID)
		return c
	}
	if sb.uid != rb.LastUpdateID {
		c.why = fmt.Sprintf("update id %d, simulator %d", sb.uid, rb.LastUpdateID)
		return c
	}
	bids := bookSide{name: "bid", got: sb.bids, want: rb.bids,
		better: func(x, y fixed.Dec) bool { return x > y }, known: func(p fixed.Dec) bool { return p >= sb.bidFloor }}
	asks := bookSide{name: "ask", got: sb.asks, want: rb.asks,
		better: func(x, y fixed.Dec) bool { return x < y }, known: func(p fixed.Dec) bool { return p <= sb.askCeil }}
	unjudged, differs := false, false
	for side, sd := range [2]*bookSide{&bids, &asks} {
		why := sd.compare(levels, sb.uid)
		c.compared[side], c.beyond[side], c.absent[side] = sd.compared, sd.beyond, sd.absent
		differs = differs || why != ""
		if why == "" && sd.compared == 0 {
			unjudged = true
			why = fmt.Sprintf("no %s level compared inside the book's known range (%d of the simulator's levels beyond it, %d of the book's)",
				sd.name, sd.absent+sd.beyond, sd.beyond)
		}
		if why != "" && c.why == "" {
			c.why = why
		}
	}
	c.unjudged = unjudged && !differs
	if c.why != "" {
		c.why += "; " + c.rangeLine(rb, sb)
	}
	return c
}

// bookSide is one side of compareBook.
type bookSide struct {
	name                     string
	got, want                []market.Level            // the book's and the simulator's, best first
	better                   func(x, y fixed.Dec) bool // x is nearer the touch than y
	known                    func(p fixed.Dec) bool    // p is inside the book's known range
	compared, beyond, absent int                       // as in bookCheck
}

func where(known bool) string {
	if known {
		return "inside the known range"
	}
	return "beyond the known range"
}

// compare walks both sides from the touch by price and returns the first
// difference, or "".
func (sd *bookSide) compare(levels int, uid int64) string {
	got, want := sd.got[:min(levels, len(sd.got))], sd.want[:min(levels, len(sd.want))]
	// A list shorter than levels is that whole side; a full one ends at
	// its last level, and nothing past it can be judged.
	gotAll, wantAll := len(sd.got) < levels, len(sd.want) < levels
	i, j := 0, 0
	for i < len(got) || j < len(want) {
		switch {
		case i < len(got) && j < len(want) && got[i].Price == want[j].Price:
			known := sd.known(got[i].Price)
			if known {
				sd.compared++
			} else {
				sd.beyond++
			}
			if got[i].Qty != want[j].Qty {
				return fmt.Sprintf("%s level %d at update id %d: %v x %v, simulator %v x %v (%s)",
					sd.name, i, uid, got[i].Price, got[i].Qty, want[j].Price, want[j].Qty, where(known))
			}
			i++
			j++
		case i == len(got) || (j < len(want) && sd.better(want[j].Price, got[i].Price)):
			// The simulator's level want[j] is not in the book.
			if i == len(got) && !gotAll {
				return ""
			}
			if known := sd.known(want[j].Price); known {
				sd.compared++
				return fmt.Sprintf("%s level %d at update id %d: the book lacks the simulator's %v x %v (%s)",
					sd.name, i, uid, want[j].Price, want[j].Qty, where(known))
			}
			sd.absent++
			j++
		default:
			// The book's level got[i] is not in the simulator's.
			if j == len(want) && !wantAll {
				return ""
			}
			return fmt.Sprintf("%s level %d at update id %d: the book holds %v x %v, the simulator has no such level (%s)",
				sd.name, i, uid, got[i].Price, got[i].Qty, where(sd.known(got[i].Price)))
		}
	}
	return ""
}
