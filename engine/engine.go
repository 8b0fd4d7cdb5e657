// Package engine is the per-symbol pipeline that live streams, replays and
// benchmarks all run through: decoded Binance messages in, a synchronized
// order book and order-flow metrics out.
//
// An Engine is not safe for concurrent use: one goroutine feeds it (the
// service's processing loop, a replay, a benchmark). It does no I/O. When a
// symbol's book needs a REST snapshot, the engine says so (NeedSnapshot and
// the OnNeedSnapshot hook) and the owner fetches one and hands it back with
// HandleSnapshot; in a replay the recording supplies it.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// Config configures an Engine. The zero value is usable.
type Config struct {
	// Market, when MarketKnown, fixes every symbol's market. Otherwise a
	// symbol's market is detected from its data: a depth event with pu, a
	// snapshot with E/T or a recording that says so mean USD-M; spot
	// otherwise.
	Market      market.Kind
	MarketKnown bool
	// Flow configures each symbol's metrics.
	Flow flow.Config
	// Sync configures each symbol's book synchronization.
	Sync book.SyncOptions
	// OnTrade, if set, is called for every trade accepted into the metrics.
	OnTrade func(s *Symbol, t *market.Trade)
	// OnNeedSnapshot, if set, is called when a symbol's book needs a REST
	// depth snapshot (at start and after every gap).
	OnNeedSnapshot func(s *Symbol, cause book.Cause)
	// OnBarClose is called when a bar closes (see flow.Config.OnBarClose).
	OnBarClose func(s *Symbol, interval time.Duration, b *flow.Bar)
	// OnBarRevised is called when late trades amended a closed bar (see
	// flow.Config.OnBarRevised); b.LateTrades > 0.
	OnBarRevised func(s *Symbol, interval time.Duration, b *flow.Bar)
	// BarLateness turns on time-driven bar closing: each symbol's
	// watermark is the latest exchange event time seen on any of its
	// streams (depth E, trade E and T, bookTicker E and T where Binance
	// sends them) minus BarLateness, and a bar closes once the watermark
	// passes its end (flow.Tracker.Advance), even if no trade follows. A
	// trade arriving later than that amends the closed bar. Zero (the
	// default) leaves bars to close when a trade of a later bar arrives.
	// Exchange time only: a replay closes bars at the same points every
	// run.
	BarLateness time.Duration
	// OnDepth, if set, is called with every depth update just applied to a
	// synced book (s.Book() is the book after it). Updates replayed from the
	// sync buffer are not passed: OnSynced's book holds them.
	OnDepth func(s *Symbol, u *market.DepthUpdate)
	// OnSynced, if set, is called when a snapshot (plus the buffered
	// updates replayed on it) has made a symbol's book synced: its first
	// sync and every resync.
	OnSynced func(s *Symbol)
	// OnLarge, if set, is called with every large trade (after
	// Flow.OnLarge, which keeps working).
	OnLarge func(s *Symbol, l flow.LargeTrade)
	// OnSignal, if set, is called with every book signal of depthflow (after
	// DepthFlow.OnSignal, which keeps working).
	OnSignal func(s *Symbol, sig depthflow.Signal)
	// DepthFlow, if set, turns on the book metrics and combined signals
	// (walls, liquidity added and pulled, band imbalance, absorption) of
	// package depthflow for every symbol. Off by default: it costs about
	// ten times the book update itself.
	DepthFlow *depthflow.Config
	// DepthFlowSymbol, if set, adjusts a symbol's copy of DepthFlow
	// before its tracker is made (per-symbol thresholds, e.g. a wall
	// floor in the symbol's quote asset).
	DepthFlowSymbol func(symbol string, c *depthflow.Config)
	// BookHistory configures the per-symbol history of the top of the book
	// (for heatmaps and "where were the walls five minutes ago"); the zero
	// value keeps book.HistoryOptions' defaults. NoBookHistory turns it off.
	BookHistory   book.HistoryOptions
	NoBookHistory bool
	// NoTickerCheck turns off the bookTicker self-check: by default, at every
	// bookTicker whose update id equals the book's, the book's best bid and
	// ask (price and qty) must equal the ticker's; a mismatch is counted,
	// logged and the book resynced.
	NoTickerCheck bool
	// Logger receives resyncs and rejected input; nil discards.
	Logger *slog.Logger
}

