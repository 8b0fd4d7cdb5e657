// Package book keeps a local limit order book from Binance diff-depth events
// and synchronises it with REST snapshots by Binance's documented procedure.
//
// A Book holds exact fixed-point levels (fixed.Dec prices and quantities).
// Each side is one sorted slice with the best price at the END: the top of
// the book, which every read and the busiest updates touch, is then a
// direct index and its inserts and removals a short memmove, while a binary
// search finds any price in O(log n). Updates deep in the book move more
// memory; on the real BTCUSDT recordings the slices still beat B-trees (the
// project's prototype measurements) and allocate nothing once grown. A plain
// hash map applies updates about as fast but must scan every level to find
// the best price (BenchmarkReplay compares them).
//
// A Syncer drives a Book from a live stream: it buffers events, loads a
// snapshot, drops what the snapshot already covers and checks every later
// event's ids (spot and USD-M futures have different rules), asking the
// caller for a new snapshot whenever continuity is lost.
//
// A History keeps the top levels of a Book at a fixed interval of exchange
// time, for heatmaps and "where was the wall five minutes ago".
//
// Concurrency: the package is pure (no I/O, no goroutines) and none of its
// types is safe for concurrent use. One goroutine owns a Syncer and its Book;
// it hands other goroutines copies (Snapshot, Clone, Bids/Asks into their own
// slices).
package book

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"math/bits"
	"slices"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// Errors returned (wrapped with the offending field) by Book methods.
var (
	ErrSide      = errors.New("book: invalid side")
	ErrPrice     = errors.New("book: price must be positive")
	ErrQty       = errors.New("book: quantity must not be negative")
	ErrDuplicate = errors.New("book: duplicate price in snapshot")
	ErrCrossed   = errors.New("book: snapshot is crossed (best bid >= best ask)")
	ErrNil       = errors.New("book: nil input")
)

// MidScale is the number of fractional digits of the value Mid returns: the
// mid of two prices at 1e-8 can need a ninth digit (61837.63 and 61837.64
// have mid 61837.635), so Mid returns (bid+ask)*5 at 1e-9, which is exact.
const MidScale = 9

// Book is a local limit order book for one symbol. The zero value is an empty
// book ready to use. It is not safe for concurrent use.
type Book struct {
	bids     []market.Level // ascending price: the best bid is the last element
	asks     []market.Level // descending price: the best ask is the last element
	updateID int64
	// bidTomb and askTomb count tombstones: levels removed in place (Qty
	// 0) instead of shifting the slice. BTCUSDT diffs touch levels all over
	// a 3,000-level side, and a shift per removal was the book's main cost;
	// an insertion next to a tombstone reuses it, and a side is compacted
	// once a quarter of it is tombstones. The best level is never a
	// tombstone (trailing ones are trimmed), so best-price reads stay O(1).
	bidTomb, askTomb int
	// bidFloor and askCeil bound what the book knows for certain: the
	// worst price of each side of the last snapshot. The diff stream
	// updates every level, so inside that range the book is exact; beyond
	// it a level that has not changed since the snapshot is simply absent
	// (Binance documents this), so an audit must not compare there.
	bidFloor, askCeil fixed.Dec
}

// compactMin is the fewest tombstones worth a compaction pass.
const compactMin = 32

// tombReach is how far an insertion looks, each way, for a tombstone to
// shift into before it shifts the rest of the side.
const tombReach = 48

// New returns an empty book.
func New() *Book { return &Book{} }

// Mismatch is one level where a Book and a snapshot disagree. A zero BookQty
// or SnapQty means the level is absent from that side of the comparison.
type Mismatch struct {
	Side    market.Side
	Price   fixed.Dec
	BookQty fixed.Dec
	SnapQty fixed.Dec
}

// String describes the mismatch, e.g. "BUY 61837.63: book 3.78826 snapshot absent".
func (m Mismatch) String() string {
	q := func(d fixed.Dec) string {
		if d == 0 {
			return "absent"
		}
		return d.String()
	}
	return fmt.Sprintf("%s %s: book %s snapshot %s", m.Side, m.Price, q(m.BookQty), q(m.SnapQty))
}

