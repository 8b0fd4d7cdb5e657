package sim

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Faults injects failures into a running server, from tests or the CLI.
// Every hook is counted in Stats().Faults. Hooks on "all connections" act
// on the connections open at the call and return how many they reached.
type Faults struct {
	s  *Server
	mu sync.Mutex
	// REST faults.
	failStatus int
	failN      int
	retryAfter time.Duration
	restDelay  time.Duration
	hang       chan struct{} // non-nil: REST requests wait for it to close
	refuseSubs int
}

// DropMode is how DropAll ends connections.
type DropMode uint8

// Drop modes.
const (
	// DropClean closes with a WebSocket close frame (1001 going away).
	DropClean DropMode = iota
	// DropReset resets the TCP connection (RST, no close frame).
	DropReset
	// DropMidFrame writes the header and half the payload of a frame, then
	// closes the socket: the client's read fails mid-frame.
	DropMidFrame
)

func (m DropMode) String() string {
	switch m {
	case DropReset:
		return "reset"
	case DropMidFrame:
		return "midframe"
	}
	return "clean"
}

// DropAll ends every open connection the given way.
func (f *Faults) DropAll(mode DropMode) int {
	conns := f.s.liveConns()
	for _, c := range conns {
		f.s.stats.fault("drop-" + mode.String())
		f.s.stats.serverClose("drop-" + mode.String())
		switch mode {
		case DropReset:
			c.command(ctlCmd{kind: ctlReset})
		case DropMidFrame:
			c.command(ctlCmd{kind: ctlMidFrame})
		default:
			c.command(ctlCmd{kind: ctlClose, code: websocket.StatusGoingAway, reason: "simulated disconnect"})
		}
	}
	return len(conns)
}

// HalfOpen turns every open connection half-open: the server stops
// sending data, stops answering pings and stops pinging, but keeps the
// socket open; the client's watchdog must notice. The connections stay so
// until the client closes them or the server closes.
func (f *Faults) HalfOpen() int {
	conns := f.s.liveConns()
	for _, c := range conns {
		c.halfOpen.Store(true)
		f.s.stats.fault("half-open")
	}
	return len(conns)
}

// ServerShutdown sends the serverShutdown event Binance announces planned
// disconnects with, then closes each connection after delay.
func (f *Faults) ServerShutdown(delay time.Duration) int {
	conns := f.s.liveConns()
	for _, c := range conns {
		f.s.stats.fault("server-shutdown")
		c.command(ctlCmd{kind: ctlShutdown, delay: delay})
	}
	return len(conns)
}

// topicFor finds a served symbol's channel ("depth", "trade", "aggTrade",
// "bookTicker").
func (f *Faults) topicFor(symbol, channel string) (*topic, error) {
	cs := f.s.bySym[strings.ToUpper(symbol)]
	if cs == nil {
		return nil, fmt.Errorf("sim: unknown symbol %q", symbol)
	}
	for ch, n := range channelNames {
		if n == channel && cs.topics[ch] != nil {
			return cs.topics[ch], nil
		}
	}
	return nil, fmt.Errorf("sim: symbol %s serves no %q channel", symbol, channel)
}

func (f *Faults) arm(symbol, channel string, fn func(t *topic)) error {
	t, err := f.topicFor(symbol, channel)
	if err != nil {
		return err
	}
	f.mu.Lock()
	fn(t)
	t.armed.Store(t.pending())
	f.mu.Unlock()
	return nil
}

// Skip leaves out the next n events of a symbol's channel. For "depth" the
// simulator's book still applies them (REST stays right): a client sees a
// gap in the update ids and must resync.
func (f *Faults) Skip(symbol, channel string, n int) error {
	return f.arm(symbol, channel, func(t *topic) { t.skip += n })
}

// SkipDepth leaves out the next depth event of a symbol.
func (f *Faults) SkipDepth(symbol string) error { return f.Skip(symbol, "depth", 1) }

// Duplicate sends each of the next n events of a symbol's channel twice.
func (f *Faults) Duplicate(symbol, channel string, n int) error {
	return f.arm(symbol, channel, func(t *topic) { t.dup += n })
}

// Reorder swaps the next two events of a symbol's channel.
func (f *Faults) Reorder(symbol, channel string) error {
	return f.arm(symbol, channel, func(t *topic) { t.reorder++ })
}

// BadFrame is a kind of broken frame SendBadFrame can send.
type BadFrame uint8

// Broken frames.
const (
	// Malformed is not JSON.
	Malformed BadFrame = iota
	// Truncated is a real frame cut in half, sent as a whole message.
	Truncated
	// Oversized is a valid JSON event of the given size.
	Oversized
	// UnknownEvent is a well-formed event of a type Binance does not send.
	UnknownEvent
)

