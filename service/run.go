package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/dirlock"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/feed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/rest"
)

// task is one goroutine a run owns.
type task struct {
	name string
	done chan struct{}
	err  error
}

// streamConn is one feed connection of a run. Its fields other than conn
// change only under the service's lifecycle lock.
type streamConn struct {
	name   string
	path   string
	conn   *feed.Conn
	n      int // streams assigned, including ones being subscribed
	cancel context.CancelFunc
	// dec and msg decode the connection's frames on its reader goroutine,
	// outside the data lock (feed never overlaps a Conn's handler calls).
	dec *binance.Decoder
	msg binance.Message
}

// connStreams is a live SUBSCRIBE or UNSUBSCRIBE to send on one connection.
type connStreams struct {
	c       *streamConn
	streams []string
}

// run is everything one Start creates and one Stop ends.
type run struct {
	s       *Service
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	rc      *rest.Client
	tr      *http.Transport // owned by the run when Config.HTTPClient is nil
	hc      *http.Client
	lock    *dirlock.Lock
	started time.Time
	cap     *capturer // nil without Config.Capture.Dir

	// Changed only under the lifecycle lock.
	tasks    []*task
	where    map[string]*streamConn // stream name -> its connection
	nextConn int

	connMu sync.Mutex // guards conns for Status readers
	conns  []*streamConn

	mu      sync.Mutex // the data lock: guards everything below
	eng     *engine.Engine
	recv    time.Time             // receive time of the frame being applied (zero outside onFrame)
	symbols []string              // active symbols, in the order added
	seqs    map[string]*sequencer // one per active symbol: the active set
	logged  map[string]int64
	bf      BackfillStats
	// snapshot and backfill requests for the workers
	snapWant map[string]bool
	fills    []fillRequest
	snapSig  chan struct{}
	fillSig  chan struct{}
	// sink is the Source's handle when Config.Source is set (source.go).
	sink *Sink
}

// sequencer orders one symbol's aggregate trades by id across the stream
// and REST: duplicates are skipped, gaps are filled from REST before the
// trades after them are applied.
type sequencer struct {
	symbol  string
	last    int64 // last aggregate id applied (0: none yet)
	filling bool  // a REST fill is in progress
	recheck bool  // after the fill, catch up to the latest id (a reconnect happened during it)
	// anchorless: the warm start found no trade at all, so the first
	// stream trade cannot show a gap by itself; everything before it
	// happened after the warm start and is fetched.
	anchorless bool
	// rewarm: the stream's subscription was confirmed while the warm start
	// was in flight; if it finds nothing, ask again, since a trade may have
	// come between its answer and the subscription.
	rewarm  bool
	pending []market.Trade // stream trades held while filling
}

// openEnd as a fill's upper bound means "up to the latest trade": the
// catch-up after a reconnect, when no later stream trade shows how far the
// gap goes (trades published while disconnected at the end of a burst).
const openEnd = math.MaxInt64

type fillRequest struct {
	symbol   string
	from, to int64 // inclusive aggregate id range; from < 0: the latest -from trades
	// anchor: the range only may hold trades (after an empty warm start),
	// so an empty answer is complete, not REST trailing the stream.
	anchor bool
}