// bidIndex returns the index of p in the ascending bids and whether it is
// there; when absent, the index where it would be inserted.
//
// The search halves a window whose base moves with a conditional move
// instead of a branch: on a 3,000-level side the probes are unpredictable,
// and a mispredicted branch per probe cost more than the probes themselves
// (book BenchmarkReplay; see PERFORMANCE.md, third pass).
func bidIndex(s []market.Level, p fixed.Dec) (int, bool) {
	n := len(s)
	if n == 0 {
		return 0, false
	}
	base := 0
	for n > 1 {
		half := n >> 1
		base += half & -b2i(s[base+half-1].Price < p)
		n -= half
	}
	if s[base].Price < p {
		base++
	}
	return base, base < len(s) && s[base].Price == p
}

// askIndex is bidIndex for the descending asks.
func askIndex(s []market.Level, p fixed.Dec) (int, bool) {
	n := len(s)
	if n == 0 {
		return 0, false
	}
	base := 0
	for n > 1 {
		half := n >> 1
		base += half & -b2i(s[base+half-1].Price > p)
		n -= half
	}
	if s[base].Price > p {
		base++
	}
	return base, base < len(s) && s[base].Price == p
}

// b2i is 1 for true, 0 for false (compiled to a SETcc, with no branch).
func b2i(b bool) int {
	var i int
	if b {
		i = 1
	}
	return i
}

// set writes qty at index i (found says whether the price is there) of
// side s with tomb tombstones, and returns the side and the new count; a
// zero qty removes the level (as a tombstone). It allocates only when the
// side grows beyond its capacity.
func set(s []market.Level, tomb, i int, found bool, p, q fixed.Dec) ([]market.Level, int) {
	switch {
	case found && q == 0:
		if s[i].Qty == 0 {
			return s, tomb // removing a removed level
		}
		s[i].Qty = 0
		tomb++
		if i == len(s)-1 { // the best level: trim so the new best is live
			for len(s) > 0 && s[len(s)-1].Qty == 0 {
				s = s[:len(s)-1]
				tomb--
			}
		}
		if tomb >= compactMin && tomb*4 > len(s) {
			s = compact(s)
			tomb = 0
		}
		return s, tomb
	case found:
		if s[i].Qty == 0 {
			tomb--
		}
		s[i].Qty = q
		return s, tomb
	case q == 0:
		return s, tomb // removing an absent level is a no-op
	}
	// Insert between s[i-1] and s[i]: a tombstone on either side can take
	// the new level without breaking the order.
	if i > 0 && s[i-1].Qty == 0 {
		s[i-1] = market.Level{Price: p, Qty: q}
		return s, tomb - 1
	}
	if i < len(s) && s[i].Qty == 0 {
		s[i] = market.Level{Price: p, Qty: q}
		return s, tomb - 1
	}
	// A tombstone a few levels away takes the shift instead of the end of
	// the side: inserting 200 levels below the best would otherwise move
	// 3 KB, and real diffs land a median of about 200 levels deep.
	if tomb > 0 {
		lo, hi := max(i-tombReach, 0), min(i+tombReach, len(s))
		for t := i + 1; t < hi; t++ {
			if s[t].Qty == 0 {
				copy(s[i+1:t+1], s[i:t])
				s[i] = market.Level{Price: p, Qty: q}
				return s, tomb - 1
			}
		}
		for t := i - 2; t >= lo; t-- {
			if s[t].Qty == 0 {
				copy(s[t:i-1], s[t+1:i])
				s[i-1] = market.Level{Price: p, Qty: q}
				return s, tomb - 1
			}
		}
	}
	s = append(s, market.Level{})
	copy(s[i+1:], s[i:])
	s[i] = market.Level{Price: p, Qty: q}
	return s, tomb
}

// compact removes the tombstones of s in place.
func compact(s []market.Level) []market.Level {
	n := 0
	for _, l := range s {
		if l.Qty != 0 {
			s[n] = l
			n++
		}
	}
	return s[:n]
}

