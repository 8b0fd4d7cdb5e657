package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/orderflow/orderflow/binance"
)

// depthFrames reads n depth events from a raw /ws depth connection.
func depthFrames(t *testing.T, c *websocket.Conn, n int) ([][]byte, []binance.Message) {
	t.Helper()
	dec := binance.NewDecoder()
	var raw [][]byte
	var msgs []binance.Message
	for range n {
		b := readMsg(t, c, 5*time.Second)
		var m binance.Message
		if err := dec.Decode(b, &m); err != nil || m.Kind != binance.KindDepthUpdate {
			t.Fatalf("decode %v %s: %.100s", err, m.Kind, b)
		}
		m.Depth.Bids, m.Depth.Asks = nil, nil // the decoder reuses them
		raw = append(raw, b)
		msgs = append(msgs, m)
	}
	return raw, msgs
}

// TestEventFaults: skipped, duplicated and reordered depth events reach
// the client as such, while the simulator's own book stays right.
func TestEventFaults(t *testing.T) {
	rec := mustLoad(t, spot10)
	var zil *symData
	for _, sd := range rec.syms {
		if sd.name == "ZILUSDT" {
			zil = sd
		}
	}
	cases := []struct {
		name  string
		arm   func(f *Faults) error
		check func(t *testing.T, raw [][]byte, m []binance.Message)
	}{
		{"SkipDepthMakesGap", func(f *Faults) error { return f.SkipDepth("ZILUSDT") }, func(t *testing.T, raw [][]byte, m []binance.Message) {
			if m[0].Depth.FirstID != zil.depth[1].U || m[0].Depth.FirstID == zil.bridge+1 {
				t.Fatalf("first U %d, want %d (a gap after %d)", m[0].Depth.FirstID, zil.depth[1].U, zil.bridge)
			}
		}},
		{"DuplicateSendsTwice", func(f *Faults) error { return f.Duplicate("ZILUSDT", "depth", 1) }, func(t *testing.T, raw [][]byte, m []binance.Message) {
			if !bytes.Equal(raw[0], raw[1]) || m[2].Depth.FirstID != m[1].Depth.FinalID+1 {
				t.Fatalf("frames 0,1 differ or 2 does not follow: %d %d", m[1].Depth.FinalID, m[2].Depth.FirstID)
			}
		}},
		{"ReorderSwapsTwo", func(f *Faults) error { return f.Reorder("ZILUSDT", "depth") }, func(t *testing.T, raw [][]byte, m []binance.Message) {
			if m[0].Depth.FinalID != zil.depth[1].u || m[1].Depth.FinalID != zil.depth[0].u || m[2].Depth.FinalID != zil.depth[2].u {
				t.Fatalf("order u %d %d %d", m[0].Depth.FinalID, m[1].Depth.FinalID, m[2].Depth.FinalID)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustStart(t, Config{Recording: rec, Speed: -1, Paused: true, SendQueue: 4})
			c := mustDial(t, s, "/ws/zilusdt@depth@100ms")
			if err := tc.arm(s.Faults()); err != nil {
				t.Fatal(err)
			}
			s.Play()
			raw, m := depthFrames(t, c, 3)
			tc.check(t, raw, m)
			if len(s.Stats().Faults) != 1 {
				t.Fatalf("faults counted: %v", s.Stats().Faults)
			}
		})
	}
	t.Run("UnknownSymbol", func(t *testing.T) {
		s := mustStart(t, Config{Recording: rec, Paused: true})
		if err := s.Faults().SkipDepth("BTCUSDT"); err == nil {
			t.Fatal("no error for an unknown symbol")
		}
	})
}

// TestConnectionFaults: each way of ending or breaking a connection is
// what the client sees.
func TestConnectionFaults(t *testing.T) {
	rec := mustLoad(t, spot10)
	readErr := func(c *websocket.Conn) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return err
			}
		}
	}
	cases := []struct {
		name  string
		act   func(f *Faults) int
		check func(t *testing.T, err error)
	}{
		{"DropClean", func(f *Faults) int { return f.DropAll(DropClean) }, func(t *testing.T, err error) {
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("err %v, want close 1001", err)
			}
		}},
		{"DropReset", func(f *Faults) int { return f.DropAll(DropReset) }, func(t *testing.T, err error) {
			if websocket.CloseStatus(err) != -1 {
				t.Fatalf("err %v, want no close frame", err)
			}
		}},
		{"DropMidFrame", func(f *Faults) int { return f.DropAll(DropMidFrame) }, func(t *testing.T, err error) {
			if websocket.CloseStatus(err) != -1 || !strings.Contains(err.Error(), "EOF") {
				t.Fatalf("err %v, want an EOF mid-frame", err)
			}
		}},
		{"ServerShutdown", func(f *Faults) int { return f.ServerShutdown(50 * time.Millisecond) }, func(t *testing.T, err error) {
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("err %v, want close 1001 after serverShutdown", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustStart(t, Config{Recording: rec, Paused: true})
			c := mustDial(t, s, "/stream?streams=zilusdt@aggTrade")
			if n := tc.act(s.Faults()); n != 1 {
				t.Fatalf("reached %d connections", n)
			}
			if tc.name == "ServerShutdown" {
				e := mustEnvelope(t, readMsg(t, c, 5*time.Second))
				if e.Stream != "!serverShutdown" || !bytes.Contains(e.Data, []byte(`"e":"serverShutdown"`)) {
					t.Fatalf("got %s %s", e.Stream, e.Data)
				}
			}
			tc.check(t, readErr(c))
			waitFor(t, 5*time.Second, "connection released", func() bool { return s.Stats().ConnsOpen == 0 })
		})
	}
	t.Run("HalfOpen", func(t *testing.T) {
		s := mustStart(t, Config{Recording: rec, Speed: 20, Loop: true})
		c := mustDial(t, s, "/ws/zilusdt@bookTicker")
		var frames atomic.Int64
		go func() {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
				frames.Add(1)
			}
		}()
		waitFor(t, 5*time.Second, "first frames", func() bool { return frames.Load() > 2 })
		s.Faults().HalfOpen()
		time.Sleep(20 * time.Millisecond)
		n := frames.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := c.Ping(ctx); err == nil {
			t.Fatal("a half-open server answered a ping")
		}
		if got := frames.Load(); got > n+1 {
			t.Fatalf("%d frames arrived after half-open", got-n)
		}
		if s.Stats().FramesDropped == 0 {
			t.Fatal("no frame counted as dropped")
		}
	})
}