func newRun(s *Service, syms []string) (*run, error) {
	r := &run{s: s, log: s.log, started: time.Now(), where: map[string]*streamConn{},
		seqs: map[string]*sequencer{}, logged: map[string]int64{}, snapWant: map[string]bool{},
		snapSig: make(chan struct{}, 1), fillSig: make(chan struct{}, 1)}
	if s.cfg.DataDir != "" {
		l, err := dirlock.Acquire(s.cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
		r.lock = l
	}
	r.hc = s.cfg.HTTPClient
	if r.hc == nil {
		// A transport of the run's own: its idle REST connections are
		// closed at Stop, so nothing of the run outlives it.
		// Its connections read without the runtime's system-call
		// bookkeeping (feed.Dialer), busy polling if configured.
		r.tr = feed.Dialer{BusyPoll: s.cfg.BusyPoll}.Transport()
		r.hc = &http.Client{Transport: r.tr}
	}
	rc, err := s.restClient(r.hc)
	if err != nil {
		r.releaseLock()
		return nil, fmt.Errorf("service: %w", err)
	}
	r.rc = rc
	if s.cfg.Source != nil {
		r.sink = newSink(r)
	}
	r.eng = engine.New(engine.Config{
		Market: s.cfg.Market, MarketKnown: true, Flow: s.cfg.Flow, DepthFlow: s.cfg.DepthFlow, Logger: s.log,
		DepthFlowSymbol: s.cfg.depthFlowSymbol,
		BookHistory:     book.HistoryOptions{Depth: s.cfg.BookHistoryDepth},
		BarLateness:     max(s.cfg.BarLateness, 0),
		OnNeedSnapshot: func(sym *engine.Symbol, cause book.Cause) {
			if r.sink == nil { // a source's next full book resyncs
				r.wantSnapshot(sym.Name)
			}
		},
		OnTrade: r.onTrade,
		OnBarClose: func(sym *engine.Symbol, iv time.Duration, b *flow.Bar) {
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(Event{Symbol: sym.Name, Bar: b, Interval: iv})
			}
		},
		OnBarRevised: func(sym *engine.Symbol, iv time.Duration, b *flow.Bar) {
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(Event{Symbol: sym.Name, Bar: b, Interval: iv, Revised: true})
			}
		},
		OnDepth: func(sym *engine.Symbol, u *market.DepthUpdate) {
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(Event{Symbol: sym.Name, Depth: u, Book: sym.Book(), DepthTime: sym.DepthTime})
			}
		},
		OnSynced: func(sym *engine.Symbol) {
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(Event{Symbol: sym.Name, Synced: true, Book: sym.Book(), DepthTime: sym.DepthTime})
			}
		},
		OnLarge: func(sym *engine.Symbol, l flow.LargeTrade) {
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(Event{Symbol: sym.Name, Large: &l})
			}
		},
		OnSignal: func(sym *engine.Symbol, sig depthflow.Signal) {
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(Event{Symbol: sym.Name, Signal: &sig})
			}
		},
	})
	for _, sym := range syms {
		r.addState(sym, 0)
	}
	return r, nil
}

func (r *run) releaseLock() {
	if r.lock != nil {
		if err := r.lock.Release(); err != nil {
			r.log.Warn("release data directory lock", "err", err)
		}
		r.lock = nil
	}
}

// addState creates a symbol's engine state and sequencer and, for the
// aggTrade channel, queues its warm-start backfill: the symbol's stream
// trades are held until the latest trades from REST are in, so metrics are
// available at once and the seam has no gap and no duplicate. Called before
// the run starts or with r.mu held. after > 0 replaces the warm start by
// a fill of every id after it (AddSymbolFrom): the stream's trades are
// held until the fill has caught up to the latest.
func (r *run) addState(sym string, after int64) {
	cfg := &r.s.cfg
	r.eng.AddSymbol(sym, cfg.Market, true)
	sq := &sequencer{symbol: sym}
	r.seqs[sym] = sq
	r.symbols = append(r.symbols, sym)
	if r.sink != nil {
		r.sink.symbolsChanged()
		return
	}
	if after > 0 && cfg.TradeChannel == binance.ChannelAggTrade {
		sq.last = after
		sq.filling = true
		r.fills = append(r.fills, fillRequest{symbol: sym, from: after + 1, to: openEnd})
		signal(r.fillSig)
		return
	}
	if cfg.Backfill > 0 && cfg.TradeChannel == binance.ChannelAggTrade {
		sq.filling = true
		r.fills = append(r.fills, fillRequest{symbol: sym, from: -int64(cfg.Backfill)})
		signal(r.fillSig)
	}
}

// streamsOf returns a symbol's streams.
func (r *run) streamsOf(sym string) []string {
	cfg := &r.s.cfg
	st := []string{binance.StreamName(sym, cfg.TradeChannel), binance.StreamName(sym, cfg.DepthChannel)}
	if cfg.BookTicker {
		st = append(st, binance.StreamName(sym, binance.ChannelBookTicker))
	}
	return st
}