func checkLevel(p, q fixed.Dec) error {
	if p <= 0 {
		return ErrPrice
	}
	if q < 0 {
		return ErrQty
	}
	return nil
}

func (b *Book) apply(side market.Side, p, q fixed.Dec) {
	if side == market.Buy {
		i, ok := bidIndex(b.bids, p)
		b.bids, b.bidTomb = set(b.bids, b.bidTomb, i, ok, p, q)
		return
	}
	i, ok := askIndex(b.asks, p)
	b.asks, b.askTomb = set(b.asks, b.askTomb, i, ok, p, q)
}

// Apply sets the quantity at price on side; a zero qty removes the level and
// removing an absent level is a no-op. It does not change UpdateID. It
// returns an error, and leaves the book unchanged, for an unknown side, a
// non-positive price or a negative quantity. Apply never refuses a price that
// crosses the other side: Crossed reports that.
func (b *Book) Apply(side market.Side, price, qty fixed.Dec) error {
	if side != market.Buy && side != market.Sell {
		return fmt.Errorf("apply %d: %w", side, ErrSide)
	}
	if err := checkLevel(price, qty); err != nil {
		return fmt.Errorf("apply %s %s@%s: %w", side, qty, price, err)
	}
	b.apply(side, price, qty)
	return nil
}

// CheckUpdate reports the first level of u that Apply would refuse, naming
// its field and index, or nil.
func CheckUpdate(u *market.DepthUpdate) error {
	if u == nil {
		return ErrNil
	}
	for i, l := range u.Bids {
		if err := checkLevel(l.Price, l.Qty); err != nil {
			return fmt.Errorf("depth update u=%d: b[%d] %s@%s: %w", u.FinalID, i, l.Qty, l.Price, err)
		}
	}
	for i, l := range u.Asks {
		if err := checkLevel(l.Price, l.Qty); err != nil {
			return fmt.Errorf("depth update u=%d: a[%d] %s@%s: %w", u.FinalID, i, l.Qty, l.Price, err)
		}
	}
	return nil
}

// ApplyUpdate applies every level of u (bids then asks) and sets UpdateID to
// u.FinalID. It checks all levels first, so an invalid update leaves the book
// unchanged. It does not check update ids: that is the Syncer's job.
func (b *Book) ApplyUpdate(u *market.DepthUpdate) error {
	if err := CheckUpdate(u); err != nil {
		return err
	}
	b.applyUpdate(u)
	return nil
}

// applyUpdate is ApplyUpdate for an update already checked.
func (b *Book) applyUpdate(u *market.DepthUpdate) {
	for _, l := range u.Bids {
		b.apply(market.Buy, l.Price, l.Qty)
	}
	for _, l := range u.Asks {
		b.apply(market.Sell, l.Price, l.Qty)
	}
	b.updateID = u.FinalID
}

// Reset replaces the book with snap: it copies the levels (reusing the book's
// memory), drops zero-quantity levels, sorts each side and sets UpdateID to
// snap.LastUpdateID. It returns an error for a non-positive price, a negative
// quantity, a price listed twice on one side, or a crossed snapshot; the book
// is then left empty (UpdateID 0), never half-loaded.
func (b *Book) Reset(snap *market.DepthSnapshot) error {
	if snap == nil {
		b.Clear()
		return ErrNil
	}
	if err := b.load(snap); err != nil {
		b.Clear()
		return fmt.Errorf("reset from snapshot lastUpdateId=%d: %w", snap.LastUpdateID, err)
	}
	b.updateID = snap.LastUpdateID
	return nil
}

func (b *Book) load(snap *market.DepthSnapshot) error {
	var err error
	b.bidTomb, b.askTomb = 0, 0
	defer func() {
		b.bidFloor, b.askCeil = 0, math.MaxInt64 // an empty side is known whole
		if len(b.bids) > 0 {
			b.bidFloor = b.bids[0].Price
		}
		if len(b.asks) > 0 {
			b.askCeil = b.asks[0].Price
		}
	}()
	if b.bids, err = loadSide(b.bids[:0], snap.Bids, "bids", func(x, y fixed.Dec) bool { return x < y }); err != nil {
		return err
	}
	if b.asks, err = loadSide(b.asks[:0], snap.Asks, "asks", func(x, y fixed.Dec) bool { return x > y }); err != nil {
		return err
	}
	if b.Crossed() {
		return ErrCrossed
	}
	return nil
}

