package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// area is the part of the WebSocket API a connection came in through: it
// decides which channels may be subscribed (USD-M splits them since 2026).
type area uint8

const (
	areaSpot   area = iota // spot root: every channel
	areaPublic             // USD-M /public: depth, bookTicker
	areaMarket             // USD-M /market: aggTrade, trade
)

func (a area) allows(ch int) bool {
	switch a {
	case areaPublic:
		return ch == chDepth || ch == chTicker
	case areaMarket:
		return ch == chTrade || ch == chAggTrade
	}
	return true
}

// outFrame is one message for a connection's writer; stream is the name
// the client subscribed with, "" for a reply or an injected frame written
// as is.
type outFrame struct {
	data   []byte
	stream string
}

// ctlKind is a command for a connection's writer.
type ctlKind uint8

const (
	ctlClose    ctlKind = iota // close handshake with code and reason
	ctlReset                   // TCP reset
	ctlMidFrame                // write half a frame, then close the socket
	ctlShutdown                // serverShutdown event, close after delay
)

type ctlCmd struct {
	kind   ctlKind
	code   websocket.StatusCode
	reason string
	delay  time.Duration
}

// conn is one WebSocket connection.
type conn struct {
	s        *Server
	id       int64
	area     area
	combined atomic.Bool
	ws       *websocket.Conn
	nc       net.Conn
	ctx      context.Context
	cancel   context.CancelFunc
	out      chan outFrame
	ctl      chan ctlCmd
	halfOpen atomic.Bool
	limited  atomic.Bool
	failOnce sync.Once

	mu     sync.Mutex // guards subs
	subs   []sub      // in subscription order
	tokens float64    // control-message bucket; reader goroutine only
	refill time.Time
}

// handleWS serves a WebSocket path: /ws, /ws/<stream> or /stream?streams=.
func (s *Server) handleWS(a area, combined bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var names []string
		if combined {
			if q := r.URL.Query().Get("streams"); q != "" {
				names = strings.Split(q, "/")
			}
		} else if st := r.PathValue("stream"); st != "" {
			names = []string{st}
		}
		if len(names) > s.cfg.MaxStreamsPerConn {
			writeJSONError(w, http.StatusBadRequest, 2, fmt.Sprintf("Invalid request: %d streams, at most %d per connection", len(names), s.cfg.MaxStreamsPerConn))
			return
		}
		topics := make([]*topic, len(names))
		for i, n := range names {
			t, err := s.resolve(n, a)
			if err != nil {
				writeJSONError(w, http.StatusBadRequest, 2, "Invalid request: "+err.Error())
				return
			}
			topics[i] = t
		}
		c := &conn{s: s, area: a, out: make(chan outFrame, s.cfg.SendQueue), ctl: make(chan ctlCmd, 4),
			tokens: float64(s.cfg.ControlRate), refill: time.Now()}
		c.combined.Store(combined)
		c.nc, _ = r.Context().Value(netConnKey{}).(net.Conn)
		if !s.track(c) {
			http.Error(w, "simulator closing", http.StatusServiceUnavailable)
			return
		}
		defer s.untrack(c)
		c.ctx, c.cancel = context.WithCancel(s.ctx)
		defer c.cancel()
		// Subscribe before the handshake completes, so that a client that
		// has connected has missed nothing published after it.
		for i, t := range topics {
			s.subscribe(c, t, names[i])
		}
		defer s.unsubscribeAll(c)
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			CompressionMode: websocket.CompressionDisabled,
			OnPingReceived:  c.onPing,
			OnPongReceived:  c.onPong,
		})
		if err != nil {
			s.log.Debug("websocket accept", "err", err)
			return
		}
		ws.SetReadLimit(1 << 20)
		c.ws = ws
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); c.writer() }()
		go func() { defer wg.Done(); c.pinger() }()
		c.reader()
		c.cancel()
		wg.Wait()
		_ = ws.CloseNow()
	}
}

// resolve finds the topic of a stream name as a client writes it (the
// symbol part is case-insensitive, the channel is not).
func (s *Server) resolve(name string, a area) (*topic, error) {
	at := strings.IndexByte(name, '@')
	if at <= 0 {
		return nil, fmt.Errorf("invalid stream name %q", name)
	}
	t := s.topics[strings.ToLower(name[:at])+name[at:]]
	if t == nil {
		return nil, fmt.Errorf("unknown stream %q", name)
	}
	if !a.allows(t.ch) {
		return nil, fmt.Errorf("stream %q is not served on this path (USD-M: depth and bookTicker under /public, trades under /market)", name)
	}
	return t, nil
}

func (s *Server) subscribe(c *conn, t *topic, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sb := range c.subs {
		if sb.stream == name {
			return false
		}
	}
	c.subs = append(c.subs, sub{c: c, stream: name})
	s.mu.Lock()
	old := *t.subs.Load()
	n := append(old[:len(old):len(old)], sub{c: c, stream: name})
	t.subs.Store(&n)
	s.mu.Unlock()
	return true
}