// assign places streams on connections of their path with room, creating
// connections (not yet running) as needed. It returns the streams to
// subscribe live on already existing connections. Lifecycle lock held.
func (r *run) assign(streams []string) (live []connStreams, fresh []*streamConn, err error) {
	cfg := &r.s.cfg
	group := map[*streamConn][]string{}
	var order []*streamConn
	for _, st := range streams {
		if r.where[st] != nil {
			continue
		}
		path := binance.StreamPath(cfg.Market, channelOf(st))
		var sc *streamConn
		for _, c := range r.connList() {
			if c.path == path && c.n < cfg.MaxStreamsPerConn {
				sc = c
				break
			}
		}
		if sc == nil {
			for _, c := range fresh {
				if c.path == path && c.n < cfg.MaxStreamsPerConn {
					sc = c
					break
				}
			}
		}
		if sc == nil {
			r.nextConn++
			sc = &streamConn{path: path, name: fmt.Sprintf("%s stream connection %d%s", cfg.Market, r.nextConn, path)}
			fresh = append(fresh, sc)
		}
		sc.n++
		r.where[st] = sc
		if _, ok := group[sc]; !ok {
			order = append(order, sc)
		}
		group[sc] = append(group[sc], st)
	}
	for _, sc := range order {
		if slices.Contains(fresh, sc) {
			continue
		}
		live = append(live, connStreams{c: sc, streams: group[sc]})
	}
	// A new connection is dialed with its streams.
	for _, sc := range fresh {
		if sc.conn, err = r.newConn(sc, group[sc]); err != nil {
			return nil, nil, err
		}
	}
	return live, fresh, nil
}

func channelOf(stream string) string {
	if _, ch, ok := strings.Cut(stream, "@"); ok {
		return ch
	}
	return stream
}

func (r *run) newConn(sc *streamConn, streams []string) (*feed.Conn, error) {
	cfg := &r.s.cfg
	sc.dec = binance.NewDecoder()
	c, err := feed.NewConn(feed.Options{BaseURL: cfg.WSURL, Market: cfg.Market, Path: sc.path, Streams: streams,
		Handler: func(frame []byte, recv time.Time) { r.onFrame(sc, frame, recv) }, Logger: r.log, HTTPClient: r.hc, DialTimeout: cfg.DialTimeout,
		StaleTimeout: cfg.StaleTimeout, ReplyTimeout: cfg.ReplyTimeout, BackoffMin: cfg.BackoffMin,
		BackoffMax: cfg.BackoffMax, DialLimiter: cfg.DialLimiter,
		OnStatus: func(old, new feed.State) {
			if new == feed.StateConnected && old == feed.StateReconnecting {
				r.onReconnect(sc)
			}
			r.s.changes.notify()
		}})
	if err != nil {
		return nil, fmt.Errorf("service: %s: %w", sc.name, err)
	}
	return c, nil
}

func (r *run) connList() []*streamConn {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	return slices.Clone(r.conns)
}

// launch runs a new connection as a task of the run. Lifecycle lock held.
func (r *run) launch(sc *streamConn) {
	ctx, cancel := context.WithCancel(r.ctx)
	sc.cancel = cancel
	r.connMu.Lock()
	r.conns = append(r.conns, sc)
	r.connMu.Unlock()
	r.goTask(sc.name, ctx, sc.conn.Run)
}

// start opens the connections and launches every task.
func (r *run) start(ctx context.Context) error {
	// The run's context is not derived from ctx: ctx bounds Start, while
	// the run lives until Stop.
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if r.sink != nil {
		src := r.s.cfg.Source
		r.goTask("source "+src.Name(), r.ctx, func(ctx context.Context) error { return src.Run(ctx, r.sink) })
		return nil
	}
	if err := r.startCapture(); err != nil {
		r.cancel()
		r.releaseLock()
		return err
	}
	var streams []string
	for _, sym := range r.symbols {
		streams = append(streams, r.streamsOf(sym)...)
	}
	_, fresh, err := r.assign(streams)
	if err != nil {
		r.cancel()
		r.stopCapture(time.Now().Add(r.s.cfg.StopTimeout))
		r.releaseLock()
		return err
	}
	for _, sc := range fresh {
		r.launch(sc)
	}
	r.goTask("depth snapshot worker", r.ctx, r.snapshotWorker)
	r.goTask("trade backfill worker", r.ctx, r.backfillWorker)
	if r.s.cfg.AuditInterval > 0 {
		r.goTask("book self-audit", r.ctx, r.auditWorker)
	}
	return nil
}

// addSymbol adds a symbol to the running run and returns the live
// subscriptions to send. Lifecycle lock held.
func (r *run) addSymbol(sym string, after int64) ([]connStreams, error) {
	r.mu.Lock()
	r.addState(sym, after)
	r.mu.Unlock()
	if r.sink != nil {
		return nil, nil
	}
	live, fresh, err := r.assign(r.streamsOf(sym))
	if err != nil {
		return nil, err
	}
	for _, sc := range fresh {
		r.launch(sc)
	}
	return live, nil
}

