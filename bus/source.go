package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// SourceConfig configures a Source.
type SourceConfig struct {
	// Conn is the connection to the bus (Connect). Required; the Source
	// does not close it.
	Conn *nats.Conn
	// Name describes the bus in logs and Status. Default "bus".
	Name string
	// ReplayFrom bounds how far back a symbol's messages are read when
	// its consumer starts (a restart, a symbol added): 0 reads everything
	// the stream retains (default: the metrics' windows, bars and profiles
	// are rebuilt from the whole retention), a positive duration only the
	// messages stored in the last ReplayFrom.
	ReplayFrom time.Duration
	// RetryWait is the pause before a consumer that failed (no stream yet,
	// the bus unreachable at start) is created again. Default 1 s.
	RetryWait time.Duration
	// Logger receives consumer failures and refused messages. Default
	// slog.Default().
	Logger *slog.Logger
	// MaxHeld bounds the per-symbol reorder buffers: a trade whose id is
	// not the next one (its predecessors stored later in the stream, as
	// after a publish retried across a leader change), or a book diff
	// that does not follow the book yet, is held until what it follows
	// arrives; at most MaxHeld trades and MaxHeld diffs per symbol.
	// Default 10,000.
	MaxHeld int
	// HoldTime bounds the same buffers in exchange time: once a message
	// arrives more than HoldTime (event time) after the first one held,
	// the wait is given up: the held messages are applied in order and the
	// gap counted (GapSkipped). Default 5 s.
	HoldTime time.Duration
}

// SourceStats counts what a Source read; every message not applied is
// counted under a reason.
type SourceStats struct {
	Messages  int64 `json:"messages"`
	Trades    int64 `json:"trades"`
	Deltas    int64 `json:"deltas"`
	Snapshots int64 `json:"snapshots"`
	// Invalid: messages that are not schema v1, are of another market, or
	// that the engine refused (a trade id not after the last, a book that
	// cannot load).
	Invalid int64 `json:"invalid"`
	// Duplicates: trades at or below the last applied id (a replay
	// overlapping what was applied); dropped.
	Duplicates int64 `json:"duplicates"`
	// Unsynced: deltas with no book to apply to (before the symbol's first
	// full book, or after a gap until the next); dropped.
	Unsynced int64 `json:"unsynced"`
	// Gaps: deltas that did not follow the book (a message lost on the
	// way): the book is dropped until the next full book.
	Gaps int64 `json:"gaps"`
	// Restarts: consumers created again after a failure.
	Restarts int64 `json:"restarts"`
	// Reordered: trades and book diffs stored in the stream before a
	// message they follow, held and applied in order once it arrived.
	Reordered int64 `json:"reordered"`
	// GapSkipped: what the reorder buffers gave up waiting for (MaxHeld
	// or HoldTime reached): each missing trade id counts one, each book
	// diff gap one (the book then waits for the next full book, also
	// counted in Gaps).
	GapSkipped int64 `json:"gap_skipped"`
}

// Source is the query tier's input: it reads each symbol's trades,
// book.snapshot and book.delta subjects from the ORDERFLOW stream, in
// stream order, with one JetStream ordered consumer per symbol, and drives
// a service through its Sink (service.Config.Source). Started, it replays
// what the stream retains (SourceConfig.ReplayFrom), so a restarted query
// instance rebuilds its metrics and books, then follows live. The ordered
// consumer recreates itself after a lost message or a reconnection from
// the last stream sequence it delivered, so nothing is skipped or applied
// twice; a trade delivered twice anyway is refused by id and counted.
type Source struct {
	cfg   SourceConfig
	js    jetstream.JetStream
	log   *slog.Logger
	stats struct {
		messages, trades, deltas, snapshots, invalid, duplicates, unsynced, gaps, restarts, reordered, gapSkipped atomic.Int64
	}
}

var _ service.Source = (*Source)(nil)

