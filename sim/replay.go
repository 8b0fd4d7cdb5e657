package sim

import (
	"context"
	"slices"

	"github.com/orderflow/orderflow/market"
)

// replay publishes the timeline, round after round when looping.
func (s *Server) replay(ctx context.Context) {
	rec := s.rec
	span := rec.last - rec.first + loopGap
	for round := int64(0); ; round++ {
		st := round * span
		if round > 0 {
			if err := s.clock.wait(ctx, rec.first+st); err != nil {
				return
			}
			for _, ss := range s.syms {
				if ss.src.has[chDepth] {
					s.transition(ss, rec.first+st)
				}
			}
		}
		for i := range rec.events {
			ev := &rec.events[i]
			if err := s.clock.wait(ctx, ev.t+st); err != nil {
				return
			}
			s.publish(ctx, ev, round, st)
		}
		s.stats.rounds.Add(1)
		if !s.cfg.Loop {
			close(s.done)
			s.log.Info("replay finished", "events", len(rec.events))
			return
		}
	}
}

// transition starts a new round for one symbol: one synthetic depthUpdate
// turns the simBook as the previous round left it into the simBook at the
// recording's sync point, with the next update id, so every later diff of
// the round applies to the client's simBook exactly as in round 0.
func (s *Server) transition(ss *symState, t int64) {
	sd := ss.src
	ss.mu.Lock()
	bids, asks := ss.book.diffTo(&sd.start)
	ss.book = sd.start.clone()
	prev := ss.lastU
	ss.lastU, ss.lastT = prev+1, t
	ss.mu.Unlock()
	slices.Reverse(bids) // best first, as Binance writes them
	slices.Reverse(asks)
	ev := &depthEv{U: prev + 1, u: prev + 1, pu: prev, E: t, T: t, bids: bids, asks: asks}
	s.stats.transitions.Add(1)
	for _, cs := range ss.copies {
		s.emit(context.Background(), cs.topics[chDepth], func(dst []byte) []byte { return cs.enc.depth(dst, ev, shift{}) })
	}
}

// publish applies one event to the simulator's state and sends it to the
// subscribers of every copy of its symbol.
func (s *Server) publish(ctx context.Context, ev *tlEvent, round, st int64) {
	ss := s.syms[ev.sym]
	sd := ss.src
	sh := shift{t: st, depth: round * sd.depthSpan, trade: round * sd.tradeSpan, agg: round * sd.aggSpan}
	s.stats.events.Add(1)
	switch ev.ch {
	case chDepth:
		d := &sd.depth[ev.idx]
		ss.mu.Lock()
		ss.book.apply(d.bids, d.asks)
		ss.lastU, ss.lastT = d.u+sh.depth, d.T+sh.t
		ss.mu.Unlock()
		for _, cs := range ss.copies {
			s.emit(ctx, cs.topics[chDepth], func(dst []byte) []byte { return cs.enc.depth(dst, d, sh) })
		}
	case chTrade:
		tr := &sd.trades[ev.idx]
		for _, cs := range ss.copies {
			s.emit(ctx, cs.topics[chTrade], func(dst []byte) []byte { return cs.enc.trade(dst, tr, sh) })
		}
	case chAggTrade:
		a := sd.aggs[ev.idx]
		a.id += sh.agg
		a.f += sh.trade
		a.l += sh.trade
		a.T += sh.t
		a.E += sh.t
		ss.mu.Lock()
		ss.hist = append(ss.hist, a)
		ss.mu.Unlock()
		for _, cs := range ss.copies {
			s.emit(ctx, cs.topics[chAggTrade], func(dst []byte) []byte { return cs.enc.aggTrade(dst, &a, shift{}) })
		}
	case chTicker:
		tk := &sd.tick[ev.idx]
		for _, cs := range ss.copies {
			s.emit(ctx, cs.topics[chTicker], func(dst []byte) []byte { return cs.enc.ticker(dst, tk, sh) })
		}
	}
}

// emit encodes an event for one topic, only when someone listens or a
// fault waits for it, applies pending faults and delivers it.
func (s *Server) emit(ctx context.Context, t *topic, build func([]byte) []byte) {
	armed := t.armed.Load()
	subs := *t.subs.Load()
	if len(subs) == 0 && !armed {
		return
	}
	data := build(nil)
	if !armed {
		s.deliver(ctx, t, subs, data)
		return
	}
	f := &s.faults
	f.mu.Lock()
	if t.skip > 0 {
		t.skip--
		t.armed.Store(t.pending())
		f.mu.Unlock()
		s.stats.fault("skip")
		return
	}
	if t.reorder > 0 && t.held == nil {
		t.reorder--
		t.held = data
		f.mu.Unlock()
		return
	}
	held := t.held
	t.held = nil
	n := 1
	if t.dup > 0 {
		t.dup--
		n = 2
		s.stats.fault("duplicate")
	}
	if held != nil {
		s.stats.fault("reorder")
	}
	t.armed.Store(t.pending())
	f.mu.Unlock()
	for range n {
		s.deliver(ctx, t, subs, data)
	}
	if held != nil {
		s.deliver(ctx, t, subs, held)
	}
}

// pending reports whether a fault still waits on the topic (Faults.mu held).
func (t *topic) pending() bool { return t.skip > 0 || t.dup > 0 || t.reorder > 0 || t.held != nil }

// deliver queues data on every subscriber of the topic. A paced replay
// never waits: a full queue drops that connection. An unpaced replay waits
// for room instead, so it runs exactly as fast as the slowest reader.
func (s *Server) deliver(ctx context.Context, t *topic, subs []sub, data []byte) {
	for _, sb := range subs {
		c := sb.c
		if c.halfOpen.Load() {
			s.stats.dropped.Add(1)
			continue
		}
		f := outFrame{data: data, stream: sb.stream}
		if s.cfg.Speed > 0 {
			select {
			case c.out <- f:
			default:
				s.stats.dropped.Add(1)
				c.fail("slow-consumer")
				continue
			}
		} else {
			select {
			case c.out <- f:
			case <-c.ctx.Done():
				continue
			case <-ctx.Done():
				return
			}
		}
		t.sent.Add(1)
	}
}

// bookTop returns the simulator's simBook for a REST snapshot.
func (ss *symState) bookTop(limit int) (lastU, lastT int64, bids, asks []market.Level) {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	bids, asks = ss.book.top(limit, make([]market.Level, 0, min(limit, len(ss.book.bids))), make([]market.Level, 0, min(limit, len(ss.book.asks))))
	return ss.lastU, ss.lastT, bids, asks
}