// removeSymbol drops a symbol from the run and returns the live
// unsubscriptions to send; connections left empty are cancelled (Stop
// still waits for them). Lifecycle lock held.
func (r *run) removeSymbol(sym string) []connStreams {
	r.mu.Lock()
	if r.seqs[sym] != nil {
		delete(r.seqs, sym)
		delete(r.logged, sym)
		delete(r.snapWant, sym)
		r.fills = slices.DeleteFunc(r.fills, func(f fillRequest) bool { return f.symbol == sym })
		r.symbols = slices.DeleteFunc(r.symbols, func(s string) bool { return s == sym })
		r.eng.RemoveSymbol(sym)
		if r.sink != nil {
			r.sink.symbolsChanged()
		}
		r.captureForget(sym)
	}
	r.mu.Unlock()
	group := map[*streamConn][]string{}
	var order []*streamConn
	for _, st := range r.streamsOf(sym) {
		sc := r.where[st]
		if sc == nil {
			continue
		}
		delete(r.where, st)
		sc.n--
		if _, ok := group[sc]; !ok {
			order = append(order, sc)
		}
		group[sc] = append(group[sc], st)
	}
	var live []connStreams
	for _, sc := range order {
		if sc.n > 0 {
			live = append(live, connStreams{c: sc, streams: group[sc]})
			continue
		}
		sc.cancel()
		r.connMu.Lock()
		r.conns = slices.DeleteFunc(r.conns, func(c *streamConn) bool { return c == sc })
		r.connMu.Unlock()
	}
	return live
}

