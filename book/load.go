package book

import (
	"fmt"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// LoadSynced replaces the book with the full book of another, synced Syncer
// (a publisher on the bus): every level it held, its update id and its
// known range (KnownRange of the book it came from). The Syncer is then
// synced at snap.LastUpdateID, and the next event continues that book by
// ApplySynced. The book may be the publisher's right after a REST snapshot,
// before the USD-M event that bridges it, so on USD-M the first event may
// either bridge (U <= id <= u) or continue (pu == id). The buffer is
// discarded. On an invalid snapshot the book is left empty and
// not synced (the next event asks for a snapshot, CauseInitial) and the
// error is returned.
func (s *Syncer) LoadSynced(snap *market.DepthSnapshot, bidFloor, askCeil fixed.Dec) error {
	s.Reset()
	if snap == nil {
		s.stats.Invalid++
		return ErrNil
	}
	if err := s.book.Reset(snap); err != nil {
		s.stats.Invalid++
		return fmt.Errorf("load synced book: %w", err)
	}
	s.book.bidFloor, s.book.askCeil = bidFloor, askCeil
	s.stats.Snapshots++
	s.state = Synced
	s.needBridge = s.kind == market.USDM
	return nil
}

// ApplySynced applies one diff, as the publisher applied it, to a book
// loaded with LoadSynced: the synced-book rules of OnUpdate (stale u <= id
// ignored; spot U > id+1 and USD-M pu != id are gaps), except that the
// first USD-M event after the load may also continue the book (pu == id)
// instead of bridging it. On a gap or an invalid event the book is dropped
// (NeedSnapshot with the cause, counted in Stats.Resyncs) and nothing is
// buffered: the caller waits for the next full book. On a Syncer that is
// not synced it does nothing (Ignored, CauseNone).
func (s *Syncer) ApplySynced(u *market.DepthUpdate) Result {
	if s.state != Synced {
		return Result{Action: Ignored}
	}
	if err := s.check(u); err != nil {
		s.stats.Invalid++
		r := s.resync(CauseInvalid)
		r.Err = err
		return r
	}
	if s.needBridge && u.PrevFinalID == s.book.updateID && u.FinalID > s.book.updateID {
		s.needBridge = false
	}
	r := s.step(u)
	if r.Action == NeedSnapshot {
		s.state = AwaitingSnapshot
	}
	return r
}