// loadSide copies src into dst without zero levels and sorts it so that
// less(dst[i].Price, dst[i+1].Price) holds: Binance lists levels best first,
// so the common case is a plain reversal.
func loadSide(dst, src []market.Level, field string, less func(x, y fixed.Dec) bool) ([]market.Level, error) {
	for i, l := range src {
		if err := checkLevel(l.Price, l.Qty); err != nil {
			return dst, fmt.Errorf("%s[%d] %s@%s: %w", field, i, l.Qty, l.Price, err)
		}
	}
	for i := len(src) - 1; i >= 0; i-- {
		if src[i].Qty != 0 {
			dst = append(dst, src[i])
		}
	}
	sorted := true
	for i := 1; i < len(dst); i++ {
		if !less(dst[i-1].Price, dst[i].Price) {
			sorted = false
			break
		}
	}
	if !sorted {
		slices.SortFunc(dst, func(x, y market.Level) int {
			switch {
			case less(x.Price, y.Price):
				return -1
			case less(y.Price, x.Price):
				return 1
			}
			return 0
		})
		for i := 1; i < len(dst); i++ {
			if dst[i-1].Price == dst[i].Price {
				return dst, fmt.Errorf("%s: price %s: %w", field, dst[i].Price, ErrDuplicate)
			}
		}
	}
	return dst, nil
}

// Clear empties the book and sets UpdateID to 0, keeping its memory.
func (b *Book) Clear() {
	b.bids = b.bids[:0]
	b.asks = b.asks[:0]
	b.bidTomb, b.askTomb = 0, 0
	b.updateID = 0
}

// UpdateID returns the update id the book is at: the snapshot's lastUpdateId
// or the last applied event's u.
func (b *Book) UpdateID() int64 { return b.updateID }

// BestBid returns the highest bid, or false when there is none.
func (b *Book) BestBid() (market.Level, bool) {
	if len(b.bids) == 0 {
		return market.Level{}, false
	}
	return b.bids[len(b.bids)-1], true
}

// BestAsk returns the lowest ask, or false when there is none.
func (b *Book) BestAsk() (market.Level, bool) {
	if len(b.asks) == 0 {
		return market.Level{}, false
	}
	return b.asks[len(b.asks)-1], true
}

// Spread returns best ask minus best bid (negative when crossed), or false
// when a side is empty.
func (b *Book) Spread() (fixed.Dec, bool) {
	bid, ok1 := b.BestBid()
	ask, ok2 := b.BestAsk()
	if !ok1 || !ok2 {
		return 0, false
	}
	return ask.Price - bid.Price, true
}

// Mid returns the exact mid price (best bid + best ask) / 2 as an integer at
// scale 1e-9 (MidScale): format it with FormatScaled(MidScale). It returns
// false when a side is empty.
func (b *Book) Mid() (fixed.Int128, bool) {
	bid, ok1 := b.BestBid()
	ask, ok2 := b.BestAsk()
	if !ok1 || !ok2 {
		return fixed.Int128{}, false
	}
	s := fixed.I128(int64(bid.Price)).AddDec(ask.Price)
	s4 := s.Add(s)
	s4 = s4.Add(s4)
	return s4.Add(s), true
}

// Microprice returns the size-weighted mid
//
//	(bidPx*askQty + askPx*bidQty) / (bidQty + askQty)
//
// which leans towards the side with less quantity, where the next trade is
// likelier to move the price. The sums are exact; only the final division is
// in float64, so it is for signals and display, not for books or sums. It
// returns false when a side is empty.
func (b *Book) Microprice() (float64, bool) {
	bid, ok1 := b.BestBid()
	ask, ok2 := b.BestAsk()
	if !ok1 || !ok2 {
		return 0, false
	}
	num := fixed.MulDec(bid.Price, ask.Qty).Add(fixed.MulDec(ask.Price, bid.Qty)) // 1e-16
	den := fixed.I128(int64(bid.Qty)).AddDec(ask.Qty)                             // 1e-8
	return i128Float(num) / i128Float(den) / float64(fixed.One), true
}

