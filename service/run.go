package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/book"
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

// streamConn is one feed connection of a run.
type streamConn struct {
	name string
	conn *feed.Conn
}

// run is everything one Start creates and one Stop ends.
type run struct {
	s       *Service
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	tasks   []*task
	conns   []streamConn
	rc      *rest.Client
	lock    *dirlock.Lock
	symbols []string
	started time.Time

	mu     sync.Mutex // the data lock: guards everything below
	eng    *engine.Engine
	dec    *binance.Decoder
	msg    binance.Message
	seqs   map[string]*sequencer
	logged map[string]int64
	bf     BackfillStats
	// snapshot and backfill requests for the workers
	snapWant map[string]bool
	fills    []fillRequest
	snapSig  chan struct{}
	fillSig  chan struct{}
}

// sequencer orders one symbol's aggregate trades by id across the stream
// and REST: duplicates are skipped, gaps are filled from REST before the
// trades after them are applied.
type sequencer struct {
	last    int64          // last aggregate id applied (0: none yet)
	filling bool           // a REST fill is in progress
	pending []market.Trade // stream trades held while filling, in id order
}

type fillRequest struct {
	symbol   string
	from, to int64 // inclusive aggregate id range to fetch
}

func newRun(s *Service, syms []string) (*run, error) {
	r := &run{s: s, log: s.log, symbols: syms, started: time.Now(),
		seqs: map[string]*sequencer{}, logged: map[string]int64{}, snapWant: map[string]bool{},
		snapSig: make(chan struct{}, 1), fillSig: make(chan struct{}, 1)}
	if s.cfg.DataDir != "" {
		l, err := dirlock.Acquire(s.cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
		r.lock = l
	}
	rc, err := s.restClient()
	if err != nil {
		r.releaseLock()
		return nil, fmt.Errorf("service: %w", err)
	}
	r.rc = rc
	fc := s.cfg.Flow
	r.eng = engine.New(engine.Config{
		Market: s.cfg.Market, MarketKnown: true, Flow: fc, Logger: s.log,
		OnNeedSnapshot: func(sym *engine.Symbol, cause book.Cause) { r.wantSnapshot(sym.Name) },
		OnTrade:        r.onTrade,
		OnBarClose: func(sym *engine.Symbol, iv time.Duration, b *flow.Bar) {
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(Event{Symbol: sym.Name, Bar: b, Interval: iv})
			}
		},
	})
	for _, sym := range syms {
		r.eng.AddSymbol(sym, s.cfg.Market, true)
		r.seqs[sym] = &sequencer{}
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

// start opens the connections and launches every task.
func (r *run) start(ctx context.Context) error {
	// The run's context is not derived from ctx: ctx bounds Start, while
	// the run lives until Stop.
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	cfg := &r.s.cfg
	groups := map[string][]string{} // path -> streams
	var paths []string
	for _, sym := range r.symbols {
		for _, ch := range []string{cfg.TradeChannel, cfg.DepthChannel} {
			p := binance.StreamPath(cfg.Market, ch)
			if _, ok := groups[p]; !ok {
				paths = append(paths, p)
			}
			groups[p] = append(groups[p], binance.StreamName(sym, ch))
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		streams := groups[p]
		for i := 0; i < len(streams); i += binance.MaxStreamsPerConn {
			chunk := streams[i:min(i+binance.MaxStreamsPerConn, len(streams))]
			name := fmt.Sprintf("%s stream%s%s", cfg.Market, p, connLabel(chunk))
			c, err := feed.NewConn(feed.Options{BaseURL: cfg.WSURL, Market: cfg.Market, Path: p, Streams: chunk,
				Handler: r.onFrame, Logger: r.log, HTTPClient: cfg.HTTPClient, DialTimeout: cfg.DialTimeout,
				StaleTimeout: cfg.StaleTimeout})
			if err != nil {
				r.cancel()
				r.releaseLock()
				return fmt.Errorf("service: %s: %w", name, err)
			}
			r.conns = append(r.conns, streamConn{name: name, conn: c})
		}
	}
	// Warm start: hold each symbol's stream trades until the latest trades
	// from REST are in, so metrics are available at once and the seam has
	// no gap and no duplicate.
	if cfg.Backfill > 0 && cfg.TradeChannel == binance.ChannelAggTrade {
		r.mu.Lock()
		for _, sym := range r.symbols {
			r.seqs[sym].filling = true
			r.fills = append(r.fills, fillRequest{symbol: sym, from: -int64(cfg.Backfill)})
		}
		signal(r.fillSig)
		r.mu.Unlock()
	}
	for _, c := range r.conns {
		r.goTask(c.name, c.conn.Run)
	}
	r.goTask("depth snapshot worker", r.snapshotWorker)
	r.goTask("trade backfill worker", r.backfillWorker)
	return nil
}

func connLabel(streams []string) string {
	if len(streams) <= 4 {
		return " [" + strings.Join(streams, ",") + "]"
	}
	return fmt.Sprintf(" [%s ... %d streams]", streams[0], len(streams))
}

func (r *run) goTask(name string, f func(context.Context) error) {
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
		err := f(r.ctx)
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
	if len(stuck) > 0 {
		return fmt.Errorf("service: stop: %d task(s) did not end in time: %s", len(stuck), strings.Join(stuck, "; "))
	}
	return nil
}

// onFrame is every connection's handler: decode and apply under the data
// lock. The frame is not retained.
func (r *run) onFrame(frame []byte, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.eng.Decode(frame)
	if err != nil {
		r.log.Warn("frame rejected", "err", err, "frame", snippet(frame))
		return
	}
	if m.Kind == binance.KindAggTrade {
		r.sequence(&m.Trade)
		return
	}
	if err := r.eng.HandleMessage(m, r.s.cfg.Market, true); err != nil {
		r.log.Warn("message rejected", "err", err)
	}
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
	if sq == nil { // a symbol we did not subscribe: count, do not guess
		r.eng.CountUnknownSymbol()
		return
	}
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
	if sq.last != 0 && t.ID > sq.last+1 {
		r.log.Warn("trade id gap: filling from REST", "symbol", t.Symbol, "after", sq.last, "next", t.ID, "missing", t.ID-sq.last-1)
		r.startFill(sq, t, sq.last+1)
		return
	}
	r.apply(sq, t)
}

func (r *run) startFill(sq *sequencer, t *market.Trade, from int64) {
	sq.filling = true
	sq.pending = append(sq.pending, *t)
	r.fills = append(r.fills, fillRequest{symbol: t.Symbol, from: from, to: t.ID - 1})
	signal(r.fillSig)
}

func (r *run) apply(sq *sequencer, t *market.Trade) {
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
			rest := append([]market.Trade(nil), sq.pending[i:]...)
			sq.pending = sq.pending[:0]
			r.fills = append(r.fills, fillRequest{symbol: t.Symbol, from: sq.last + 1, to: t.ID - 1})
			sq.pending = append(sq.pending, rest...)
			signal(r.fillSig)
			return
		}
		r.apply(sq, t)
	}
	sq.pending = sq.pending[:0]
	sq.filling = false
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
		r.s.cfg.OnEvent(Event{Symbol: sym.Name, Trade: t})
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

// snapshotWorker fetches depth snapshots as books ask for them. The REST
// client's weight limiter and snapshot gate keep many resyncing symbols
// from becoming a thundering herd.
func (r *run) snapshotWorker(ctx context.Context) error {
	var snap market.DepthSnapshot
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
				r.log.Warn("depth snapshot failed; retrying", "symbol", sym, "err", err)
				r.mu.Lock()
				r.snapWant[sym] = true
				r.mu.Unlock()
				if err := sleepCtx(ctx, time.Second); err != nil {
					return err
				}
				continue
			}
			snap.Symbol = sym
			r.mu.Lock()
			if err := r.eng.ApplySnapshot(&snap, r.s.cfg.Market, true); err != nil {
				r.log.Warn("snapshot rejected", "symbol", sym, "err", err)
			}
			r.mu.Unlock()
		}
	}
}