func (b BadFrame) String() string {
	return [...]string{"malformed", "truncated", "oversized", "unknown-event"}[b]
}

// SendBadFrame sends a broken frame to every open connection (wrapped in
// the combined envelope where that makes sense). size is the length of an
// Oversized frame (default 2 MiB).
func (f *Faults) SendBadFrame(kind BadFrame, size int) int {
	s := f.s
	conns := s.liveConns()
	cs := s.syms[0].copies[0]
	stream := cs.topics[chTicker]
	for _, t := range cs.topics {
		if t != nil {
			stream = t
			break
		}
	}
	for _, c := range conns {
		var data []byte
		switch kind {
		case Malformed:
			data = []byte(`{"stream":"` + stream.stream + `","data":{"e":"depthUpdate","E":,"s":"` + cs.name + `"[}`)
		case Truncated:
			ev := fmt.Appendf(nil, `{"e":"aggTrade","E":%d,"s":"%s","a":1,"p":"1.0","q":"1.0","f":1,"l":1,"T":%d,"m":true,"M":true}`, s.clock.now(), cs.name, s.clock.now())
			if c.combined.Load() {
				ev = wrap(nil, stream.stream, ev)
			}
			data = ev[:len(ev)/2]
		case Oversized:
			if size <= 0 {
				size = 2 << 20
			}
			ev := fmt.Appendf(nil, `{"e":"simOversized","E":%d,"s":"%s","pad":"`, s.clock.now(), cs.name)
			ev = append(ev, bytes.Repeat([]byte("x"), max(0, size-len(ev)-2))...)
			ev = append(ev, `"}`...)
			if c.combined.Load() {
				ev = wrap(nil, stream.stream, ev)
			}
			data = ev
		case UnknownEvent:
			ev := fmt.Appendf(nil, `{"e":"simUnknownEvent","E":%d,"s":"%s"}`, s.clock.now(), cs.name)
			if c.combined.Load() {
				ev = wrap(nil, stream.stream, ev)
			}
			data = ev
		}
		s.stats.fault("frame-" + kind.String())
		select {
		case c.out <- outFrame{data: data}:
		default:
			c.fail("slow-consumer")
		}
	}
	return len(conns)
}

// RefuseSubscribe makes the next n SUBSCRIBE requests fail with an error
// reply.
func (f *Faults) RefuseSubscribe(n int) {
	f.mu.Lock()
	f.refuseSubs += n
	f.mu.Unlock()
}

func (f *Faults) takeRefusal() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuseSubs > 0 {
		f.refuseSubs--
		return true
	}
	return false
}

// FailREST answers the next n REST requests with status (429, 418, 5xx),
// with a Retry-After header of retryAfter (rounded up to seconds) when it
// is positive.
func (f *Faults) FailREST(status, n int, retryAfter time.Duration) {
	f.mu.Lock()
	f.failStatus, f.failN, f.retryAfter = status, n, retryAfter
	f.mu.Unlock()
}

// DelayREST delays every REST answer by d (0 stops delaying).
func (f *Faults) DelayREST(d time.Duration) {
	f.mu.Lock()
	f.restDelay = d
	f.mu.Unlock()
}

// HangREST makes REST requests wait without answer until release is
// called (or the server closes).
func (f *Faults) HangREST() (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.hang = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			if f.hang == ch {
				f.hang = nil
			}
			f.mu.Unlock()
			close(ch)
		})
	}
}

// restFault applies pending REST faults to one request; it reports
// whether the request was answered (failed) here.
func (f *Faults) restFault(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	hang, delay := f.hang, f.restDelay
	status, retry := 0, time.Duration(0)
	if f.failN > 0 {
		f.failN--
		status, retry = f.failStatus, f.retryAfter
	}
	f.mu.Unlock()
	if hang != nil {
		f.s.stats.fault("rest-hang")
		select {
		case <-hang:
		case <-r.Context().Done():
		case <-f.s.ctx.Done():
		}
	}
	if delay > 0 {
		f.s.stats.fault("rest-delay")
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-f.s.ctx.Done():
		}
		t.Stop()
	}
	if status == 0 {
		return false
	}
	f.s.stats.fault(fmt.Sprintf("rest-%d", status))
	if retry > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int64((retry+time.Second-1)/time.Second)))
	}
	switch {
	case status == http.StatusTooManyRequests:
		writeJSONError(w, status, -1003, "Too much request weight used (injected fault).")
	case status == http.StatusTeapot:
		writeJSONError(w, status, -1003, "Way too much request weight used; IP banned (injected fault).")
	default:
		writeJSONError(w, status, -1001, "Internal error; unable to process your request. Please try again.")
	}
	return true
}