// NewSource returns a Source reading the bus over cfg.Conn.
func NewSource(cfg SourceConfig) (*Source, error) {
	if cfg.Conn == nil {
		return nil, errors.New("bus: source: no connection")
	}
	if cfg.Name == "" {
		cfg.Name = "bus"
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = 10_000
	}
	if cfg.HoldTime <= 0 {
		cfg.HoldTime = 5 * time.Second
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("bus: source: %w", err)
	}
	return &Source{cfg: cfg, js: js, log: cfg.Logger}, nil
}

// Name describes the source.
func (s *Source) Name() string { return s.cfg.Name }

// Stats returns the counters.
func (s *Source) Stats() SourceStats {
	st := &s.stats
	return SourceStats{Messages: st.messages.Load(), Trades: st.trades.Load(), Deltas: st.deltas.Load(),
		Snapshots: st.snapshots.Load(), Invalid: st.invalid.Load(), Duplicates: st.duplicates.Load(),
		Unsynced: st.unsynced.Load(), Gaps: st.gaps.Load(), Restarts: st.restarts.Load(),
		Reordered: st.reordered.Load(), GapSkipped: st.gapSkipped.Load()}
}

// Run consumes the sink's symbols until ctx ends, starting and stopping a
// consumer as symbols are added and removed. It returns ctx's error once
// every consumer's goroutine has ended.
func (s *Source) Run(ctx context.Context, sink *service.Sink) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	type consumer struct {
		h    *service.SymbolSink
		stop context.CancelFunc
		done chan struct{}
	}
	running := map[string]*consumer{}
	defer func() {
		cancel()
		wg.Wait()
	}()
	follow := func() {
		// A symbol removed, or removed and added again, ends its consumer
		// (waited for, so nothing of it reaches a new addition).
		for sym, c := range running {
			if !c.h.Current() {
				c.stop()
				<-c.done
				delete(running, sym)
			}
		}
		for _, sym := range sink.Symbols() {
			if running[sym] != nil {
				continue
			}
			h, ok := sink.Symbol(sym)
			if !ok {
				continue
			}
			cctx, stop := context.WithCancel(ctx)
			c := &consumer{h: h, stop: stop, done: make(chan struct{})}
			running[sym] = c
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(c.done)
				s.consume(cctx, sink, h)
			}()
		}
	}
	follow()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		sink.SetConnected(s.cfg.Conn.IsConnected())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sink.SymbolsChanged():
			follow()
		case <-tick.C:
		}
	}
}