func (s *Server) unsubscribe(c *conn, t *topic, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, sb := range c.subs {
		if sb.stream == name {
			c.subs = append(c.subs[:i:i], c.subs[i+1:]...)
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *t.subs.Load()
	n := make([]sub, 0, len(old))
	for _, sb := range old {
		if sb.c != c || sb.stream != name {
			n = append(n, sb)
		}
	}
	t.subs.Store(&n)
}

func (s *Server) unsubscribeAll(c *conn) {
	c.mu.Lock()
	subs := append([]sub(nil), c.subs...)
	c.mu.Unlock()
	for _, sb := range subs {
		if t, err := s.resolve(sb.stream, c.area); err == nil {
			s.unsubscribe(c, t, sb.stream)
		}
	}
}

// fail closes the connection from the server side for a reason (counted).
func (c *conn) fail(reason string) {
	c.failOnce.Do(func() {
		c.s.stats.serverClose(reason)
		c.s.log.Debug("closing connection", "conn", c.id, "reason", reason)
		if c.cancel != nil {
			c.cancel()
		}
	})
}

// command hands a command to the writer; a connection that cannot take
// it is already stuck, so it is closed.
func (c *conn) command(cmd ctlCmd) bool {
	select {
	case c.ctl <- cmd:
		return true
	default:
		c.fail("control-queue-full")
		return false
	}
}

// allow takes one control message from the bucket: Binance allows
// ControlRate incoming messages (pings, pongs, JSON) per second and
// disconnects above it. Runs on the reader goroutine only.
func (c *conn) allow() bool {
	now := time.Now()
	rate := float64(c.s.cfg.ControlRate)
	c.tokens = min(rate, c.tokens+now.Sub(c.refill).Seconds()*rate)
	c.refill = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// overLimit closes a connection that sent too many messages, once, with a
// close frame so the client learns why.
func (c *conn) overLimit() {
	if c.limited.Swap(true) {
		return
	}
	c.s.stats.serverClose("control-rate")
	select {
	case c.ctl <- ctlCmd{kind: ctlClose, code: websocket.StatusPolicyViolation, reason: "too many messages"}:
	default:
		c.cancel()
	}
}

func (c *conn) onPing(ctx context.Context, _ []byte) bool {
	if !c.allow() {
		c.overLimit()
	}
	return !c.halfOpen.Load() // a half-open connection answers nothing
}

func (c *conn) onPong(ctx context.Context, _ []byte) {
	if !c.allow() {
		c.overLimit()
	}
}

// reader reads requests until the connection ends.
func (c *conn) reader() {
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		if !c.allow() {
			c.overLimit()
			continue
		}
		if c.halfOpen.Load() {
			continue
		}
		if typ != websocket.MessageText {
			c.reply(errorFrame(nil, 3, "Invalid JSON: binary message"))
			continue
		}
		c.reply(c.s.request(c, data))
	}
}

func (c *conn) reply(b []byte) {
	select {
	case c.out <- outFrame{data: b}:
	default:
		c.fail("slow-consumer")
	}
}

// writer is the only goroutine that writes to the socket.
func (c *conn) writer() {
	var buf []byte
	var shutdown <-chan time.Time
	for {
		select {
		case <-c.ctx.Done():
			_ = c.ws.CloseNow()
			return
		case <-shutdown:
			c.s.stats.serverClose("server-shutdown")
			_ = c.ws.Close(websocket.StatusGoingAway, "server shutdown")
			c.cancel()
			return
		case cmd := <-c.ctl:
			switch cmd.kind {
			case ctlClose:
				_ = c.ws.Close(cmd.code, cmd.reason)
				c.cancel()
				return
			case ctlReset:
				if tc, ok := c.nc.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // close sends RST instead of FIN
				}
				c.closeRaw()
				return
			case ctlMidFrame:
				c.writeHalfFrame()
				c.closeRaw()
				return
			case ctlShutdown:
				ev := c.s.shutdownEvent(c)
				if err := c.write(ev); err != nil {
					return
				}
				t := time.NewTimer(cmd.delay)
				defer t.Stop()
				shutdown = t.C
			}
		case f := <-c.out:
			if c.halfOpen.Load() {
				continue
			}
			data := f.data
			if f.stream != "" && c.combined.Load() {
				buf = wrap(buf[:0], f.stream, f.data)
				data = buf
			}
			if err := c.write(data); err != nil {
				return
			}
		}
	}
}

func (c *conn) write(data []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
		if c.ctx.Err() == nil {
			c.fail("write-error")
		}
		return err
	}
	return nil
}

// closeRaw closes the TCP connection under the WebSocket library.
func (c *conn) closeRaw() {
	if c.nc != nil {
		_ = c.nc.Close()
	}
	c.cancel()
	_ = c.ws.CloseNow()
}

// writeHalfFrame writes the header of a text frame and half of its
// payload straight to the socket, so the client sees a frame cut mid-way.
// Only the writer calls it, between whole frames.
func (c *conn) writeHalfFrame() {
	if c.nc == nil {
		return
	}
	payload := bytes.Repeat([]byte(`{"e":"simPartial"}`), 64)
	hdr := []byte{0x81, 126, byte(len(payload) >> 8), byte(len(payload))}
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.nc.Write(append(hdr, payload[:len(payload)/2]...))
}