// control sends live SUBSCRIBE (sub) or UNSUBSCRIBE requests. It waits
// for ctx or the run's end, whichever is first, so Stop is never held up.
func (r *run) control(ctx context.Context, reqs []connStreams, sub bool) error {
	if len(reqs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel)
	defer stop()
	var errs []error
	for _, q := range reqs {
		var err error
		if sub {
			err = q.c.conn.Subscribe(ctx, q.streams...)
		} else {
			err = q.c.conn.Unsubscribe(ctx, q.streams...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", q.c.name, err))
		}
	}
	return errors.Join(errs...)
}

// goTask starts f as a task of the run. Lifecycle lock held (or start).
func (r *run) goTask(name string, ctx context.Context, f func(context.Context) error) {
	// Forget connections that already ended (removed symbols), so a long
	// run of AddSymbol/RemoveSymbol does not grow the list.
	r.tasks = slices.DeleteFunc(r.tasks, func(t *task) bool {
		select {
		case <-t.done:
			return t.err == nil
		default:
			return false
		}
	})
	t := &task{name: name, done: make(chan struct{})}
	r.tasks = append(r.tasks, t)
	go func() {
		defer close(t.done)
		defer func() {
			if p := recover(); p != nil {
				t.err = fmt.Errorf("panic: %v", p)
				r.log.Error("task panicked", "task", name, "panic", p)
			}
		}()
		err := f(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.err = err
			r.log.Error("task ended with error", "task", name, "err", err)
		}
	}()
}

// stop cancels the run and waits for each task within the budget.
func (r *run) stop(ctx context.Context, budget time.Duration) error {
	defer r.releaseLock()
	deadline := time.Now().Add(budget)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	r.cancel()
	n := len(r.tasks)
	var stuck []string
	expired := false
	for i, t := range r.tasks {
		r.log.Info(fmt.Sprintf("Cancelling task %d/%d...", i+1, n), "task", t.name)
		if !expired {
			select {
			case <-t.done:
			case <-timer.C:
				expired = true
			case <-ctx.Done():
				expired = true
			}
		}
		select {
		case <-t.done:
			r.log.Info(fmt.Sprintf("Task %d cancelled successfully", i+1), "task", t.name)
		default:
			r.log.Error(fmt.Sprintf("Task %d did not end within the stop budget", i+1), "task", t.name, "budget", budget)
			stuck = append(stuck, t.name)
		}
	}
	if !r.stopCapture(deadline) {
		stuck = append(stuck, "capture writer")
	}
	if r.tr != nil {
		r.tr.CloseIdleConnections()
	}
	if len(stuck) > 0 {
		return fmt.Errorf("service: stop: %d task(s) did not end in time: %s", len(stuck), strings.Join(stuck, "; "))
	}
	return nil
}

// symbolOf returns the symbol a decoded message is about ("" for replies,
// errors and notices).
func symbolOf(m *binance.Message) string {
	switch m.Kind {
	case binance.KindAggTrade, binance.KindTrade:
		return m.Trade.Symbol
	case binance.KindDepthUpdate:
		return m.Depth.Symbol
	case binance.KindBookTicker:
		return m.Ticker.Symbol
	}
	return ""
}

// onFrame is every connection's handler: decode on the connection's
// goroutine, then apply under the data lock, so connections decode in
// parallel and the lock is held only for the book and metrics. The frame
// is not retained.
func (r *run) onFrame(sc *streamConn, frame []byte, recv time.Time) {
	m := &sc.msg
	derr := sc.dec.Decode(frame, m)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.eng.CountDecoded(derr != nil)
	r.captureFrame(frame, recv, m, derr == nil)
	if derr != nil {
		r.log.Warn("frame rejected", "err", fmt.Errorf("%w: %w", engine.ErrDecode, derr), "frame", snippet(frame))
		return
	}
	if sym := symbolOf(m); sym != "" && r.seqs[sym] == nil {
		// A symbol just removed (frames in flight) or never subscribed:
		// count it; the engine would otherwise create state for it.
		r.eng.CountUnknownSymbol()
		return
	}
	r.recv = recv
	defer func() { r.recv = time.Time{} }()
	if m.Kind == binance.KindAggTrade {
		r.sequence(&m.Trade)
		return
	}
	synced := r.syncedCount(m)
	if err := r.eng.HandleMessage(m, r.s.cfg.Market, true); err != nil {
		r.log.Warn("message rejected", "err", err)
	}
	if synced >= 0 && synced != r.syncedCount(m) {
		r.s.changes.notify()
	}
}

// syncedCount returns 1 or 0 for whether a depth message's book is synced,
// -1 for other messages: a change is announced for /readyz.
func (r *run) syncedCount(m *binance.Message) int {
	if m.Kind != binance.KindDepthUpdate {
		return -1
	}
	if sym := r.eng.Symbol(m.Depth.Symbol); sym != nil && sym.Synced() {
		return 1
	}
	return 0
}

func snippet(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// sequence applies a stream aggTrade in id order. Called with r.mu held.
func (r *run) sequence(t *market.Trade) {
	sq := r.seqs[t.Symbol]
	if t.ID <= sq.last {
		r.bf.Duplicates++
		return
	}
	if sq.filling {
		if len(sq.pending) >= r.s.cfg.MaxPending {
			// The fill is taking too long for the buffer: give up on the
			// missing ids (counted) rather than grow without bound.
			r.log.Error("trade backfill too slow: applying held trades with a gap", "symbol", t.Symbol, "held", len(sq.pending))
			r.flushPending(sq, true)
		} else {
			sq.pending = append(sq.pending, *t)
			return
		}
	}
	if sq.last == 0 && sq.anchorless {
		sq.anchorless = false
		r.startAnchorFill(sq, t)
		return
	}
	if sq.last != 0 && t.ID > sq.last+1 {
		r.log.Warn("trade id gap: filling from REST", "symbol", t.Symbol, "after", sq.last, "next", t.ID, "missing", t.ID-sq.last-1)
		sq.filling = true
		sq.pending = append(sq.pending, *t)
		r.fills = append(r.fills, fillRequest{symbol: t.Symbol, from: sq.last + 1, to: t.ID - 1})
		signal(r.fillSig)
		return
	}
	r.apply(sq, t)
}

// onReconnect runs when a connection is back after a loss. Trades
// published while it was down are fetched from REST up to the latest, even
// if no later stream trade arrives to reveal the gap. Books whose depth
// stream it carries start over from a fresh snapshot, as Binance's
// procedure asks for every new connection: a quiet symbol's next event may
// be far off, and until then its book would silently miss what was
// published during the outage.
func (r *run) onReconnect(sc *streamConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	resynced := 0
	for _, st := range sc.conn.Streams() {
		sym, ch, ok := binance.ParseStreamName(st)
		sq := r.seqs[sym]
		if !ok || sq == nil {
			continue
		}
		if ch == r.s.cfg.DepthChannel {
			if es := r.eng.Symbol(sym); es != nil && es.Sync != nil {
				es.Sync.Reset()
				r.captureReset(sym)
				r.wantSnapshot(sym)
				resynced++
			}
			continue
		}
		if ch != binance.ChannelAggTrade {
			continue
		}
		switch {
		case sq.filling:
			sq.recheck = true
		case sq.last == 0:
			// No trade yet: nothing to continue from, but one may have
			// come while the stream was away: look again.
			r.rewarmLocked(sq)
		default:
			sq.filling = true
			r.fills = append(r.fills, fillRequest{symbol: sym, from: sq.last + 1, to: openEnd})
			signal(r.fillSig)
		}
	}
	r.log.Info("Stream connection back: catching up trades and resyncing books", "conn", sc.name, "books", resynced)
}

func (r *run) apply(sq *sequencer, t *market.Trade) {
	r.captureApplied(t)
	if t.ID <= sq.last {
		r.bf.Duplicates++
		return
	}
	if sq.last != 0 && t.ID > sq.last+1 {
		r.bf.Missing += t.ID - sq.last - 1
	}
	sq.last = t.ID
	if err := r.eng.HandleTrade(t); err != nil {
		r.log.Warn("trade rejected", "err", err)
	}
}

// flushPending applies the held trades in order. A gap before a held
// trade starts a new fill for it (the rest stay held), unless giveUp, when
// the gap is counted as missing and everything is applied.
func (r *run) flushPending(sq *sequencer, giveUp bool) {
	sort.Slice(sq.pending, func(i, j int) bool { return sq.pending[i].ID < sq.pending[j].ID })
	for i := range sq.pending {
		t := &sq.pending[i]
		if !giveUp && sq.last != 0 && t.ID > sq.last+1 {
			n := copy(sq.pending, sq.pending[i:])
			sq.pending = sq.pending[:n]
			r.fills = append(r.fills, fillRequest{symbol: t.Symbol, from: sq.last + 1, to: sq.pending[0].ID - 1})
			signal(r.fillSig)
			return
		}
		r.apply(sq, t)
	}
	sq.pending = sq.pending[:0]
	sq.filling = false
	if sq.recheck && sq.last != 0 && !giveUp {
		sq.recheck = false
		sq.filling = true
		r.fills = append(r.fills, fillRequest{symbol: sq.symbol, from: sq.last + 1, to: openEnd})
		signal(r.fillSig)
	}
	sq.recheck = false
}

// onTrade is the engine's hook for accepted trades: log and fan out.
func (r *run) onTrade(sym *engine.Symbol, t *market.Trade) {
	n := r.logged[sym.Name] + 1
	r.logged[sym.Name] = n
	lvl := slog.LevelDebug
	if n <= int64(r.s.cfg.LogTrades) {
		lvl = slog.LevelInfo
	}
	if r.log.Enabled(r.ctx, lvl) {
		r.log.Log(r.ctx, lvl, FormatTradeLine(n, t), "symbol", t.Symbol, "id", t.ID, "time", t.Time)
	}
	if r.s.cfg.OnEvent != nil {
		r.s.cfg.OnEvent(Event{Symbol: sym.Name, Trade: t, Received: r.recv})
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// wantSnapshot asks the snapshot worker for a symbol's snapshot. Called
// with r.mu held (from the engine hook).
func (r *run) wantSnapshot(symbol string) {
	r.snapWant[symbol] = true
	signal(r.snapSig)
}

// snapshotWorker fetches depth snapshots as books ask for them, with
// snapshotWorkers loops, so a request's round trip does not hold up the
// next one; it returns once every loop has ended. The REST client's weight
// limiter and snapshot gate keep many resyncing symbols from becoming a
// thundering herd.
func (r *run) snapshotWorker(ctx context.Context) error {
	var wg sync.WaitGroup
	for range snapshotWorkers - 1 {
		wg.Go(func() {
			if err := r.snapshotLoop(ctx); err != nil && !errors.Is(err, context.Canceled) {
				r.log.Error("depth snapshot loop ended", "err", err)
			}
		})
	}
	err := r.snapshotLoop(ctx)
	wg.Wait()
	return err
}

func (r *run) snapshotLoop(ctx context.Context) error {
	var snap market.DepthSnapshot
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.snapSig:
		}
		for {
			r.mu.Lock()
			var sym string
			for s := range r.snapWant {
				if sym == "" || s < sym {
					sym = s
				}
			}
			if sym != "" {
				delete(r.snapWant, sym)
				if len(r.snapWant) > 0 {
					signal(r.snapSig) // another loop takes the next one
				}
			}
			r.mu.Unlock()
			if sym == "" {
				break
			}
			err := r.rc.DepthSnapshot(ctx, sym, r.s.cfg.SnapshotLimit, &snap)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				failures++
				r.log.Warn("depth snapshot failed; retrying", "symbol", sym, "err", err)
				r.mu.Lock()
				if r.seqs[sym] != nil {
					r.snapWant[sym] = true
				}
				r.mu.Unlock()
				if err := sleepCtx(ctx, min(time.Duration(failures)*250*time.Millisecond, 5*time.Second)); err != nil {
					return err
				}
				continue
			}
			failures = 0
			snap.Symbol = sym
			r.mu.Lock()
			if r.seqs[sym] != nil { // not removed meanwhile
				r.captureSnapshot(&snap)
				if err := r.eng.ApplySnapshot(&snap, r.s.cfg.Market, true); err != nil {
					r.log.Warn("snapshot rejected", "symbol", sym, "err", err)
				}
			}
			r.mu.Unlock()
			r.s.changes.notify()
		}
	}
}

// backfillWorker fetches aggregate trades by id from REST to warm up a
// symbol at start and to fill gaps after reconnects.
// auditWorker compares each synced book with a fresh snapshot every
// AuditInterval. The engine holds the snapshot until the stream brings the
// book to its update id, then compares.
func (r *run) auditWorker(ctx context.Context) error {
	t := time.NewTicker(r.s.cfg.AuditInterval)
	defer t.Stop()
	var snap market.DepthSnapshot
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		r.mu.Lock()
		var syms []string
		for _, s := range r.eng.Symbols() {
			if s.Synced() {
				syms = append(syms, s.Name)
			}
		}
		r.mu.Unlock()
		for _, sym := range syms {
			if err := r.rc.DepthSnapshot(ctx, sym, r.s.cfg.SnapshotLimit, &snap); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.log.Warn("self-audit snapshot failed", "symbol", sym, "err", err)
				continue
			}
			snap.Symbol = sym
			r.mu.Lock()
			r.eng.Audit(&snap, r.s.cfg.SnapshotLimit)
			r.mu.Unlock()
		}
	}
}