// consume reads one symbol until ctx ends, creating its consumer again
// (from the last stream sequence applied) when it fails.
func (s *Source) consume(ctx context.Context, sink *service.Sink, h *service.SymbolSink) {
	sym := h.Name()
	var last uint64 // stream sequence of the last message handled
	// The handler (and what it holds) outlives a failed consumer: the
	// new one starts after the last message handled, held ones included.
	hd := newHandler(s, sink, h, sink.Market())
	for {
		err := s.consumeOnce(ctx, hd, &last)
		if ctx.Err() != nil {
			return
		}
		s.stats.restarts.Add(1)
		s.log.Warn("bus source: consumer failed; creating it again", "symbol", sym, "after_seq", last, "err", err, "wait", s.cfg.RetryWait)
		t := time.NewTimer(s.cfg.RetryWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *Source) consumeOnce(ctx context.Context, h *handler, last *uint64) error {
	k, sym := h.kind, h.sym
	cc := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{Subject(k, sym, TopicTrades), Subject(k, sym, TopicBookDelta), Subject(k, sym, TopicBookSnapshot)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	switch {
	case *last > 0:
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *last+1
	case s.cfg.ReplayFrom > 0:
		from := time.Now().Add(-s.cfg.ReplayFrom)
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	cons, err := s.js.OrderedConsumer(ctx, StreamName, cc)
	if err != nil {
		return fmt.Errorf("bus: source %s: consumer: %w", sym, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("bus: source %s: messages: %w", sym, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("bus: source %s: next: %w", sym, err)
		}
		h.handle(msg.Subject(), msg.Data())
		if md, err := msg.Metadata(); err == nil {
			*last = md.Sequence.Stream
		}
	}
}

// handler decodes one symbol's messages into reused values, and holds
// the trades and book diffs that arrive before what they follow.
type handler struct {
	s     *Source
	sink  *service.SymbolSink
	book  func(string) (bool, int64) // the sink's book state (Sink.Book)
	sym   string
	kind  market.Kind
	trade Trade
	delta BookDelta
	snap  BookSnapshot
	t     market.Trade
	u     market.DepthUpdate
	ds    market.DepthSnapshot

	// heldTrades: trades after a missing id, by id; heldTradesSince:
	// event time (ms) of the first one held.
	heldTrades      map[int64]market.Trade
	heldTradesSince int64
	// heldDeltas: book diffs that do not follow the book yet (copies);
	// heldDeltasSince: event time (ms) of the first one held.
	heldDeltas      []market.DepthUpdate
	heldDeltasSince int64
}

func newHandler(s *Source, sink *service.Sink, ss *service.SymbolSink, k market.Kind) *handler {
	return &handler{s: s, sink: ss, book: sink.Book, sym: ss.Name(), kind: k}
}

// handle applies one message; what cannot be applied is counted and
// logged.
func (h *handler) handle(subject string, data []byte) {
	st := &h.s.stats
	st.messages.Add(1)
	_, _, topic, err := ParseSubject(subject)
	if err == nil {
		err = h.apply(topic, data)
	}
	if err != nil {
		st.invalid.Add(1)
		h.s.log.Warn("bus source: message not applied", "subject", subject, "err", err)
	}
}

func (h *handler) apply(topic Topic, data []byte) error {
	st := &h.s.stats
	switch topic {
	case TopicTrades:
		m := &h.trade
		*m = Trade{}
		if err := DecodeTrade(data, m); err != nil {
			return err
		}
		if err := h.check(&m.Header); err != nil {
			return err
		}
		st.trades.Add(1)
		h.t = market.Trade{Symbol: m.Symbol, ID: m.ID, FirstID: m.FirstID, LastID: m.LastID, Price: m.Price, Qty: m.Qty,
			Time: m.TradeTime, EventTime: m.Time, BuyerMaker: m.Side == "sell",
			// Raw trades (the trade channel) carry their own id as first
			// and last; aggregates carry trade ids far above their own.
			Aggregated: m.FirstID != m.ID || m.LastID != m.ID}
		err := h.onTrade(&h.t)
		h.expireHeld(m.Time) // after: this trade may have been the one waited for
		return err
	case TopicBookDelta:
		m := &h.delta
		*m = BookDelta{Bids: m.Bids[:0], Asks: m.Asks[:0]}
		if err := DecodeBookDelta(data, m); err != nil {
			return err
		}
		if err := h.check(&m.Header); err != nil {
			return err
		}
		st.deltas.Add(1)
		h.u = market.DepthUpdate{Symbol: m.Symbol, EventTime: m.Time, TransactTime: m.TransactionTime, FirstID: m.FirstUpdateID, FinalID: m.LastUpdateID,
			Bids: marketLevels(h.u.Bids[:0], m.Bids), Asks: marketLevels(h.u.Asks[:0], m.Asks)}
		if m.PrevUpdateID != nil {
			h.u.PrevFinalID, h.u.HasPrev = *m.PrevUpdateID, true
		}
		err := h.onDelta(&h.u)
		h.expireHeld(m.Time)
		return err
	case TopicBookSnapshot:
		m := &h.snap
		*m = BookSnapshot{Bids: m.Bids[:0], Asks: m.Asks[:0]}
		if err := DecodeBookSnapshot(data, m); err != nil {
			return err
		}
		if err := h.check(&m.Header); err != nil {
			return err
		}
		st.snapshots.Add(1)
		h.ds = market.DepthSnapshot{Symbol: m.Symbol, LastUpdateID: m.LastUpdateID,
			Bids: marketLevels(h.ds.Bids[:0], m.Bids), Asks: marketLevels(h.ds.Asks[:0], m.Asks)}
		_, err := h.sink.LoadBook(&h.ds, m.KnownBidFloor, m.KnownAskCeiling, m.Reason == ReasonPeriodic)
		// Held diffs may follow the new book.
		h.drainDeltas()
		if m.Time > 0 {
			h.expireHeld(m.Time)
		}
		return err
	}
	return fmt.Errorf("bus: source: topic %s not consumed", topic)
}

// onTrade applies a trade in id order: aggregate (and raw) trade ids are
// consecutive per symbol, so a trade after a missing id is held until the
// missing ones arrive or the bounds are reached.
func (h *handler) onTrade(t *market.Trade) error {
	st := &h.s.stats
	last := h.sink.LastTrade()
	switch {
	case t.ID <= last:
		st.duplicates.Add(1)
		return nil
	case last == 0 || t.ID == last+1:
		// The first trade of this addition of the symbol starts the
		// sequence (a replay bounded by ReplayFrom starts anywhere).
		err := h.sink.Trade(t)
		h.drainTrades(h.sink.LastTrade())
		return err
	}
	if _, ok := h.heldTrades[t.ID]; ok {
		st.duplicates.Add(1)
		return nil
	}
	if h.heldTrades == nil {
		h.heldTrades = map[int64]market.Trade{}
	}
	if len(h.heldTrades) == 0 {
		h.heldTradesSince = t.EventTime
	}
	h.heldTrades[t.ID] = *t
	if len(h.heldTrades) > h.s.cfg.MaxHeld || t.EventTime-h.heldTradesSince > h.s.cfg.HoldTime.Milliseconds() {
		h.releaseTrades(last)
	}
	return nil
}

// drainTrades applies the held trades that follow last.
func (h *handler) drainTrades(last int64) {
	for len(h.heldTrades) > 0 {
		t, ok := h.heldTrades[last+1]
		if !ok {
			return
		}
		delete(h.heldTrades, last+1)
		h.s.stats.reordered.Add(1)
		h.applyHeldTrade(&t)
		last = t.ID
	}
}

// releaseTrades gives up waiting: every held trade is applied in id
// order, the missing ids counted.
func (h *handler) releaseTrades(last int64) {
	ids := make([]int64, 0, len(h.heldTrades))
	for id := range h.heldTrades {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h.s.log.Warn("bus source: trade ids missing: held trades applied after the gap", "symbol", h.sym,
		"last", last, "next", ids[0], "missing", ids[0]-last-1, "held", len(ids))
	for _, id := range ids {
		t := h.heldTrades[id]
		delete(h.heldTrades, id)
		if id > last+1 {
			h.s.stats.gapSkipped.Add(id - last - 1)
		}
		h.applyHeldTrade(&t)
		last = id
	}
}

func (h *handler) applyHeldTrade(t *market.Trade) {
	if err := h.sink.Trade(t); err != nil {
		h.s.stats.invalid.Add(1)
		h.s.log.Warn("bus source: held trade not applied", "symbol", h.sym, "id", t.ID, "err", err)
	}
}

// follows reports whether diff u continues a book at update id id: it
// covers id+1 (spot: U <= id+1 <= u; USD-M's first diff after a full book
// also has U <= id <= u), or its pu is id (USD-M).
func follows(u *market.DepthUpdate, id int64) bool {
	return (u.FirstID <= id+1 && u.FinalID > id) || (u.HasPrev && u.PrevFinalID == id)
}

// onDelta applies a book diff in update-id order: with the book synced, a
// diff that starts beyond the book's next id is held until the diffs
// before it arrive, or the bounds are reached (then the book takes the
// usual gap path: dropped until the next full book, counted).
func (h *handler) onDelta(u *market.DepthUpdate) error {
	synced, id := h.book(h.sym)
	if !synced || follows(u, id) || u.FinalID <= id {
		err := h.applyDelta(u)
		h.drainDeltas()
		return err
	}
	for i := range h.heldDeltas {
		if h.heldDeltas[i].FinalID == u.FinalID {
			h.s.stats.duplicates.Add(1)
			return nil
		}
	}
	if len(h.heldDeltas) == 0 {
		h.heldDeltasSince = u.EventTime
	}
	h.heldDeltas = append(h.heldDeltas, market.DepthUpdate{Symbol: u.Symbol, EventTime: u.EventTime,
		FirstID: u.FirstID, FinalID: u.FinalID, PrevFinalID: u.PrevFinalID, HasPrev: u.HasPrev,
		Bids: slices.Clone(u.Bids), Asks: slices.Clone(u.Asks)})
	if len(h.heldDeltas) > h.s.cfg.MaxHeld || u.EventTime-h.heldDeltasSince > h.s.cfg.HoldTime.Milliseconds() {
		h.releaseDeltas()
	}
	return nil
}

// releaseDeltas gives up waiting: the held diffs are applied in update-id
// order (the first that does not follow the book takes the gap path).
func (h *handler) releaseDeltas() {
	_, id := h.book(h.sym)
	h.s.stats.gapSkipped.Add(1)
	h.s.log.Warn("bus source: book diffs missing: held diffs applied after the gap", "symbol", h.sym,
		"book_update_id", id, "held", len(h.heldDeltas))
	held := h.heldDeltas
	h.heldDeltas = nil
	slices.SortFunc(held, func(a, b market.DepthUpdate) int { return cmp.Compare(a.FinalID, b.FinalID) })
	for i := range held {
		h.applyHeldDelta(&held[i])
	}
}

// expireHeld gives up the waits that have lasted more than HoldTime by
// the exchange time of any message of the symbol (t, ms): a held trade of
// a symbol that trades no more, or a held diff, is not kept until a
// message of its own kind comes.
func (h *handler) expireHeld(t int64) {
	hold := h.s.cfg.HoldTime.Milliseconds()
	if len(h.heldTrades) > 0 && t-h.heldTradesSince > hold {
		h.releaseTrades(h.sink.LastTrade())
	}
	if len(h.heldDeltas) > 0 && t-h.heldDeltasSince > hold {
		h.releaseDeltas()
	}
}

// drainDeltas applies the held diffs that follow the book, and drops
// those it is already past.
func (h *handler) drainDeltas() {
	for len(h.heldDeltas) > 0 {
		synced, id := h.book(h.sym)
		if !synced {
			return
		}
		i := slices.IndexFunc(h.heldDeltas, func(u market.DepthUpdate) bool { return follows(&u, id) || u.FinalID <= id })
		if i < 0 {
			return
		}
		u := h.heldDeltas[i]
		h.heldDeltas = slices.Delete(h.heldDeltas, i, i+1)
		if u.FinalID > id {
			h.s.stats.reordered.Add(1)
		}
		h.applyHeldDelta(&u)
	}
}

func (h *handler) applyHeldDelta(u *market.DepthUpdate) {
	if err := h.applyDelta(u); err != nil {
		h.s.stats.invalid.Add(1)
		h.s.log.Warn("bus source: held book diff not applied", "symbol", h.sym, "u", u.FinalID, "err", err)
	}
}

// applyDelta hands a diff to the sink, counting a diff with no book and a
// gap.
func (h *handler) applyDelta(u *market.DepthUpdate) error {
	st := &h.s.stats
	r, err := h.sink.Delta(u)
	switch {
	case errors.Is(err, engine.ErrNotSynced):
		st.unsynced.Add(1)
		return nil
	case r.Action == book.NeedSnapshot:
		st.gaps.Add(1)
	}
	return err
}

// check refuses a message of another market or symbol than its subject's.
func (h *handler) check(m *Header) error {
	if m.Market != h.kind.String() || m.Symbol != h.sym {
		return fmt.Errorf("%w: %s %s on the subjects of %s %s", ErrSchema, m.Market, m.Symbol, h.kind, h.sym)
	}
	return nil
}

func marketLevels(dst []market.Level, ls []Level) []market.Level {
	for _, l := range ls {
		dst = append(dst, market.Level{Price: l[0], Qty: l[1]})
	}
	return dst
}
