package sim

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of what the server did, for tests and the CLI.
type Stats struct {
	// ConnsOpen is the number of WebSocket connections open now.
	ConnsOpen int64
	// ConnsTotal counts every accepted connection; ConnsClosed the ones
	// that have ended (for either side's reason) and released everything.
	ConnsTotal, ConnsClosed int64
	// ServerClosed counts connections the server closed, by reason:
	// "pong-timeout", "control-rate", "slow-consumer", "write-error",
	// "server-shutdown", "drop-clean", "drop-reset", "drop-midframe".
	ServerClosed map[string]int64
	// FramesSent counts frames queued per canonical stream name
	// ("btcusdt@depth@100ms"), once per subscriber.
	FramesSent map[string]int64
	// FramesDropped counts frames not sent: to a half-open connection or a
	// connection dropped as too slow.
	FramesDropped int64
	// Faults counts injected faults by kind.
	Faults map[string]int64
	// REST counts REST requests by path and HTTP status.
	REST map[string]map[int]int64
	// Events counts events the replay published (fanout copies once);
	// Rounds counts completed replay rounds; Transitions counts the
	// synthetic depth events that start a loop round.
	Events, Rounds, Transitions int64
}

type stats struct {
	open, total, closed  atomic.Int64
	dropped              atomic.Int64
	events, rounds       atomic.Int64
	transitions          atomic.Int64
	mu                   sync.Mutex
	serverClosed, faults map[string]int64
	rest                 map[string]map[int]int64
}

func (s *stats) init() {
	s.serverClosed = map[string]int64{}
	s.faults = map[string]int64{}
	s.rest = map[string]map[int]int64{}
}

func (s *stats) connOpened() { s.open.Add(1); s.total.Add(1) }
func (s *stats) connClosed() { s.open.Add(-1); s.closed.Add(1) }

func (s *stats) serverClose(reason string) {
	s.mu.Lock()
	s.serverClosed[reason]++
	s.mu.Unlock()
}

func (s *stats) fault(kind string) {
	s.mu.Lock()
	s.faults[kind]++
	s.mu.Unlock()
}

func (s *stats) restDone(path string, status int) {
	s.mu.Lock()
	m := s.rest[path]
	if m == nil {
		m = map[int]int64{}
		s.rest[path] = m
	}
	m[status]++
	s.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := &s.stats
	out := Stats{
		ConnsOpen: st.open.Load(), ConnsTotal: st.total.Load(), ConnsClosed: st.closed.Load(),
		FramesDropped: st.dropped.Load(), Events: st.events.Load(), Rounds: st.rounds.Load(),
		Transitions: st.transitions.Load(), FramesSent: map[string]int64{}, REST: map[string]map[int]int64{},
	}
	for _, t := range s.all {
		if n := t.sent.Load(); n > 0 {
			out.FramesSent[t.stream] = n
		}
	}
	st.mu.Lock()
	out.ServerClosed = maps.Clone(st.serverClosed)
	out.Faults = maps.Clone(st.faults)
	for p, m := range st.rest {
		out.REST[p] = maps.Clone(m)
	}
	st.mu.Unlock()
	return out
}