func i128Float(a fixed.Int128) float64 {
	return float64(a.Hi)*(1<<64) + float64(a.Lo)
}

// Len returns the number of levels on side (Buy: bids, Sell: asks).
func (b *Book) Len(side market.Side) int {
	if side == market.Buy {
		return len(b.bids) - b.bidTomb
	}
	return len(b.asks) - b.askTomb
}

// Level returns the quantity resting at price on side, or false when there is
// no such level.
func (b *Book) Level(side market.Side, price fixed.Dec) (fixed.Dec, bool) {
	if side == market.Buy {
		if i, ok := bidIndex(b.bids, price); ok && b.bids[i].Qty != 0 {
			return b.bids[i].Qty, true
		}
		return 0, false
	}
	if i, ok := askIndex(b.asks, price); ok && b.asks[i].Qty != 0 {
		return b.asks[i].Qty, true
	}
	return 0, false
}

func appendBest(dst, s []market.Level, n int) []market.Level {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i].Qty == 0 {
			continue // tombstone
		}
		dst = append(dst, s[i])
		if n--; n == 0 {
			break // n <= 0 never reaches 0 here: all levels
		}
	}
	return dst
}

// Bids appends the best n bids, best (highest) first, to dst and returns the
// extended slice; n <= 0 means all. Pass buf[:0] to reuse a buffer.
func (b *Book) Bids(n int, dst []market.Level) []market.Level { return appendBest(dst, b.bids, n) }

// Asks appends the best n asks, best (lowest) first, to dst and returns the
// extended slice; n <= 0 means all.
func (b *Book) Asks(n int, dst []market.Level) []market.Level { return appendBest(dst, b.asks, n) }

// Levels iterates over the levels of side, best first. The book must not be
// changed during the iteration.
func (b *Book) Levels(side market.Side) iter.Seq[market.Level] {
	s := b.asks
	if side == market.Buy {
		s = b.bids
	}
	return func(yield func(market.Level) bool) {
		for i := len(s) - 1; i >= 0; i-- {
			if s[i].Qty != 0 && !yield(s[i]) {
				return
			}
		}
	}
}

// Crossed reports whether the best bid is at or above the best ask. Binance
// matches such orders at once, so a crossed (or locked) local book means it
// has drifted from the exchange's.
func (b *Book) Crossed() bool {
	return len(b.bids) > 0 && len(b.asks) > 0 && b.bids[len(b.bids)-1].Price >= b.asks[len(b.asks)-1].Price
}

// bandIndexes returns, for a band of bps basis points around the mid, the
// index of the first bid and of the first ask inside it (the levels from
// there to the end are inside). The bounds are inclusive and computed
// exactly: a bid p is inside when p >= mid*(1-bps/10000), an ask when
// p <= mid*(1+bps/10000).
func (b *Book) bandIndexes(bps int) (bi, ai int, ok bool) {
	if bps < 0 || len(b.bids) == 0 || len(b.asks) == 0 {
		return 0, 0, false
	}
	// Prices are positive int64, so their sum fits a uint64.
	sum := uint64(b.bids[len(b.bids)-1].Price) + uint64(b.asks[len(b.asks)-1].Price)
	ub := uint64(bps)
	if ub < 10_000 {
		q, r, over := mulDiv(sum, 10_000-ub, 20_000)
		if r != 0 {
			q++ // ceil: the bound itself may lie between two 1e-8 steps
		}
		if !over && q <= math.MaxInt64 {
			bi, _ = bidIndex(b.bids, fixed.Dec(q))
		} else {
			bi = len(b.bids)
		}
	}
	q, _, over := mulDiv(sum, 10_000+ub, 20_000)
	if over || q > math.MaxInt64 {
		q = math.MaxInt64
	}
	ai, _ = askIndex(b.asks, fixed.Dec(q))
	return bi, ai, true
}

