package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// Source feeds a run from something other than Binance: the query tier's
// consumer of the bus (package bus). With Config.Source set, a run opens no
// WebSocket connection and makes no REST request; the source's Run is the
// run's one input task and drives the engine through the Sink, under the
// same data lock the stream handlers use, so every reader (View, Status,
// the API, push, dashboard and MCP) works unchanged.
type Source interface {
	// Name describes the source in logs and Status, e.g. "bus
	// nats://127.0.0.1:4222".
	Name() string
	// Run feeds sink until ctx ends, following the symbol set
	// (Sink.Symbols, Sink.SymbolsChanged). It must return only after every
	// goroutine it started has ended; it returns ctx's error when stopped,
	// or an error it cannot recover from.
	Run(ctx context.Context, sink *Sink) error
}

// Sink is what a Source drives: each method takes the run's data lock for
// one event. Events for symbols not in the run's set are counted
// (engine Stats.UnknownSymbol) and dropped. A Sink belongs to one run.
type Sink struct {
	r       *run
	changed chan struct{}

	stMu       sync.Mutex
	state      string
	since      time.Time
	last       time.Time
	messages   uint64
	reconnects uint64

	// scratch checks a periodic full book against the book (data lock).
	scratch book.Book
	// Repairs counts periodic full books that differed from the book they
	// should have equalled (each replaced it); guarded by the data lock.
	repairs int64
}

// Source connection states for Status (the values feed.State names).
const (
	SourceConnecting = "connecting"
	SourceConnected  = "connected"
)

// ErrSourceUnknownSymbol is returned for an event of a symbol not in the
// run's set.
var ErrSourceUnknownSymbol = errors.New("service: source event for a symbol not in the set")

func newSink(r *run) *Sink {
	return &Sink{r: r, changed: make(chan struct{}, 1), state: SourceConnecting}
}

// Market returns the market the service serves.
func (k *Sink) Market() market.Kind { return k.r.s.cfg.Market }

// Logger returns the service's logger.
func (k *Sink) Logger() *slog.Logger { return k.r.log }

// Symbols returns the run's symbol set now.
func (k *Sink) Symbols() []string {
	k.r.mu.Lock()
	defer k.r.mu.Unlock()
	return slices.Clone(k.r.symbols)
}

// SymbolsChanged receives a value after the symbol set changed
// (AddSymbol, RemoveSymbol); read Symbols then.
func (k *Sink) SymbolsChanged() <-chan struct{} { return k.changed }

// SetConnected reports the source's connection state for Status and
// /readyz; a change from connected to not connected counts a reconnect.
func (k *Sink) SetConnected(ok bool) {
	st := SourceConnecting
	if ok {
		st = SourceConnected
	}
	k.stMu.Lock()
	changed := st != k.state
	if changed {
		if !ok {
			k.reconnects++
		}
		k.state, k.since = st, time.Now()
	}
	k.stMu.Unlock()
	if changed {
		k.r.s.changes.notify()
	}
}

func (k *Sink) seen() {
	k.stMu.Lock()
	k.messages++
	k.last = time.Now()
	k.stMu.Unlock()
}

func (k *Sink) status() StreamStatus {
	k.stMu.Lock()
	defer k.stMu.Unlock()
	return StreamStatus{Name: k.r.s.cfg.Source.Name(), Path: "source", State: k.state, Streams: 1, Reconnects: k.reconnects,
		Frames: k.messages, ConnectedAt: k.since, LastFrame: k.last}
}

// Trade applies one trade (engine.ApplyTrade): a duplicate or out-of-order
// id is refused and counted (engine Stats.TradeRejected), which is how a
// replay from the bus's retention overlapping what was applied is
// harmless.
func (k *Sink) Trade(t *market.Trade) error { return k.trade(t, nil) }

// active reports whether sym is in the set and, with sq, still the same
// addition of it. Data lock held.
func (k *Sink) active(sym string, sq *sequencer) bool {
	cur := k.r.seqs[sym]
	return cur != nil && (sq == nil || cur == sq)
}

func (k *Sink) trade(t *market.Trade, bound *sequencer) error {
	k.seen()
	r := k.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !k.active(t.Symbol, bound) {
		r.eng.CountUnknownSymbol()
		return fmt.Errorf("%w: %s", ErrSourceUnknownSymbol, t.Symbol)
	}
	if err := r.eng.ApplyTrade(t, r.s.cfg.Market); err != nil {
		return err
	}
	if sq := r.seqs[t.Symbol]; t.ID > sq.last {
		sq.last = t.ID
	}
	return nil
}

// LoadBook replaces a symbol's book with a publisher's full book
// (engine.LoadBook). With periodic, the full book is a check of a book
// that should already equal it: when the book is synced at the same update
// id with the same levels nothing changes (loaded false); otherwise it is
// replaced, logged and counted (Repairs).
func (k *Sink) LoadBook(snap *market.DepthSnapshot, bidFloor, askCeil fixed.Dec, periodic bool) (loaded bool, err error) {
	return k.loadBook(snap, bidFloor, askCeil, periodic, nil)
}

