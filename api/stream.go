package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/push"
	"github.com/orderflow/orderflow/service"
)

// subscribe reads ?symbols=&topics= and subscribes to the hub. Symbols
// must be streamed ones (empty: all); topics default to all.
func (s *Server) subscribe(r *http.Request) (*push.Sub, error) {
	v := r.URL.Query()
	if err := checkParams(v, "symbols", "topics"); err != nil {
		return nil, err
	}
	topics, err := push.ParseTopics(v.Get("topics"))
	if err != nil {
		return nil, badRequest("topics %q: want a comma-separated list of trades, large, bars, book, signals", v.Get("topics"))
	}
	var syms []string
	if list := v.Get("symbols"); list != "" {
		have := s.svc.Symbols()
		for _, sym := range strings.Split(list, ",") {
			sym = strings.ToUpper(strings.TrimSpace(sym))
			if !slices.Contains(have, sym) {
				return nil, fmt.Errorf("%w: %s", service.ErrUnknownSymbol, sym)
			}
			syms = append(syms, sym)
		}
	}
	return s.hub.Subscribe(syms, topics)
}

func droppedMessage(n int64) []byte {
	b, _ := json.Marshal(client.Message{Type: "dropped", Count: n})
	return b
}

// sse streams push messages as Server-Sent Events: one "data:" line of
// JSON per message, a comment line as keep-alive.
func (s *Server) sse(w http.ResponseWriter, r *http.Request) {
	sub, err := s.subscribe(r)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold events back
	w.WriteHeader(http.StatusOK)
	write := func(parts ...[]byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	if write([]byte(": connected\n\n")) != nil {
		return
	}
	keep := time.NewTicker(s.opts.KeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.Done():
			if sub.Kicked() {
				// One last word, best effort and within a second: the
				// client is behind anyway, and a full send buffer must not
				// hold the handler for the whole WriteTimeout.
				_ = rc.SetWriteDeadline(time.Now().Add(min(time.Second, s.opts.WriteTimeout)))
				_, _ = w.Write([]byte("data: "))
				_, _ = w.Write(droppedMessage(sub.TakeDropped()))
				_, _ = w.Write([]byte("\n\n"))
				_ = rc.Flush()
				// Close the connection rather than end the response and
				// leave a keep-alive connection to a client that does not read.
				panic(http.ErrAbortHandler)
			}
			return
		case <-keep.C:
			if write([]byte(": ping\n\n")) != nil {
				return
			}
		case msg := <-sub.C():
			if n := sub.TakeDropped(); n > 0 {
				if write([]byte("data: "), droppedMessage(n), []byte("\n\n")) != nil {
					return
				}
			}
			if write([]byte("data: "), msg, []byte("\n\n")) != nil {
				return
			}
			sub.Wrote()
		}
	}
}

// websocket streams push messages over a WebSocket, one JSON text message
// each. The client sends nothing; what it sends closes the connection.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	sub, err := s.subscribe(r)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	defer sub.Close()
	var patterns []string
	for _, o := range s.opts.CORSOrigins {
		if o == "*" {
			patterns = append(patterns, "*")
		} else if _, host, ok := strings.Cut(o, "://"); ok {
			patterns = append(patterns, host)
		}
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: patterns})
	if err != nil {
		return // Accept answered the client
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context())
	// Messages are written without a context: with one, the websocket
	// library arms a timer and an AfterFunc for every write, a few
	// allocations per trade on the push path. Instead one watchdog timer,
	// reset for each write, closes a connection whose write takes longer
	// than WriteTimeout, and ctx's end closes it as the write's context
	// did. The result is the same: the write fails and the handler returns.
	closeOnDone := context.AfterFunc(ctx, func() { _ = c.CloseNow() })
	defer closeOnDone()
	watchdog := time.AfterFunc(time.Hour, func() { _ = c.CloseNow() })
	watchdog.Stop()
	defer watchdog.Stop()
	write := func(b []byte) error {
		watchdog.Reset(s.opts.WriteTimeout)
		err := c.Write(context.Background(), websocket.MessageText, b)
		if !watchdog.Stop() && err == nil {
			err = fmt.Errorf("api: push write: no progress within %v", s.opts.WriteTimeout)
		}
		return err
	}
	keep := time.NewTicker(s.opts.KeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done():
			if sub.Kicked() {
				return // CloseNow: a close handshake would wait on a client that does not read
			}
			closeOnDone() // the close handshake ends ctx, which must not cut it
			_ = c.Close(websocket.StatusGoingAway, "server stopping")
			return
		case <-keep.C:
			pctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		case msg := <-sub.C():
			if n := sub.TakeDropped(); n > 0 {
				if write(droppedMessage(n)) != nil {
					return
				}
			}
			if write(msg) != nil {
				return
			}
			sub.Wrote()
		}
	}
}