// TestBadFrames: each broken frame reaches the client as described.
func TestBadFrames(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, spot10), Paused: true})
	cases := []struct {
		kind  BadFrame
		size  int
		check func(t *testing.T, b []byte, err error)
	}{
		{Malformed, 0, func(t *testing.T, b []byte, err error) {
			if err != nil || json.Valid(b) {
				t.Fatalf("got valid JSON or error %v: %s", err, b)
			}
		}},
		{Truncated, 0, func(t *testing.T, b []byte, err error) {
			if err != nil || json.Valid(b) || !bytes.HasPrefix(b, []byte(`{"stream":`)) {
				t.Fatalf("got %v %s", err, b)
			}
		}},
		{UnknownEvent, 0, func(t *testing.T, b []byte, err error) {
			if err != nil || !json.Valid(b) || !bytes.Contains(b, []byte(`"e":"simUnknownEvent"`)) {
				t.Fatalf("got %v %s", err, b)
			}
		}},
		{Oversized, 64 << 10, func(t *testing.T, b []byte, err error) {
			if err == nil || !strings.Contains(err.Error(), "message too big") {
				t.Fatalf("a 64 KiB frame under a 32 KiB read limit: %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.kind.String(), func(t *testing.T) {
			c := mustDial(t, s, "/stream?streams=zilusdt@aggTrade")
			c.SetReadLimit(32 << 10)
			if n := s.Faults().SendBadFrame(tc.kind, tc.size); n < 1 {
				t.Fatal("no connection reached")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, b, err := c.Read(ctx)
			tc.check(t, b, err)
			c.CloseNow()
			waitFor(t, 5*time.Second, "connection released", func() bool { return s.Stats().ConnsOpen == 0 })
		})
	}
}

// TestRefuseSubscribe: the next SUBSCRIBE fails, the one after succeeds.
func TestRefuseSubscribe(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, spot10), Paused: true, ControlRate: 100})
	c := mustDial(t, s, "/ws")
	s.Faults().RefuseSubscribe(1)
	send(t, c, `{"method":"SUBSCRIBE","params":["zilusdt@aggTrade"],"id":1}`)
	if got := string(readMsg(t, c, 5*time.Second)); !strings.HasPrefix(got, `{"error":{"code":2,`) || !strings.HasSuffix(got, `"id":1}`) {
		t.Fatalf("got %s", got)
	}
	send(t, c, `{"method":"SUBSCRIBE","params":["zilusdt@aggTrade"],"id":2}`)
	if got := string(readMsg(t, c, 5*time.Second)); got != `{"result":null,"id":2}` {
		t.Fatalf("got %s", got)
	}
}

// TestRESTFaults: injected statuses, delays and hangs.
func TestRESTFaults(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, spot10), Paused: true})
	const path = "/api/v3/depth?symbol=ZILUSDT&limit=5"
	for _, tc := range []struct {
		name   string
		status int
		retry  string
	}{{"TooMany", 429, "3"}, {"Banned", 418, "3"}, {"Unavailable", 503, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			retry := 3 * time.Second
			if tc.retry == "" {
				retry = 0
			}
			s.Faults().FailREST(tc.status, 2, retry)
			for i := range 3 {
				resp, body := httpGet(t, s, path)
				want := tc.status
				if i == 2 {
					want = 200
				}
				if resp.StatusCode != want {
					t.Fatalf("request %d: %d %s, want %d", i, resp.StatusCode, body, want)
				}
				if i < 2 && resp.Header.Get("Retry-After") != tc.retry {
					t.Fatalf("Retry-After %q, want %q", resp.Header.Get("Retry-After"), tc.retry)
				}
			}
		})
	}
	t.Run("Delay", func(t *testing.T) {
		s.Faults().DelayREST(150 * time.Millisecond)
		defer s.Faults().DelayREST(0)
		start := time.Now()
		if resp, _ := httpGet(t, s, path); resp.StatusCode != 200 || time.Since(start) < 150*time.Millisecond {
			t.Fatalf("%d after %v", resp.StatusCode, time.Since(start))
		}
	})
	t.Run("HangUntilReleased", func(t *testing.T) {
		release := s.Faults().HangREST()
		_, base := s.URL()
		cl := &http.Client{Timeout: 100 * time.Millisecond}
		if resp, err := cl.Get(base + path); err == nil {
			resp.Body.Close()
			t.Fatal("a hung request was answered")
		}
		release()
		if resp, _ := httpGet(t, s, path); resp.StatusCode != 200 {
			t.Fatalf("after release: %d", resp.StatusCode)
		}
		cl.CloseIdleConnections()
	})
	st := s.Stats()
	if st.Faults["rest-429"] != 2 || st.Faults["rest-418"] != 2 || st.Faults["rest-503"] != 2 || st.REST["/api/v3/depth"][200] < 4 {
		t.Fatalf("stats %v %v", st.Faults, st.REST)
	}
}