func (k *Sink) loadBook(snap *market.DepthSnapshot, bidFloor, askCeil fixed.Dec, periodic bool, bound *sequencer) (loaded bool, err error) {
	k.seen()
	r := k.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !k.active(snap.Symbol, bound) {
		r.eng.CountUnknownSymbol()
		return false, fmt.Errorf("%w: %s", ErrSourceUnknownSymbol, snap.Symbol)
	}
	sym := r.eng.Symbol(snap.Symbol)
	wasSynced := sym != nil && sym.Synced()
	if periodic && wasSynced {
		if err := k.scratch.Reset(snap); err == nil && sym.Book().Equal(&k.scratch) {
			return false, nil
		}
		k.repairs++
		r.log.Warn("source: the book differs from the publisher's periodic full book: replaced", "symbol", snap.Symbol,
			"book_update_id", sym.Book().UpdateID(), "snapshot_update_id", snap.LastUpdateID)
	}
	err = r.eng.LoadBook(snap, r.s.cfg.Market, bidFloor, askCeil)
	if now := r.eng.Symbol(snap.Symbol).Synced(); now != wasSynced {
		r.s.changes.notify()
	}
	return err == nil, err
}

// Delta applies one diff of a publisher's synced book (engine.ApplyDelta).
// Before the symbol's first full book, or after a gap, it returns
// engine.ErrNotSynced; a gap drops the book (Result NeedSnapshot) until
// the next full book.
func (k *Sink) Delta(u *market.DepthUpdate) (book.Result, error) { return k.delta(u, nil) }

func (k *Sink) delta(u *market.DepthUpdate, bound *sequencer) (book.Result, error) {
	k.seen()
	r := k.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !k.active(u.Symbol, bound) {
		r.eng.CountUnknownSymbol()
		return book.Result{Action: book.Ignored}, fmt.Errorf("%w: %s", ErrSourceUnknownSymbol, u.Symbol)
	}
	res, err := r.eng.ApplyDelta(u)
	if res.Action == book.NeedSnapshot {
		r.log.Warn("source: book diff does not follow the book: waiting for the next full book", "symbol", u.Symbol,
			"cause", res.Cause.String(), "U", u.FirstID, "u", u.FinalID, "pu", u.PrevFinalID)
		r.s.changes.notify()
	}
	return res, err
}

// Book reports whether a symbol's book is synced and its update id.
func (k *Sink) Book(symbol string) (synced bool, updateID int64) {
	r := k.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.eng.Symbol(symbol); s != nil && s.Synced() {
		return true, s.Book().UpdateID()
	}
	return false, 0
}

// LastTrade returns the last trade id applied for a symbol (0: none).
func (k *Sink) LastTrade(symbol string) int64 {
	r := k.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if sq := r.seqs[symbol]; sq != nil {
		return sq.last
	}
	return 0
}

// Repairs counts periodic full books that corrected the book.
func (k *Sink) Repairs() int64 {
	k.r.mu.Lock()
	defer k.r.mu.Unlock()
	return k.repairs
}

// symbolsChanged tells the source to read the symbol set again.
func (k *Sink) symbolsChanged() { signal(k.changed) }

// SymbolSink is a Sink bound to one addition of a symbol: once the symbol
// is removed, even if it is added again, the handle's events are refused
// (ErrSourceUnknownSymbol), so a consumer started for the old addition
// cannot write into the new state. A Source starts one consumer per
// handle and a new one when Current turns false.
type SymbolSink struct {
	k    *Sink
	name string
	sq   *sequencer
}

// Symbol returns a handle bound to the symbol's current addition, or false
// when the symbol is not in the set.
func (k *Sink) Symbol(name string) (*SymbolSink, bool) {
	k.r.mu.Lock()
	defer k.r.mu.Unlock()
	sq := k.r.seqs[name]
	if sq == nil {
		return nil, false
	}
	return &SymbolSink{k: k, name: name, sq: sq}, true
}

// Name returns the symbol.
func (h *SymbolSink) Name() string { return h.name }

// Current reports whether the handle's addition of the symbol is still
// the one in the set.
func (h *SymbolSink) Current() bool {
	h.k.r.mu.Lock()
	defer h.k.r.mu.Unlock()
	return h.k.active(h.name, h.sq)
}

// Trade is Sink.Trade for this addition of the symbol.
func (h *SymbolSink) Trade(t *market.Trade) error { return h.k.trade(t, h.sq) }

// LoadBook is Sink.LoadBook for this addition of the symbol.
func (h *SymbolSink) LoadBook(snap *market.DepthSnapshot, bidFloor, askCeil fixed.Dec, periodic bool) (bool, error) {
	return h.k.loadBook(snap, bidFloor, askCeil, periodic, h.sq)
}

// Delta is Sink.Delta for this addition of the symbol.
func (h *SymbolSink) Delta(u *market.DepthUpdate) (book.Result, error) { return h.k.delta(u, h.sq) }

// LastTrade returns the last trade id applied for this addition (0: none).
func (h *SymbolSink) LastTrade() int64 {
	h.k.r.mu.Lock()
	defer h.k.r.mu.Unlock()
	return h.sq.last
}
