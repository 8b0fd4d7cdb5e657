package enginetest

import (
	"fmt"
	"io"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// Outputs receives what a bus publisher publishes while an engine runs a
// recording through the frame path. The values are valid during the call.
type Outputs struct {
	// Trade: each trade the metrics accepted.
	Trade func(s *engine.Symbol, t *market.Trade)
	// Book: the whole book, with its known range, each time a symbol's
	// book becomes synced.
	Book func(s *engine.Symbol, snap *market.DepthSnapshot, bidFloor, askCeil fixed.Dec)
	// Delta: each diff the synced book applied.
	Delta func(s *engine.Symbol, u *market.DepthUpdate)
	// Resync: a synced book was dropped (gap, crossed book).
	Resync func(s *engine.Symbol)
}

// Publish runs files through a new engine with cfg (HandleFrame and
// HandleSnapshot, as replay does; cfg.OnTrade is wrapped) and calls out.
// It returns the engine at the end of the recording.
func Publish(cfg engine.Config, files []string, out Outputs) (*engine.Engine, error) {
	onTrade := cfg.OnTrade
	cfg.OnTrade = func(s *engine.Symbol, t *market.Trade) {
		if onTrade != nil {
			onTrade(s, t)
		}
		if out.Trade != nil {
			out.Trade(s, t)
		}
	}
	e := engine.New(cfg)
	var snap market.DepthSnapshot
	after := func(sym string, before mark) {
		s := e.Symbol(sym)
		now := markOf(s)
		switch {
		case now.synced && !before.synced:
			s.Book().Snapshot(0, &snap)
			snap.Symbol = sym
			floor, ceil := s.Book().KnownRange()
			if out.Book != nil {
				out.Book(s, &snap, floor, ceil)
			}
		case before.synced && !now.synced:
			if out.Resync != nil {
				out.Resync(s)
			}
		}
	}
	for _, f := range files {
		r, err := capture.Open(f, capture.OpenOptions{})
		if err != nil {
			return e, err
		}
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return e, fmt.Errorf("%s: %w", f, err)
			}
			if rec.Kind == capture.Snapshot {
				before := markOf(e.Symbol(rec.Symbol))
				if err := e.HandleSnapshot(rec.Symbol, rec.Data, rec.Market, rec.MarketKnown); err != nil {
					r.Close()
					return e, err
				}
				after(rec.Symbol, before)
				continue
			}
			msg, err := e.Decode(rec.Data)
			if err != nil {
				r.Close()
				return e, err
			}
			if msg.Kind != binance.KindDepthUpdate {
				if err := e.HandleMessage(msg, rec.Market, rec.MarketKnown); err != nil {
					r.Close()
					return e, err
				}
				continue
			}
			sym := msg.Depth.Symbol
			before := markOf(e.Symbol(sym))
			if err := e.HandleMessage(msg, rec.Market, rec.MarketKnown); err != nil {
				r.Close()
				return e, err
			}
			now := markOf(e.Symbol(sym))
			if before.synced && now.synced && now.applied != before.applied {
				if out.Delta != nil {
					out.Delta(e.Symbol(sym), &msg.Depth)
				}
				continue
			}
			after(sym, before)
		}
		r.Close()
	}
	return e, nil
}

type mark struct {
	synced  bool
	applied uint64 // the Syncer's Stats.Applied
}

func markOf(s *engine.Symbol) mark {
	if s == nil || s.Sync == nil {
		return mark{}
	}
	return mark{s.Synced(), s.Sync.Stats().Applied}
}