// mulDiv returns floor(x*y/d) and the remainder; over is true when the
// quotient does not fit a uint64.
func mulDiv(x, y, d uint64) (q, r uint64, over bool) {
	hi, lo := bits.Mul64(x, y)
	if hi >= d {
		return 0, 0, true
	}
	q, r = bits.Div64(hi, lo, d)
	return q, r, false
}

// DepthWithin returns the total bid and ask quantity (scale 1e-8) resting
// within bps basis points of the mid, bounds included. ok is false when a
// side is empty or bps is negative.
func (b *Book) DepthWithin(bps int) (bidQty, askQty fixed.Int128, ok bool) {
	bi, ai, ok := b.bandIndexes(bps)
	if !ok {
		return bidQty, askQty, false
	}
	for _, l := range b.bids[bi:] {
		bidQty = bidQty.AddDec(l.Qty)
	}
	for _, l := range b.asks[ai:] {
		askQty = askQty.AddDec(l.Qty)
	}
	return bidQty, askQty, true
}

// NotionalWithin returns the total price*qty (scale 1e-16, as fixed.MulDec)
// of the bids and asks within bps basis points of the mid, bounds included.
// ok is false when a side is empty or bps is negative.
func (b *Book) NotionalWithin(bps int) (bidNotional, askNotional fixed.Int128, ok bool) {
	bi, ai, ok := b.bandIndexes(bps)
	if !ok {
		return bidNotional, askNotional, false
	}
	for _, l := range b.bids[bi:] {
		bidNotional = bidNotional.Add(fixed.MulDec(l.Price, l.Qty))
	}
	for _, l := range b.asks[ai:] {
		askNotional = askNotional.Add(fixed.MulDec(l.Price, l.Qty))
	}
	return bidNotional, askNotional, true
}

// Snapshot writes the best limit levels of each side (all when limit <= 0),
// best first as Binance lists them, and LastUpdateID into dst, reusing dst's
// slices. Other fields of dst are left as they are.
func (b *Book) Snapshot(limit int, dst *market.DepthSnapshot) {
	dst.LastUpdateID = b.updateID
	dst.Bids = b.Bids(limit, dst.Bids[:0])
	dst.Asks = b.Asks(limit, dst.Asks[:0])
}

// Compare audits the book against a REST snapshot: it returns the levels
// that differ (a price on one side only, or a different quantity) within the
// range the snapshot covers, bids then asks, best first; nil when they agree.
// limit is the depth the snapshot was requested with: a side holding fewer
// levels than limit is the whole side, so every book level on it is covered;
// otherwise (and always when limit <= 0) only prices from the snapshot's best
// to its worst level are, since the book may know levels beyond the snapshot's
// depth. Compare does not look at update ids: compare at equal ids.
func (b *Book) Compare(snap *market.DepthSnapshot, limit int) []Mismatch {
	if snap == nil {
		return nil
	}
	b.compact() // compareSide walks live levels only
	var out []Mismatch
	bids, theirBids := b.bids, snap.Bids
	if b.bidFloor > 0 {
		i, _ := bidIndex(bids, b.bidFloor)
		bids = bids[i:]
		theirBids = knownOnly(theirBids, func(p fixed.Dec) bool { return p >= b.bidFloor })
	}
	asks, theirAsks := b.asks, snap.Asks
	if b.askCeil < math.MaxInt64 {
		i, _ := askIndex(asks, b.askCeil)
		asks = asks[i:]
		theirAsks = knownOnly(theirAsks, func(p fixed.Dec) bool { return p <= b.askCeil })
	}
	out = compareSide(out, market.Buy, bids, theirBids, limit, func(x, y fixed.Dec) bool { return x < y })
	out = compareSide(out, market.Sell, asks, theirAsks, limit, func(x, y fixed.Dec) bool { return x > y })
	return out
}

// knownOnly returns the levels of ls whose price is inside the book's
// known range (a copy only when some are outside).
func knownOnly(ls []market.Level, known func(fixed.Dec) bool) []market.Level {
	for i, l := range ls {
		if !known(l.Price) {
			out := append([]market.Level(nil), ls[:i]...)
			for _, l := range ls[i+1:] {
				if known(l.Price) {
					out = append(out, l)
				}
			}
			return out
		}
	}
	return ls
}