func (r *run) backfillWorker(ctx context.Context) error {
	var buf []market.Trade
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.fillSig:
		}
		for {
			r.mu.Lock()
			if len(r.fills) == 0 {
				r.mu.Unlock()
				break
			}
			req := r.fills[0]
			r.fills = r.fills[1:]
			r.mu.Unlock()
			if err := r.fill(ctx, req, &buf); err != nil {
				return err
			}
		}
	}
}

// fill fetches ids req.from..req.to (or, with from < 0, the latest
// -from trades: the warm start), then applies them and the held stream
// trades in order.
// rewarmLocked asks for the latest trades of a symbol that has none yet,
// once its stream is subscribed: a trade published between an empty warm
// start and the subscription would otherwise wait for the next trade to be
// noticed. Data lock held.
func (r *run) rewarmLocked(sq *sequencer) {
	if r.sink != nil || r.s.cfg.Backfill <= 0 || r.s.cfg.TradeChannel != binance.ChannelAggTrade || sq.last != 0 {
		return
	}
	if sq.filling {
		sq.rewarm = true
		return
	}
	sq.anchorless = false
	sq.filling = true
	r.fills = append(r.fills, fillRequest{symbol: sq.symbol, from: -int64(r.s.cfg.Backfill)})
	signal(r.fillSig)
}

