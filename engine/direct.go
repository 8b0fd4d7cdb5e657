package engine

import (
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// Direct input. A query tier that reads normalized events (package bus)
// instead of Binance frames drives its engine with ApplyTrade, LoadBook and
// ApplyDelta: a trade as the publisher accepted it, the full book of the
// publisher's synced book, and each diff as the publisher applied it. The
// metrics, the book, its history and the book metrics then follow the
// same code as HandleFrame (handleTrade; the Syncer's rules for a synced
// book), so a consumer ends with the publisher's state.

// ErrNotSynced is returned by ApplyDelta for a symbol whose book has not
// been loaded (no LoadBook yet, or a gap since): the delta cannot be
// applied and the caller waits for the next full book.
var ErrNotSynced = errors.New("engine: book not loaded")

// ApplyTrade applies a normalized trade of a symbol of market kind, as
// HandleFrame applies a decoded aggTrade or trade: the same checks (ids
// strictly increasing, time not backwards), metrics, book metrics and
// OnTrade hook.
func (e *Engine) ApplyTrade(t *market.Trade, kind market.Kind) error {
	return e.handleTrade(t, kind, true)
}

// LoadBook replaces a symbol's book with the full book of a synced
// publisher: snap holds every level (best first) at snap.LastUpdateID, and
// bidFloor and askCeil are the publisher's book.KnownRange. The book is
// synced at once (book.Syncer.LoadSynced); the book metrics, if on, start
// over on it as after a REST snapshot. It counts as a snapshot in Stats.
func (e *Engine) LoadBook(snap *market.DepthSnapshot, kind market.Kind, bidFloor, askCeil fixed.Dec) error {
	e.stats.Snapshots++
	s := e.AddSymbol(snap.Symbol, kind, true)
	if !s.marketKnown {
		s.setMarket(kind)
	}
	s.npending, s.auditing = 0, false
	if err := s.Sync.LoadSynced(snap, bidFloor, askCeil); err != nil {
		return fmt.Errorf("engine: %s: %w", snap.Symbol, err)
	}
	if s.Depth != nil {
		// The book metrics take the known range from the book, which
		// holds the publisher's.
		s.Depth.Reset(s.Sync.Book(), 0)
	}
	return nil
}

// ApplyDelta applies one depth diff as the publisher applied it to its
// synced book, through the Syncer's rules for a synced book (spot: stale
// u <= id ignored, U > id+1 is a gap; USD-M: pu must equal id), so a
// missed delta is noticed: the book is then dropped (OnNeedSnapshot is
// called with the cause) until the next LoadBook. The book history and the
// book metrics are updated as HandleFrame updates them. A symbol whose
// book is not loaded returns ErrNotSynced and changes nothing.
func (e *Engine) ApplyDelta(u *market.DepthUpdate) (book.Result, error) {
	s := e.symbols[u.Symbol]
	if s == nil || !s.Synced() {
		return book.Result{Action: book.Ignored}, fmt.Errorf("%w: %s delta u=%d", ErrNotSynced, u.Symbol, u.FinalID)
	}
	e.stats.DepthUpdates++
	if s.Depth != nil {
		s.Depth.BeforeDepth(u, s.Sync.Book())
	}
	r := s.Sync.ApplySynced(u)
	s.onResult(r)
	if r.Action == book.Applied && s.Depth != nil {
		if err := s.Depth.OnDepth(u, s.Sync.Book()); err != nil {
			e.log.Warn("depthflow rejected an update", "symbol", s.Name, "err", err)
		}
	}
	if s.Sync.Synced() && s.History != nil {
		s.History.Record(u.EventTime, s.Sync.Book())
	}
	if r.Action == book.NeedSnapshot && r.Err != nil {
		return r, fmt.Errorf("engine: %s delta u=%d: %w", u.Symbol, u.FinalID, r.Err)
	}
	return r, nil
}