// KnownRange returns the worst bid and ask price of the last snapshot: the
// book is exact from the best prices out to these; beyond them, levels
// that have not changed since the snapshot are absent. 0 and MaxInt64
// mean the whole side (the snapshot's side was empty).
func (b *Book) KnownRange() (bidFloor, askCeil fixed.Dec) { return b.bidFloor, b.askCeil }

// compareSide compares one side; mine is sorted by less (best last).
func compareSide(out []Mismatch, side market.Side, mine, theirs []market.Level, limit int, less func(x, y fixed.Dec) bool) []Mismatch {
	ref := make([]market.Level, 0, len(theirs))
	for _, l := range theirs {
		if l.Qty != 0 {
			ref = append(ref, l)
		}
	}
	complete := limit > 0 && len(theirs) < limit
	if len(ref) == 0 && !complete {
		return out
	}
	slices.SortStableFunc(ref, func(x, y market.Level) int {
		switch {
		case less(x.Price, y.Price):
			return -1
		case less(y.Price, x.Price):
			return 1
		}
		return 0
	})
	// Merge walk from the best end of both sorted slices.
	i, j := len(mine)-1, len(ref)-1
	for i >= 0 || j >= 0 {
		switch {
		case j < 0:
			// Book levels beyond the snapshot's worst level: covered only
			// when the snapshot is the whole side.
			if !complete {
				return out
			}
			out = append(out, Mismatch{Side: side, Price: mine[i].Price, BookQty: mine[i].Qty})
			i--
		case i < 0 || less(mine[i].Price, ref[j].Price):
			// The snapshot's level is better than the book's: missing here.
			if j > 0 && ref[j-1].Price == ref[j].Price {
				j-- // duplicate in the snapshot: compare the first listed
				continue
			}
			out = append(out, Mismatch{Side: side, Price: ref[j].Price, SnapQty: ref[j].Qty})
			j--
		case less(ref[j].Price, mine[i].Price):
			out = append(out, Mismatch{Side: side, Price: mine[i].Price, BookQty: mine[i].Qty})
			i--
		default:
			for j > 0 && ref[j-1].Price == ref[j].Price {
				j--
			}
			if mine[i].Qty != ref[j].Qty {
				out = append(out, Mismatch{Side: side, Price: mine[i].Price, BookQty: mine[i].Qty, SnapQty: ref[j].Qty})
			}
			i--
			j--
		}
	}
	return out
}

// compact removes every tombstone; a no-op when there are none.
func (b *Book) compact() {
	if b.bidTomb > 0 {
		b.bids, b.bidTomb = compact(b.bids), 0
	}
	if b.askTomb > 0 {
		b.asks, b.askTomb = compact(b.asks), 0
	}
}

// Equal reports whether b and o hold the same levels and update id.
func (b *Book) Equal(o *Book) bool {
	return b.updateID == o.updateID && liveEqual(b.bids, o.bids) && liveEqual(b.asks, o.asks)
}

// liveEqual compares two sides level by level, skipping tombstones.
func liveEqual(x, y []market.Level) bool {
	i, j := 0, 0
	for {
		for i < len(x) && x[i].Qty == 0 {
			i++
		}
		for j < len(y) && y[j].Qty == 0 {
			j++
		}
		if i == len(x) || j == len(y) {
			return i == len(x) && j == len(y)
		}
		if x[i] != y[j] {
			return false
		}
		i++
		j++
	}
}

// Clone returns a deep copy of b.
func (b *Book) Clone() *Book {
	c := New()
	c.CopyFrom(b)
	return c
}

// CopyFrom makes b a copy of src, reusing b's memory.
func (b *Book) CopyFrom(src *Book) {
	b.bids = append(b.bids[:0], src.bids...)
	b.asks = append(b.asks[:0], src.asks...)
	b.bidTomb, b.askTomb = src.bidTomb, src.askTomb
	b.bidFloor, b.askCeil = src.bidFloor, src.askCeil
	b.updateID = src.updateID
}