// Stats counts what the engine has seen; every input that is not used is
// counted under a reason, never dropped silently.
type Stats struct {
	Frames        int64
	DecodeErrors  int64
	Trades        int64
	TradeRejected int64 // duplicate or out-of-order trade ids
	DepthUpdates  int64
	BookTickers   int64
	Snapshots     int64
	Unknown       int64 // well-formed events of an unhandled type
	Replies       int64
	ErrorFrames   int64
	Shutdowns     int64 // serverShutdown notices
	// TickerChecks counts bookTickers compared with the book at the same
	// update id; TickerMismatches those that differed (each forces a resync).
	TickerChecks     int64
	TickerMismatches int64
	// Audits counts self-audits (a fresh REST snapshot compared with the
	// book at the same update id), AuditMismatches those that differed
	// (each forces a resync), AuditSkipped those the book passed without
	// ever being at the snapshot's id (it fell inside a batched diff).
	Audits          int64
	AuditMismatches int64
	AuditSkipped    int64
	UnknownSymbol   int64 // messages for symbols not subscribed
	// LateTrades counts trades that arrived after their bar's interval had
	// passed the watermark (see Config.BarLateness): each amended a closed
	// bar or opened an overdue one. AmendedBars counts the closed bars they
	// changed (each re-reported through OnBarRevised).
	LateTrades  int64
	AmendedBars int64
}

// Engine routes decoded messages to per-symbol state.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	dec     *binance.Decoder
	msg     binance.Message
	snap    market.DepthSnapshot
	symbols map[string]*Symbol
	order   []*Symbol
	// last is the symbol of the previous message: a connection carries
	// one symbol's streams in runs, so most messages skip the map.
	last  *Symbol
	stats Stats
}

// Symbol is one symbol's pipeline state.
type Symbol struct {
	Name        string
	Market      market.Kind
	marketKnown bool
	Sync        *book.Syncer
	Flow        *flow.Tracker
	e           *Engine
	// Depth holds the book metrics and signals (nil unless enabled).
	Depth *depthflow.Tracker
	// History holds the top of the book at a fixed interval of exchange
	// time (nil when disabled).
	History *book.History
	// LastTicker is the last bookTicker seen for the symbol.
	LastTicker market.BookTicker
	HaveTicker bool
	// TickerChecks and TickerMismatches count this symbol's self-checks.
	TickerChecks, TickerMismatches int64
	// pending holds bookTickers ahead of the book (Binance pushes them in
	// real time while depth comes in 100 ms batches), compared when the
	// book reaches their update id.
	pending  [pendingTickers]market.BookTicker
	npending int
	// audit is a snapshot waiting for the book to reach its update id.
	audit      market.DepthSnapshot
	auditLimit int
	auditing   bool
	// LastAudit describes the last completed audit.
	LastAudit AuditResult
	// DepthTime is the event time (ms) of the last depth update seen, in
	// sync or not.
	DepthTime int64
	// EventTime is the latest exchange event time (ms) seen on any of the
	// symbol's streams: the watermark before the allowed lateness.
	EventTime int64
}

// AuditResult is the outcome of one self-audit.
type AuditResult struct {
	UpdateID   int64
	Compared   bool // false: skipped, the book never sat at UpdateID
	Mismatches []book.Mismatch
}

// pendingTickers bounds the bookTickers held per symbol for the self-check.
const pendingTickers = 64

// New returns an Engine.
func New(cfg Config) *Engine {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, log: log, dec: binance.NewDecoder(), symbols: map[string]*Symbol{}}
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats { return e.stats }

// Symbols returns the symbols in the order they were first seen.
func (e *Engine) Symbols() []*Symbol { return e.order }

