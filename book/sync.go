package book

import (
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/market"
)

// DefaultMaxBuffer is the number of events a Syncer buffers while it waits
// for a snapshot when SyncOptions.MaxBuffer is zero: 1000 s of a 100 ms
// spot stream, about ten minutes of a busy unthrottled futures stream.
const DefaultMaxBuffer = 10_000

// SyncOptions configures a Syncer. The zero value means the defaults.
type SyncOptions struct {
	// MaxBuffer is the most events buffered while waiting for a snapshot
	// (default DefaultMaxBuffer). Beyond it the oldest event is dropped and
	// counted, and the caller is asked for a new snapshot, since the one it
	// may be fetching can now be older than the buffer.
	MaxBuffer int
}

// State is where a Syncer is in the synchronisation procedure.
type State uint8

// Syncer states.
const (
	// WaitingForEvents: nothing buffered yet (new, or after Reset). The
	// first event moves to AwaitingSnapshot and asks for a snapshot.
	WaitingForEvents State = iota
	// AwaitingSnapshot: events are buffered until OnSnapshot.
	AwaitingSnapshot
	// Synced: the book is the exchange's book at Book().UpdateID().
	Synced
)

// String names the state.
func (s State) String() string {
	switch s {
	case WaitingForEvents:
		return "waiting_for_events"
	case AwaitingSnapshot:
		return "awaiting_snapshot"
	case Synced:
		return "synced"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Action tells the caller what a Syncer did with an event or snapshot.
type Action uint8

// Actions.
const (
	// Buffered: the event was copied into the buffer, waiting for a snapshot.
	Buffered Action = iota + 1
	// Applied: the event (or the snapshot, plus Result.Replayed buffered
	// events) is in the book.
	Applied
	// Ignored: nothing changed; Cause says why (CauseStale, CauseUnexpected).
	Ignored
	// NeedSnapshot: the caller must fetch a REST depth snapshot and pass it
	// to OnSnapshot. Cause says why. The Syncer keeps buffering meanwhile.
	NeedSnapshot
)

// String names the action.
func (a Action) String() string {
	switch a {
	case Buffered:
		return "buffered"
	case Applied:
		return "applied"
	case Ignored:
		return "ignored"
	case NeedSnapshot:
		return "need_snapshot"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Cause explains a NeedSnapshot or Ignored action.
type Cause uint8

// Causes. Every NeedSnapshot result is counted in Stats.Resyncs by its cause.
const (
	CauseNone Cause = iota
	// CauseInitial: the first event of a stream; a first snapshot is needed.
	CauseInitial
	// CauseSnapshotTooOld: the snapshot's lastUpdateId is below the first
	// buffered event's U, so events between them are unknown: fetch again.
	CauseSnapshotTooOld
	// CauseGap (spot): an event's U is above the book's id + 1: events were
	// missed.
	CauseGap
	// CausePrevMismatch (USD-M): an event's pu is not the previous event's u.
	CausePrevMismatch
	// CauseNoBridge (USD-M): the first event after the snapshot does not
	// satisfy U <= lastUpdateId <= u.
	CauseNoBridge
	// CauseBufferOverflow: the buffer was full and its oldest event was
	// dropped.
	CauseBufferOverflow
	// CauseCrossed: the book was crossed after an event: it has drifted.
	CauseCrossed
	// CauseInvalid: an event or snapshot could not be applied (negative
	// quantity, U > u, a futures event on a spot Syncer or the reverse);
	// Result.Err says what.
	CauseInvalid
	// CauseStale: the event's u is at or below the book's id, so everything
	// in it is already in the book (a duplicate, or an overlap when a
	// connection is replaced).
	CauseStale
	// CauseUnexpected: a snapshot arrived while the book was synced; it is
	// not used (use Book.Compare to audit, Reset to start over).
	CauseUnexpected

	// NumCauses is the number of causes, the length of Stats.Resyncs.
	NumCauses
)

var causeNames = [NumCauses]string{"none", "initial", "snapshot_too_old", "gap", "prev_mismatch", "no_bridge", "buffer_overflow", "crossed", "invalid", "stale", "unexpected"}

// String names the cause (snake_case, fit for a metric label).
func (c Cause) String() string {
	if c < NumCauses {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// Result is what OnUpdate or OnSnapshot did.
type Result struct {
	Action Action
	Cause  Cause
	// UpdateID is the book's update id after the call (0 unless synced).
	UpdateID int64
	// Replayed is, for OnSnapshot, how many buffered events were applied
	// on top of the snapshot.
	Replayed int
	// Err details CauseInvalid.
	Err error
}

// Stats counts what a Syncer did since it was created.
type Stats struct {
	Applied   uint64 // events applied to the book, live or replayed from the buffer
	Ignored   uint64 // stale events (u <= the book's id) ignored
	Covered   uint64 // buffered events dropped because the snapshot already held them
	Overflow  uint64 // buffered events dropped, oldest first, because the buffer was full
	Discarded uint64 // buffered events thrown away by Reset or an invalid event
	Invalid   uint64 // events or snapshots refused as invalid
	Snapshots uint64 // snapshots loaded into the book
	Unused    uint64 // snapshots ignored because the book was already synced
	Buffered  int    // events in the buffer now
	// Resyncs counts NeedSnapshot results by cause; Resyncs[CauseInitial]
	// counts first syncs.
	Resyncs [NumCauses]uint64
}

// Syncer keeps a Book in sync with one symbol's diff-depth stream by
// Binance's documented procedure ("How to manage a local order book
// correctly", spot web-socket-streams.md as corrected 2025-11-12, and the
// USD-M futures equivalent). Pass every depth event of the symbol, in
// stream order, to OnUpdate; when a Result says NeedSnapshot, fetch a REST
// depth snapshot and pass it to OnSnapshot while continuing to pass events.
//
// Spot: buffer from the first event; a snapshot whose lastUpdateId is below
// the first buffered U is too old (lastUpdateId = U-1 would in fact do, but
// the documented test is kept); buffered events with u <= lastUpdateId are
// dropped; then each event with u <= id is ignored, one with U > id+1 means
// events were missed (resync), and any other is applied with id := u.
//
// USD-M futures: buffered events with u < lastUpdateId are dropped; the first
// applied event must satisfy U <= lastUpdateId <= u; after it every event's
// pu must equal the previous event's u. The spot U = id+1 rule is never used
// for futures, whose update ids are not contiguous per symbol. A snapshot
// older than the whole buffer is CauseSnapshotTooOld; one whose first
// remaining event starts after lastUpdateId is CauseNoBridge. (A
// lastUpdateId strictly between one event's u and the next event's U is
// refused too, as documented, although that book would be right.)
//
// Stale events (u <= id) are ignored in both markets, once synced: such an
// event only repeats changes the book already holds (quantities are
// absolute), so applying it would change nothing; ignoring it also keeps an
// exact duplicate from failing the futures pu check when two connections
// overlap. The documented spot rule ignores u < id only; u == id is the same
// event again, so ignoring it is equivalent.
//
// On a gap the book is discarded and the event that revealed the gap
// becomes the first buffered event of the new attempt, so the caller only
// has to fetch a snapshot. After every applied event the book is checked for
// a crossed top of book, which also forces a resync.
//
// The Syncer copies the events it buffers (decoders reuse their slices) into
// recycled buffers, so it allocates nothing once warmed up. It is not safe
// for concurrent use.
type Syncer struct {
	kind       market.Kind
	max        int
	book       Book
	state      State
	needBridge bool // USD-M: the next applied event must bridge the snapshot
	overflowed bool // an overflow already asked for a snapshot since the last OnSnapshot
	buf        []*market.DepthUpdate
	head       int // buf[head:] is the queue
	free       []*market.DepthUpdate
	stats      Stats
}

// NewSyncer returns a Syncer for a market kind (market.Spot or market.USDM).
func NewSyncer(kind market.Kind, opts SyncOptions) *Syncer {
	if opts.MaxBuffer <= 0 {
		opts.MaxBuffer = DefaultMaxBuffer
	}
	return &Syncer{kind: kind, max: opts.MaxBuffer}
}

// Book returns the Syncer's book. It is valid (the exchange's book at its
// UpdateID) only while Synced; callers must not modify it.
func (s *Syncer) Book() *Book { return &s.book }

// Synced reports whether the book is in sync.
func (s *Syncer) Synced() bool { return s.state == Synced }

// State returns the current state.
func (s *Syncer) State() State { return s.state }

// Kind returns the market the Syncer follows.
func (s *Syncer) Kind() market.Kind { return s.kind }

// Stats returns the counters.
func (s *Syncer) Stats() Stats {
	st := s.stats
	st.Buffered = len(s.buf) - s.head
	return st
}

// Reset discards the book and the buffer and starts over, as after a new
// connection: the next event asks for a snapshot (CauseInitial).
func (s *Syncer) Reset() {
	s.stats.Discarded += uint64(s.buffered())
	s.dropBuffer()
	s.book.Clear()
	s.state = WaitingForEvents
	s.needBridge = false
	s.overflowed = false
}

var (
	errBadIDs       = errors.New("first update id U is above final update id u")
	errFuturesEvent = errors.New("futures event (has pu) on a spot syncer")
	errSpotEvent    = errors.New("event without pu on a USD-M syncer")
)

func (s *Syncer) check(u *market.DepthUpdate) error {
	if u == nil {
		return ErrNil
	}
	if u.FirstID > u.FinalID {
		return fmt.Errorf("depth update U=%d u=%d: %w", u.FirstID, u.FinalID, errBadIDs)
	}
	if s.kind == market.Spot && u.HasPrev {
		return fmt.Errorf("depth update u=%d: %w", u.FinalID, errFuturesEvent)
	}
	if s.kind == market.USDM && !u.HasPrev {
		return fmt.Errorf("depth update u=%d: %w", u.FinalID, errSpotEvent)
	}
	return CheckUpdate(u)
}

// OnUpdate processes one diff-depth event. u is copied when buffered; the
// caller may reuse it after the call.
func (s *Syncer) OnUpdate(u *market.DepthUpdate) Result {
	if err := s.check(u); err != nil {
		// The stream now lacks this event's changes: what is buffered or
		// built is incomplete. Start a new attempt from the next event.
		s.stats.Invalid++
		s.stats.Discarded += uint64(s.buffered())
		s.dropBuffer()
		s.book.Clear()
		s.state = AwaitingSnapshot
		s.needBridge = false
		s.stats.Resyncs[CauseInvalid]++
		return Result{Action: NeedSnapshot, Cause: CauseInvalid, Err: err}
	}
	switch s.state {
	case WaitingForEvents:
		s.state = AwaitingSnapshot
		s.overflowed = false
		s.push(u)
		s.stats.Resyncs[CauseInitial]++
		return Result{Action: NeedSnapshot, Cause: CauseInitial}
	case AwaitingSnapshot:
		return s.push(u)
	}
	r := s.step(u)
	if r.Action == NeedSnapshot {
		s.push(u) // first event of the new attempt; the buffer is empty
	}
	return r
}

// step applies one event to a synced book by the market's rules. On a
// resync it leaves the buffer to its caller.
func (s *Syncer) step(u *market.DepthUpdate) Result {
	id := s.book.updateID
	if s.kind == market.Spot {
		if u.FinalID <= id {
			s.stats.Ignored++
			return Result{Action: Ignored, Cause: CauseStale, UpdateID: id}
		}
		if u.FirstID > id+1 {
			return s.resync(CauseGap)
		}
	} else {
		if s.needBridge {
			// Futures: drop u < lastUpdateId; the first applied event
			// has U <= lastUpdateId <= u (u == lastUpdateId included).
			if u.FinalID < id {
				s.stats.Ignored++
				return Result{Action: Ignored, Cause: CauseStale, UpdateID: id}
			}
			if u.FirstID > id {
				return s.resync(CauseNoBridge)
			}
			s.needBridge = false
		} else {
			if u.FinalID <= id {
				s.stats.Ignored++
				return Result{Action: Ignored, Cause: CauseStale, UpdateID: id}
			}
			if u.PrevFinalID != id {
				return s.resync(CausePrevMismatch)
			}
		}
	}
	// check has validated every level: apply without checking again.
	s.book.applyUpdate(u)
	s.stats.Applied++
	if s.book.Crossed() {
		return s.resync(CauseCrossed)
	}
	return Result{Action: Applied, UpdateID: u.FinalID}
}

func (s *Syncer) resync(c Cause) Result {
	s.book.Clear()
	s.state = AwaitingSnapshot
	s.needBridge = false
	s.stats.Resyncs[c]++
	return Result{Action: NeedSnapshot, Cause: c}
}

// OnSnapshot loads a REST depth snapshot and replays the buffered events on
// top of it. It asks for another snapshot when this one is older than the
// buffer (CauseSnapshotTooOld) or when the replay finds a gap; a snapshot
// arriving while already synced is ignored (CauseUnexpected). A snapshot
// passed before any event, or after an invalid event emptied the buffer, is
// loaded: the next events then confirm it or reveal a gap. The snapshot's
// levels are copied.
func (s *Syncer) OnSnapshot(snap *market.DepthSnapshot) Result {
	if s.state == Synced {
		s.stats.Unused++
		return Result{Action: Ignored, Cause: CauseUnexpected, UpdateID: s.book.updateID}
	}
	s.overflowed = false
	if snap == nil {
		s.stats.Invalid++
		s.stats.Resyncs[CauseInvalid]++
		return Result{Action: NeedSnapshot, Cause: CauseInvalid, Err: ErrNil}
	}
	last := snap.LastUpdateID
	if s.buffered() > 0 && last < s.buf[s.head].FirstID {
		s.stats.Resyncs[CauseSnapshotTooOld]++
		return Result{Action: NeedSnapshot, Cause: CauseSnapshotTooOld}
	}
	if err := s.book.Reset(snap); err != nil {
		s.stats.Invalid++
		s.stats.Resyncs[CauseInvalid]++
		return Result{Action: NeedSnapshot, Cause: CauseInvalid, Err: err}
	}
	s.stats.Snapshots++
	// Drop what the snapshot holds: spot u <= lastUpdateId, futures
	// u < lastUpdateId (the event with u == lastUpdateId can bridge).
	for s.buffered() > 0 {
		e := s.buf[s.head]
		if e.FinalID > last || (s.kind == market.USDM && e.FinalID == last) {
			break
		}
		s.pop()
		s.stats.Covered++
	}
	s.state = Synced
	s.needBridge = s.kind == market.USDM
	replayed := 0
	for s.buffered() > 0 {
		r := s.step(s.buf[s.head])
		if r.Action == NeedSnapshot {
			// The failing event stays at the head: the new attempt's first.
			r.Replayed = replayed
			return r
		}
		if r.Action == Applied {
			replayed++
		}
		s.pop()
	}
	return Result{Action: Applied, UpdateID: s.book.updateID, Replayed: replayed}
}

func (s *Syncer) buffered() int { return len(s.buf) - s.head }

// push copies u to the tail of the buffer, dropping the oldest event when
// the buffer is full.
func (s *Syncer) push(u *market.DepthUpdate) Result {
	r := Result{Action: Buffered}
	if s.buffered() >= s.max {
		s.pop()
		s.stats.Overflow++
		r.Cause = CauseBufferOverflow
		if !s.overflowed {
			s.overflowed = true
			s.stats.Resyncs[CauseBufferOverflow]++
			r.Action = NeedSnapshot
		}
	}
	if s.head > 0 && len(s.buf) == cap(s.buf) {
		n := copy(s.buf, s.buf[s.head:])
		clear(s.buf[n:])
		s.buf = s.buf[:n]
		s.head = 0
	}
	var e *market.DepthUpdate
	if n := len(s.free); n > 0 {
		e = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		e = new(market.DepthUpdate)
	}
	bids, asks := e.Bids, e.Asks
	*e = *u
	e.Bids = append(bids[:0], u.Bids...)
	e.Asks = append(asks[:0], u.Asks...)
	s.buf = append(s.buf, e)
	return r
}

// maxFree bounds the recycled events kept after a long buffering episode:
// enough for the events that arrive while a snapshot is fetched, without
// holding a full MaxBuffer of level slices forever.
const maxFree = 1024

// pop recycles the oldest buffered event.
func (s *Syncer) pop() {
	e := s.buf[s.head]
	s.buf[s.head] = nil
	s.head++
	if len(s.free) < maxFree {
		s.free = append(s.free, e)
	}
	if s.head == len(s.buf) {
		s.buf = s.buf[:0]
		s.head = 0
	}
}

func (s *Syncer) dropBuffer() {
	for s.buffered() > 0 {
		s.pop()
	}
}