// pinger pings every PingInterval; no pong within PongTimeout closes the
// connection, as Binance does.
func (c *conn) pinger() {
	t := time.NewTicker(c.s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.halfOpen.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.PongTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			if c.ctx.Err() == nil {
				c.fail("pong-timeout")
			}
			return
		}
	}
}

// request handles one JSON message and returns the reply frame.
func (s *Server) request(c *conn, data []byte) []byte {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return errorFrame(nil, 3, "Invalid JSON: "+err.Error())
	}
	id := raw["id"]
	if len(id) == 0 {
		id = []byte("null")
	}
	if !validID(id) {
		return errorFrame(nil, 2, "Invalid request: request ID must be an unsigned integer or a string of up to 36 alphanumerics")
	}
	for k := range raw {
		if k != "method" && k != "params" && k != "id" {
			return errorFrame(id, 0, "Unknown property")
		}
	}
	var method string
	if err := json.Unmarshal(raw["method"], &method); err != nil || method == "" {
		return errorFrame(id, 2, "Invalid request: missing field method")
	}
	var params []json.RawMessage
	if p, ok := raw["params"]; ok {
		if err := json.Unmarshal(p, &params); err != nil {
			return errorFrame(id, 1, "Invalid value type: expected array for params")
		}
	}
	switch method {
	case "SUBSCRIBE", "UNSUBSCRIBE":
		names := make([]string, len(params))
		topics := make([]*topic, len(params))
		for i, p := range params {
			if err := json.Unmarshal(p, &names[i]); err != nil {
				return errorFrame(id, 2, fmt.Sprintf("Invalid request: params[%d] must be a stream name string", i))
			}
			t, err := s.resolve(names[i], c.area)
			if err != nil {
				return errorFrame(id, 2, "Invalid request: "+err.Error())
			}
			topics[i] = t
		}
		if method == "UNSUBSCRIBE" {
			for i, t := range topics {
				s.unsubscribe(c, t, names[i])
			}
			return replyFrame(id, []byte("null"))
		}
		if s.faults.takeRefusal() {
			s.stats.fault("refuse-subscribe")
			return errorFrame(id, 2, "Invalid request: subscription refused (injected fault)")
		}
		c.mu.Lock()
		have := len(c.subs)
		c.mu.Unlock()
		if have+len(names) > s.cfg.MaxStreamsPerConn {
			return errorFrame(id, 2, fmt.Sprintf("Invalid request: too many streams: %d subscribed, %d asked, at most %d per connection", have, len(names), s.cfg.MaxStreamsPerConn))
		}
		for i, t := range topics {
			s.subscribe(c, t, names[i])
		}
		return replyFrame(id, []byte("null"))
	case "LIST_SUBSCRIPTIONS":
		c.mu.Lock()
		list := make([]string, len(c.subs))
		for i, sb := range c.subs {
			list[i] = sb.stream
		}
		c.mu.Unlock()
		b, _ := json.Marshal(list)
		return replyFrame(id, b)
	case "GET_PROPERTY":
		if len(params) != 1 || string(params[0]) != `"combined"` {
			return errorFrame(id, 2, "Invalid request: unknown property")
		}
		return replyFrame(id, strconv.AppendBool(nil, c.combined.Load()))
	case "SET_PROPERTY":
		var v bool
		if len(params) != 2 || string(params[0]) != `"combined"` || json.Unmarshal(params[1], &v) != nil {
			return errorFrame(id, 2, `Invalid request: expected ["combined", true|false]`)
		}
		c.combined.Store(v)
		return replyFrame(id, []byte("null"))
	}
	return errorFrame(id, 2, fmt.Sprintf("Invalid request: unknown variant %s, expected one of SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY", method))
}

// validID accepts what Binance accepts: an int64, a string of up to 36
// alphanumerics, or null.
func validID(id json.RawMessage) bool {
	if string(id) == "null" {
		return true
	}
	if id[0] == '"' {
		var s string
		if json.Unmarshal(id, &s) != nil || len(s) > 36 {
			return false
		}
		for _, r := range s {
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
		return true
	}
	_, err := strconv.ParseInt(string(id), 10, 64)
	return err == nil
}

func replyFrame(id, result []byte) []byte {
	b := append([]byte(`{"result":`), result...)
	b = append(b, `,"id":`...)
	return append(append(b, id...), '}')
}

func errorFrame(id []byte, code int, msg string) []byte {
	if id == nil {
		id = []byte("null")
	}
	m, _ := json.Marshal(msg)
	b := fmt.Appendf(nil, `{"error":{"code":%d,"msg":%s},"id":`, code, m)
	return append(append(b, id...), '}')
}

// shutdownEvent builds the serverShutdown event for a connection.
func (s *Server) shutdownEvent(c *conn) []byte {
	ev := fmt.Appendf(nil, `{"e":"serverShutdown","E":%d}`, s.clock.now())
	if c.combined.Load() {
		return wrap(nil, "!serverShutdown", ev)
	}
	return ev
}
