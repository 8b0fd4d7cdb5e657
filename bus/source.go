package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
		messages, trades, deltas, snapshots, invalid, duplicates, unsynced, gaps, restarts atomic.Int64
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
		Unsynced: st.unsynced.Load(), Gaps: st.gaps.Load(), Restarts: st.restarts.Load()}
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
	for {
		err := s.consumeOnce(ctx, sink, h, &last)
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

func (s *Source) consumeOnce(ctx context.Context, sink *service.Sink, ss *service.SymbolSink, last *uint64) error {
	k, sym := sink.Market(), ss.Name()
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
	h := handler{s: s, sink: ss, sym: sym, kind: k}
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

// handler decodes one symbol's messages into reused values.
type handler struct {
	s     *Source
	sink  *service.SymbolSink
	sym   string
	kind  market.Kind
	trade Trade
	delta BookDelta
	snap  BookSnapshot
	t     market.Trade
	u     market.DepthUpdate
	ds    market.DepthSnapshot
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
		if m.ID <= h.sink.LastTrade() {
			st.duplicates.Add(1)
			return nil
		}
		h.t = market.Trade{Symbol: m.Symbol, ID: m.ID, FirstID: m.FirstID, LastID: m.LastID, Price: m.Price, Qty: m.Qty,
			Time: m.TradeTime, EventTime: m.Time, BuyerMaker: m.Side == "sell",
			// Raw trades (the trade channel) carry their own id as first
			// and last; aggregates carry trade ids far above their own.
			Aggregated: m.FirstID != m.ID || m.LastID != m.ID}
		return h.sink.Trade(&h.t)
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
		h.u = market.DepthUpdate{Symbol: m.Symbol, EventTime: m.Time, FirstID: m.FirstUpdateID, FinalID: m.LastUpdateID,
			Bids: marketLevels(h.u.Bids[:0], m.Bids), Asks: marketLevels(h.u.Asks[:0], m.Asks)}
		if m.PrevUpdateID != nil {
			h.u.PrevFinalID, h.u.HasPrev = *m.PrevUpdateID, true
		}
		r, err := h.sink.Delta(&h.u)
		switch {
		case errors.Is(err, engine.ErrNotSynced):
			st.unsynced.Add(1)
			return nil
		case r.Action == book.NeedSnapshot:
			st.gaps.Add(1)
		}
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
		return err
	}
	return fmt.Errorf("bus: source: topic %s not consumed", topic)
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