// subscribed is called once a live AddSymbol's subscription is confirmed.
func (r *run) subscribed(sym string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sq := r.seqs[sym]; sq != nil {
		r.rewarmLocked(sq)
	}
}

// startAnchorFill holds t and fetches the trades before it that followed an
// empty warm start (at most Backfill of them). Data lock held.
func (r *run) startAnchorFill(sq *sequencer, t *market.Trade) {
	from := max(t.ID-int64(max(r.s.cfg.Backfill, 1)), 0)
	sq.filling = true
	sq.pending = append(sq.pending, *t)
	if from < t.ID {
		r.fills = append(r.fills, fillRequest{symbol: t.Symbol, from: from, to: t.ID - 1, anchor: true})
		signal(r.fillSig)
		return
	}
	r.flushPending(sq, false)
}

func (r *run) fill(ctx context.Context, req fillRequest, buf *[]market.Trade) error {
	got, ok, err := r.fetch(ctx, req, buf)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sq := r.seqs[req.symbol]
	if sq == nil {
		return nil // removed meanwhile
	}
	r.bf.Fetched += int64(len(got))
	r.captureTrades(req.symbol, got)
	for i := range got {
		r.apply(sq, &got[i])
	}
	if req.from < 0 && ok && len(got) == 0 && sq.last == 0 {
		// The warm start found no trade: a trade published before the
		// stream's first one is not behind any anchor. Fetch what precedes
		// the first held trade, or do so when the first one arrives.
		if sq.rewarm && len(sq.pending) == 0 {
			sq.rewarm = false
			r.fills = append(r.fills, fillRequest{symbol: req.symbol, from: req.from})
			signal(r.fillSig)
			return nil
		}
		if len(sq.pending) > 0 {
			slices.SortFunc(sq.pending, func(a, b market.Trade) int { return cmp.Compare(a.ID, b.ID) })
			first := sq.pending[0]
			sq.pending = sq.pending[1:]
			r.startAnchorFill(sq, &first)
		} else {
			sq.anchorless = true
			sq.filling = false
		}
		return nil
	}
	// A failed fill gives up on its range (counted as missing) so the
	// stream is not held forever.
	r.flushPending(sq, !ok)
	switch {
	case req.from < 0:
		r.log.Info("trade backfill done (warm start)", "symbol", req.symbol, "latest", -req.from, "fetched", len(got), "complete", ok)
	case req.to == openEnd:
		r.log.Info("trade backfill done (catch-up after reconnect)", "symbol", req.symbol, "from", req.from, "fetched", len(got), "complete", ok)
	default:
		r.log.Info("trade backfill done (gap)", "symbol", req.symbol, "from", req.from, "to", req.to, "fetched", len(got), "complete", ok)
	}
	return nil
}