// Symbol returns a symbol's state, or nil.
func (e *Engine) Symbol(name string) *Symbol { return e.symbols[name] }

// AddSymbol creates the state of a symbol ahead of its data (the service
// does this so that a symbol without trades yet still exists).
func (e *Engine) AddSymbol(name string, kind market.Kind, kindKnown bool) *Symbol {
	if s := e.last; s != nil && s.Name == name {
		return s
	}
	if s := e.symbols[name]; s != nil {
		e.last = s
		return s
	}
	s := &Symbol{Name: name, e: e}
	fc := e.cfg.Flow
	if e.cfg.DepthFlow != nil {
		dc := *e.cfg.DepthFlow
		if adjust := e.cfg.DepthFlowSymbol; adjust != nil {
			adjust(name, &dc)
		}
		if on := e.cfg.OnSignal; on != nil {
			prev := dc.OnSignal
			dc.OnSignal = func(sig depthflow.Signal) {
				if prev != nil {
					prev(sig)
				}
				on(s, sig)
			}
		}
		s.Depth = depthflow.New(name, dc)
	}
	if on := e.cfg.OnLarge; on != nil {
		prev := fc.OnLarge
		fc.OnLarge = func(l flow.LargeTrade) {
			if prev != nil {
				prev(l)
			}
			on(s, l)
		}
	}
	if on := e.cfg.OnBarRevised; on != nil {
		prev := fc.OnBarRevised
		fc.OnBarRevised = func(iv time.Duration, b *flow.Bar) {
			if prev != nil {
				prev(iv, b)
			}
			on(s, iv, b)
		}
	}
	if e.cfg.OnBarClose != nil || s.Depth != nil {
		// Chained like OnLarge and OnSignal: a hook set in Config.Flow
		// keeps running.
		prev := fc.OnBarClose
		fc.OnBarClose = func(iv time.Duration, b *flow.Bar) {
			if prev != nil {
				prev(iv, b)
			}
			if s.Depth != nil {
				s.Depth.OnBar(iv, b)
			}
			if e.cfg.OnBarClose != nil {
				e.cfg.OnBarClose(s, iv, b)
			}
		}
	}
	s.Flow = flow.NewTracker(name, fc)
	if !e.cfg.NoBookHistory {
		s.History = book.NewHistory(e.cfg.BookHistory)
	}
	if e.cfg.MarketKnown {
		s.setMarket(e.cfg.Market)
	} else if kindKnown {
		s.setMarket(kind)
	}
	e.symbols[name] = s
	e.order = append(e.order, s)
	e.last = s
	return s
}

// RemoveSymbol drops a symbol's state (book, metrics, history), so a
// symbol unsubscribed at run time does not hold memory; a later message
// for it creates fresh state. It reports whether the symbol existed.
func (e *Engine) RemoveSymbol(name string) bool {
	s := e.symbols[name]
	if s == nil {
		return false
	}
	delete(e.symbols, name)
	if e.last == s {
		e.last = nil
	}
	for i, o := range e.order {
		if o == s {
			e.order = append(e.order[:i:i], e.order[i+1:]...)
			break
		}
	}
	return true
}

func (s *Symbol) setMarket(k market.Kind) {
	s.Market, s.marketKnown = k, true
	s.Sync = book.NewSyncer(k, s.e.cfg.Sync)
}

// MarketKnown says whether the symbol's market is settled.
func (s *Symbol) MarketKnown() bool { return s.marketKnown }

// Synced says whether the symbol's book is synchronized.
func (s *Symbol) Synced() bool { return s.Sync != nil && s.Sync.Synced() }

// Book returns the symbol's book, or nil before the market is known.
func (s *Symbol) Book() *book.Book {
	if s.Sync == nil {
		return nil
	}
	return s.Sync.Book()
}

// ErrDecode wraps frames the decoder rejected.
var ErrDecode = errors.New("engine: decode")