// backfillWorker fetches aggregate trades by id from REST to warm up a
// symbol at start and to fill gaps after reconnects.
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
func (r *run) fill(ctx context.Context, req fillRequest, buf *[]market.Trade) error {
	got, ok, err := r.fetch(ctx, req, buf)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sq := r.seqs[req.symbol]
	r.bf.Fetched += int64(len(got))
	for i := range got {
		r.apply(sq, &got[i])
	}
	// A failed fill gives up on its range (counted as missing) so the
	// stream is not held forever.
	r.flushPending(sq, !ok)
	r.log.Info("trade backfill done", "symbol", req.symbol, "from", req.from, "to", req.to, "fetched", len(got), "complete", ok)
	return nil
}

// fetch pages through REST. ok is false when the range could not be
// fetched in full.
func (r *run) fetch(ctx context.Context, req fillRequest, buf *[]market.Trade) (got []market.Trade, ok bool, err error) {
	q := rest.AggTradesQuery{}
	from, to := req.from, req.to
	if from < 0 { // the latest -from trades, newest page first
		q.Limit = int(min(-from, 1000))
	} else {
		q.FromID = &from
	}
	failures := 0
	for {
		if q.FromID != nil {
			if from > to {
				return got, true, nil
			}
			q.Limit = int(min(to-from+1, 1000))
		}
		r.mu.Lock()
		r.bf.Requests++
		r.mu.Unlock()
		page, ferr := r.rc.AggTrades(ctx, req.symbol, q, (*buf)[:0])
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if ferr != nil {
			failures++
			r.mu.Lock()
			r.bf.Errors++
			r.mu.Unlock()
			if failures >= 5 || rest.IsBanned(ferr) {
				r.log.Error("trade backfill failed: ids stay missing", "symbol", req.symbol, "from", from, "to", to, "err", ferr)
				return got, false, nil
			}
			if err := sleepCtx(ctx, time.Duration(failures)*500*time.Millisecond); err != nil {
				return nil, false, err
			}
			continue
		}
		*buf = page
		if len(page) == 0 {
			return got, q.FromID == nil, nil
		}
		if q.FromID == nil { // warm start: one page of the latest trades
			for i := range page {
				page[i].Symbol = req.symbol
			}
			return append(got, page...), true, nil
		}
		for i := range page {
			if page[i].ID > to {
				break
			}
			page[i].Symbol = req.symbol
			got = append(got, page[i])
		}
		from = page[len(page)-1].ID + 1
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