// maxFillFailures bounds the attempts for one fill before its ids are
// given up as missing (counted).
const maxFillFailures = 5

// fetch pages through REST. ok is false when the range could not be
// fetched in full.
func (r *run) fetch(ctx context.Context, req fillRequest, buf *[]market.Trade) (got []market.Trade, ok bool, err error) {
	var q rest.AggTradesQuery
	from := req.from
	latest := from < 0
	if latest { // the latest -from trades: one page
		q.Limit = int(min(-from, 1000))
	}
	failures := 0
	for {
		if !latest {
			if from > req.to {
				return got, true, nil
			}
			id := from
			q.FromID = &id
			q.Limit = int(min(req.to-from+1, 1000))
		}
		r.mu.Lock()
		r.bf.Requests++
		r.mu.Unlock()
		page, ferr := r.rc.AggTrades(ctx, req.symbol, q, (*buf)[:0])
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if ferr == nil && !latest && len(page) == 0 && req.to != openEnd && !req.anchor {
			// Binance's REST can trail its stream by a moment: the ids
			// the stream showed exist, so ask again.
			ferr = fmt.Errorf("no trades from id %d yet (want up to %d)", from, req.to)
		}
		if ferr != nil {
			failures++
			r.mu.Lock()
			r.bf.Errors++
			r.mu.Unlock()
			if ban := (*rest.BanError)(nil); errors.As(ferr, &ban) {
				// An IP ban (418) ends at a known time: wait for it rather
				// than lose the ids. Held stream trades stay bounded by
				// MaxPending meanwhile.
				failures--
				r.log.Warn("trade backfill waits for the IP ban to end", "symbol", req.symbol, "until", ban.Until)
				if err := sleepCtx(ctx, time.Until(ban.Until)+50*time.Millisecond); err != nil {
					return nil, false, err
				}
				continue
			}
			if failures >= maxFillFailures {
				r.log.Error("trade backfill failed: ids stay missing", "symbol", req.symbol, "from", from, "to", req.to, "err", ferr)
				return got, false, nil
			}
			if err := sleepCtx(ctx, time.Duration(failures)*200*time.Millisecond); err != nil {
				return nil, false, err
			}
			continue
		}
		failures = 0
		*buf = page
		if latest {
			for i := range page {
				page[i].Symbol = req.symbol
			}
			return append(got, page...), true, nil
		}
		for i := range page {
			if page[i].ID > req.to {
				break
			}
			if page[i].ID < from {
				continue
			}
			page[i].Symbol = req.symbol
			got = append(got, page[i])
		}
		if len(page) == 0 {
			return got, true, nil // open end or anchor: nothing (newer) there
		}
		from = max(from, page[len(page)-1].ID+1)
		if req.to == openEnd && len(page) < q.Limit {
			return got, true, nil // the latest trade is in
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