// HandleFrame decodes one WebSocket frame and applies it. hint is the
// market the frame's source claims (a recording or a connection), used when
// hintKnown and the engine's market is not fixed. It returns the decoded
// message (valid until the next call) and an error for rejected input; the
// engine has counted it either way.
func (e *Engine) HandleFrame(frame []byte, hint market.Kind, hintKnown bool) (*binance.Message, error) {
	e.stats.Frames++
	m := &e.msg
	if err := e.dec.Decode(frame, m); err != nil {
		e.stats.DecodeErrors++
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return m, e.HandleMessage(m, hint, hintKnown)
}

// HandleMessage applies an already decoded message.
func (e *Engine) HandleMessage(m *binance.Message, hint market.Kind, hintKnown bool) error {
	switch m.Kind {
	case binance.KindAggTrade, binance.KindTrade:
		return e.handleTrade(&m.Trade, hint, hintKnown)
	case binance.KindDepthUpdate:
		e.stats.DepthUpdates++
		u := &m.Depth
		if u.HasPrev {
			hint, hintKnown = market.USDM, true
		}
		s := e.AddSymbol(u.Symbol, hint, hintKnown)
		if !s.marketKnown {
			s.setMarket(market.Spot)
		}
		s.DepthTime = u.EventTime
		s.observe(u.EventTime)
		synced := s.Sync.Synced()
		if synced && s.Depth != nil {
			s.Depth.BeforeDepth(u, s.Sync.Book())
		}
		r := s.Sync.OnUpdate(u)
		s.onResult(r)
		if r.Action == book.Applied && synced && s.Depth != nil {
			if err := s.Depth.OnDepth(u, s.Sync.Book()); err != nil {
				e.log.Warn("depthflow rejected an update", "symbol", s.Name, "err", err)
			}
		}
		if r.Action == book.Applied && e.cfg.OnDepth != nil {
			e.cfg.OnDepth(s, u)
		}
		if s.Sync.Synced() {
			if s.History != nil {
				s.History.Record(u.EventTime, s.Sync.Book())
			}
			if s.npending > 0 {
				s.checkPending()
			}
			if s.auditing {
				s.checkAudit()
			}
		}
	case binance.KindBookTicker:
		e.stats.BookTickers++
		s := e.AddSymbol(m.Ticker.Symbol, hint, hintKnown)
		s.LastTicker, s.HaveTicker = m.Ticker, true
		s.observe(max(m.Ticker.EventTime, m.Ticker.TransactTime)) // USD-M only; spot sends neither
		if !e.cfg.NoTickerCheck {
			s.checkTicker(&m.Ticker)
		}
	case binance.KindReply:
		e.stats.Replies++
	case binance.KindError:
		e.stats.ErrorFrames++
		return fmt.Errorf("engine: error frame code %d: %s", m.Reply.Code, m.Reply.Msg)
	case binance.KindServerShutdown:
		e.stats.Shutdowns++
	default:
		e.stats.Unknown++
	}
	return nil
}

// HandleTrade applies one trade (from a stream, a REST backfill or a CSV).
func (e *Engine) HandleTrade(t *market.Trade) error {
	return e.handleTrade(t, 0, false)
}

func (e *Engine) handleTrade(t *market.Trade, hint market.Kind, hintKnown bool) error {
	s := e.AddSymbol(t.Symbol, hint, hintKnown)
	before := s.Flow.Late()
	if err := s.Flow.Add(t); err != nil {
		e.stats.TradeRejected++
		return fmt.Errorf("engine: %s trade %d: %w", t.Symbol, t.ID, err)
	}
	e.stats.Trades++
	if after := s.Flow.Late(); after != before {
		e.stats.LateTrades += after.Trades - before.Trades
		e.stats.AmendedBars += after.AmendedBars - before.AmendedBars
	}
	// Only accepted trades move the watermark: a refused one may carry
	// any time. A REST trade has no event time; its own time rarely moves
	// the watermark, except at a warm start before any stream event.
	s.observe(max(t.EventTime, t.Time))
	if s.Depth != nil {
		if err := s.Depth.OnTrade(t); err != nil {
			e.log.Warn("depthflow rejected a trade", "symbol", s.Name, "err", err)
		}
	}
	if e.cfg.OnTrade != nil {
		e.cfg.OnTrade(s, t)
	}
	return nil
}

// observe moves the symbol's latest event time to at (exchange ms) and,
// with Config.BarLateness, its bars' watermark: only when at is new, so a
// run of REST trades (older times) amends a bar once and its revision is
// reported at the next stream event.
func (s *Symbol) observe(at int64) {
	if at <= s.EventTime {
		return
	}
	s.EventTime = at
	if l := s.e.cfg.BarLateness; l > 0 {
		s.Flow.Advance(at - l.Milliseconds())
	}
}

// HandleSnapshot decodes a REST depth snapshot body for symbol and hands
// it to the symbol's book synchronizer.
func (e *Engine) HandleSnapshot(symbol string, body []byte, hint market.Kind, hintKnown bool) error {
	if err := binance.DecodeDepthSnapshot(body, &e.snap); err != nil {
		e.stats.DecodeErrors++
		return fmt.Errorf("%w: snapshot %s: %w", ErrDecode, symbol, err)
	}
	e.snap.Symbol = symbol
	return e.ApplySnapshot(&e.snap, hint, hintKnown)
}

// ApplySnapshot hands a decoded snapshot to the symbol's synchronizer.
func (e *Engine) ApplySnapshot(snap *market.DepthSnapshot, hint market.Kind, hintKnown bool) error {
	e.stats.Snapshots++
	if snap.EventTime != 0 || snap.TransactTime != 0 {
		hint, hintKnown = market.USDM, true
	}
	s := e.AddSymbol(snap.Symbol, hint, hintKnown)
	if !s.marketKnown {
		s.setMarket(market.Spot)
	}
	r := s.Sync.OnSnapshot(snap)
	s.onResult(r)
	if s.Depth != nil && s.Sync.Synced() {
		s.Depth.Reset(s.Sync.Book(), max(len(snap.Bids), len(snap.Asks)))
	}
	if r.Action == book.Applied && e.cfg.OnSynced != nil {
		e.cfg.OnSynced(s)
	}
	return nil
}

// Audit hands a fresh REST snapshot (fetched with depth limit) to the
// symbol's self-audit: it is compared with the book when the book's update
// id equals the snapshot's lastUpdateId (now, or when the stream gets
// there); a difference is counted, logged and resyncs the book. A snapshot
// older than the book cannot be compared and counts as skipped.
func (e *Engine) Audit(snap *market.DepthSnapshot, limit int) {
	s := e.symbols[snap.Symbol]
	if s == nil || !s.Synced() {
		e.stats.AuditSkipped++
		return
	}
	s.audit.Symbol, s.audit.LastUpdateID = snap.Symbol, snap.LastUpdateID
	s.audit.EventTime, s.audit.TransactTime = snap.EventTime, snap.TransactTime
	s.audit.Bids = append(s.audit.Bids[:0], snap.Bids...)
	s.audit.Asks = append(s.audit.Asks[:0], snap.Asks...)
	s.auditLimit, s.auditing = limit, true
	s.checkAudit()
}

func (s *Symbol) checkAudit() {
	id := s.Sync.Book().UpdateID()
	switch {
	case id < s.audit.LastUpdateID:
		return // the stream has not got there yet
	case id > s.audit.LastUpdateID:
		s.auditing = false
		s.e.stats.AuditSkipped++
		s.LastAudit = AuditResult{UpdateID: s.audit.LastUpdateID}
		return
	}
	s.auditing = false
	s.e.stats.Audits++
	mm := s.Sync.Book().Compare(&s.audit, s.auditLimit)
	s.LastAudit = AuditResult{UpdateID: id, Compared: true, Mismatches: mm}
	if len(mm) == 0 {
		return
	}
	s.e.stats.AuditMismatches++
	s.e.log.Error("self-audit: book differs from a fresh snapshot at the same update id: resyncing", "symbol", s.Name,
		"update_id", id, "mismatches", len(mm), "first", mm[0].String())
	s.npending = 0
	s.Sync.Reset()
	if s.e.cfg.OnNeedSnapshot != nil {
		s.e.cfg.OnNeedSnapshot(s, book.CauseCrossed)
	}
}

// checkTicker compares the book with a bookTicker at the same update id,
// now if the book is there, or when it gets there. Binance publishes both
// from the same engine state, so any difference means our book has
// drifted: count it, log it and resync.
func (s *Symbol) checkTicker(t *market.BookTicker) {
	if s.Sync == nil || !s.Sync.Synced() {
		return
	}
	id := s.Sync.Book().UpdateID()
	switch {
	case t.UpdateID == id:
		s.compareTicker(t)
	case t.UpdateID > id:
		if s.npending == pendingTickers { // keep the newest
			copy(s.pending[:], s.pending[1:])
			s.npending--
		}
		s.pending[s.npending] = *t
		s.npending++
	}
}

// checkPending compares the held tickers the book has reached and drops
// those it has passed (their update id fell inside a batched diff).
func (s *Symbol) checkPending() {
	id := s.Sync.Book().UpdateID()
	n := 0
	for i := 0; i < s.npending; i++ {
		t := &s.pending[i]
		switch {
		case t.UpdateID == id:
			if !s.compareTicker(t) {
				s.npending = 0
				return
			}
		case t.UpdateID > id:
			s.pending[n] = *t
			n++
		}
	}
	s.npending = n
}

// compareTicker reports whether the book agrees with t; on a mismatch it
// resyncs the book.
func (s *Symbol) compareTicker(t *market.BookTicker) bool {
	bk := s.Sync.Book()
	s.TickerChecks++
	s.e.stats.TickerChecks++
	bid, okb := bk.BestBid()
	ask, oka := bk.BestAsk()
	if okb && oka && bid.Price == t.BidPrice && bid.Qty == t.BidQty && ask.Price == t.AskPrice && ask.Qty == t.AskQty {
		return true
	}
	s.TickerMismatches++
	s.e.stats.TickerMismatches++
	s.e.log.Error("book differs from bookTicker at the same update id: resyncing", "symbol", s.Name,
		"update_id", t.UpdateID, "book_bid", bid, "book_ask", ask, "ticker_bid", t.BidPrice, "ticker_bid_qty", t.BidQty,
		"ticker_ask", t.AskPrice, "ticker_ask_qty", t.AskQty)
	s.npending = 0
	s.Sync.Reset()
	if s.e.cfg.OnNeedSnapshot != nil {
		s.e.cfg.OnNeedSnapshot(s, book.CauseCrossed)
	}
	return false
}

func (s *Symbol) onResult(r book.Result) {
	if r.Action == book.NeedSnapshot {
		// The first snapshot is routine; anything else is a resync, which
		// users want to see in the log with its cause.
		lvl := slog.LevelWarn
		if r.Cause == book.CauseInitial {
			lvl = slog.LevelDebug
		}
		s.e.log.Log(context.Background(), lvl, "book needs snapshot", "symbol", s.Name, "cause", r.Cause.String())
		if s.e.cfg.OnNeedSnapshot != nil {
			s.e.cfg.OnNeedSnapshot(s, r.Cause)
		}
	}
}

// Decode decodes one frame into the engine's message without applying
// it, counting it like HandleFrame does, for owners that route some
// messages themselves (the service sequences aggTrades by id first).
func (e *Engine) Decode(frame []byte) (*binance.Message, error) {
	e.stats.Frames++
	if err := e.dec.Decode(frame, &e.msg); err != nil {
		e.stats.DecodeErrors++
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return &e.msg, nil
}

// CountDecoded counts a frame decoded outside the engine, as Decode
// counts its own: the service decodes on each connection's goroutine,
// before it takes its data lock. failed says the decode failed.
func (e *Engine) CountDecoded(failed bool) {
	e.stats.Frames++
	if failed {
		e.stats.DecodeErrors++
	}
}

// CountUnknownSymbol counts a message for a symbol nobody subscribed.
func (e *Engine) CountUnknownSymbol() {
	e.stats.UnknownSymbol++
}
