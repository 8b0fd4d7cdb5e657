package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

// TestSubscribeMethods covers SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS
// and the error replies.
func TestSubscribeMethods(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, spot10), Speed: -1, Paused: true, MaxStreamsPerConn: 3, ControlRate: 1000})
	c := mustDial(t, s, "/ws")
	cases := []struct {
		name, req, want string
	}{
		{"Subscribe", `{"method":"SUBSCRIBE","params":["zilusdt@aggTrade","ZILUSDT@bookTicker"],"id":1}`, `{"result":null,"id":1}`},
		{"List", `{"method":"LIST_SUBSCRIPTIONS","id":"ab12"}`, `{"result":["zilusdt@aggTrade","ZILUSDT@bookTicker"],"id":"ab12"}`},
		{"UnknownStream", `{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":2}`, `"code":2`},
		{"TooManyStreams", `{"method":"SUBSCRIBE","params":["zilusdt@depth","dentusdt@depth"],"id":3}`, `too many streams`},
		{"BadMethod", `{"method":"SUBSCRIBEX","params":[],"id":4}`, `{"error":{"code":2,"msg":"Invalid request: unknown variant SUBSCRIBEX`},
		{"InvalidJSON", `{"method":`, `{"error":{"code":3,`},
		{"BadID", `{"method":"LIST_SUBSCRIPTIONS","id":"a-b"}`, `"code":2,"msg":"Invalid request: request ID`},
		{"UnknownProperty", `{"method":"LIST_SUBSCRIPTIONS","id":5,"x":1}`, `{"error":{"code":0,"msg":"Unknown property"},"id":5}`},
		{"Unsubscribe", `{"method":"UNSUBSCRIBE","params":["ZILUSDT@bookTicker"],"id":6}`, `{"result":null,"id":6}`},
		{"ListAfter", `{"method":"LIST_SUBSCRIPTIONS","id":7}`, `{"result":["zilusdt@aggTrade"],"id":7}`},
		{"GetCombined", `{"method":"GET_PROPERTY","params":["combined"],"id":8}`, `{"result":false,"id":8}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			send(t, c, tc.req)
			got := string(readMsg(t, c, 5*time.Second))
			if !strings.Contains(got, tc.want) {
				t.Fatalf("reply %s, want it to contain %s", got, tc.want)
			}
		})
	}
	t.Run("SubscribedStreamFlows", func(t *testing.T) {
		s.Play()
		var ev struct {
			E    string `json:"e"`
			Time int64  `json:"E"` // declared so "E" cannot land in e
			S    string `json:"s"`
		}
		if err := json.Unmarshal(readMsg(t, c, 5*time.Second), &ev); err != nil || ev.E != "aggTrade" || ev.S != "ZILUSDT" {
			t.Fatalf("first frame %+v, %v", ev, err)
		}
	})
}

// TestPathRules covers the refused WebSocket paths.
func TestPathRules(t *testing.T) {
	spot := mustStart(t, Config{Recording: mustLoad(t, spot10), Paused: true, MaxStreamsPerConn: 2})
	usdm := mustStart(t, Config{Recording: mustLoad(t, usdm5), Paused: true})
	cases := []struct {
		name   string
		s      *Server
		path   string
		status int // 0: accepted
	}{
		{"SpotRawStream", spot, "/ws/zilusdt@depth@100ms", 0},
		{"SpotUnknownStream", spot, "/ws/btcusdt@trade", 400},
		{"SpotTooManyStreams", spot, "/stream?streams=zilusdt@depth/zilusdt@aggTrade/zilusdt@bookTicker", 400},
		{"USDMRootRetired", usdm, "/ws/neousdt@aggTrade", 404},
		{"USDMTradeOnPublic", usdm, "/public/ws/neousdt@aggTrade", 400},
		{"USDMDepthOnMarket", usdm, "/market/ws/neousdt@depth", 400},
		{"USDMTradeOnMarket", usdm, "/market/ws/neousdt@aggTrade", 0},
		{"USDMDepthOnPublic", usdm, "/public/stream?streams=neousdt@depth@100ms/batusdt@bookTicker", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws, _ := tc.s.URL()
			c, resp, err := websocket.Dial(t.Context(), ws+tc.path, nil)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.CloseNow()
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("dial succeeded")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("status %v, want %d (%v)", resp, tc.status, err)
			}
		})
	}
}

// TestPingPong: a client that never reads sends no pongs and is
// disconnected after PongTimeout; a reading client stays.
func TestPingPong(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, spot10), Paused: true, PingInterval: 30 * time.Millisecond, PongTimeout: 60 * time.Millisecond, ControlRate: 1000})
	silent := mustDial(t, s, "/ws")
	alive := mustDial(t, s, "/ws")
	ctx := alive.CloseRead(t.Context()) // reads (and so answers pings) in the background
	waitFor(t, 5*time.Second, "pong-timeout disconnect", func() bool { return s.Stats().ServerClosed["pong-timeout"] == 1 })
	waitFor(t, 5*time.Second, "silent conn released", func() bool { return s.Stats().ConnsOpen == 1 })
	time.Sleep(200 * time.Millisecond) // several ping intervals
	if err := ctx.Err(); err != nil {
		t.Fatalf("reading client was disconnected: %v", err)
	}
	if n := s.Stats().ServerClosed["pong-timeout"]; n != 1 {
		t.Fatalf("pong timeouts = %d, want 1", n)
	}
	_ = silent
}

// TestControlRateLimit: more than ControlRate messages per second close
// the connection with a policy-violation close frame.
func TestControlRateLimit(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, spot10), Paused: true, ControlRate: 5})
	c := mustDial(t, s, "/ws")
	for i := range 8 {
		if err := c.Write(t.Context(), websocket.MessageText, []byte(`{"method":"LIST_SUBSCRIPTIONS","id":1}`)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	var err error
	for err == nil {
		_, _, err = c.Read(t.Context())
	}
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("read error %v, want close 1008", err)
	}
	if n := s.Stats().ServerClosed["control-rate"]; n != 1 {
		t.Fatalf("control-rate closes = %d", n)
	}
}

// TestRESTWeight: the weight header counts the documented depth weight and
// the budget's end answers 429 with Retry-After.
func TestRESTWeight(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, spot10), Paused: true, WeightLimit: 110, WeightWindow: time.Hour})
	steps := []struct {
		name, path string
		status     int
		used       string
	}{
		{"Depth1000", "/api/v3/depth?symbol=ZILUSDT&limit=1000", 200, "50"},
		{"Depth100", "/api/v3/depth?symbol=ZILUSDT", 200, "55"},
		{"Depth500", "/api/v3/depth?symbol=ZILUSDT&limit=500", 200, "80"},
		{"OverBudget", "/api/v3/depth?symbol=ZILUSDT&limit=1000", 429, "80"},
		{"Ping", "/api/v3/ping", 200, "81"},
		{"InvalidSymbol", "/api/v3/depth?symbol=NOPE", 400, "86"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, body := httpGet(t, s, st.path)
			if resp.StatusCode != st.status || resp.Header.Get("X-MBX-USED-WEIGHT-1M") != st.used {
				t.Fatalf("%d weight %s (%s), want %d weight %s", resp.StatusCode, resp.Header.Get("X-MBX-USED-WEIGHT-1M"), body, st.status, st.used)
			}
			if st.status == 429 && (resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":-1003`)) {
				t.Fatalf("429 without Retry-After or code: %v %s", resp.Header, body)
			}
			if st.status == 400 && string(body) != `{"code":-1121,"msg":"Invalid symbol."}` {
				t.Fatalf("body %s", body)
			}
		})
	}
	if n := s.Stats().REST["/api/v3/depth"][429]; n != 1 {
		t.Fatalf("stats: %d 429s", n)
	}
}

// TestExchangeInfo: symbols of the recording, tick and step sizes inferred.
func TestExchangeInfo(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, "hft-usdm-btcusdt-20240808.txt.gz"), Paused: true, Fanout: 2})
	resp, body := httpGet(t, s, "/fapi/v1/exchangeInfo")
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	var info struct {
		Symbols []struct {
			Symbol  string
			Filters []map[string]any
		}
	}
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Symbols) != 2 || info.Symbols[0].Symbol != "BTCUSDT" || info.Symbols[1].Symbol != "BTC0001USDT" {
		t.Fatalf("symbols %+v", info.Symbols)
	}
	// Binance's real BTCUSDT perpetual filters: tickSize 0.10, stepSize 0.001.
	f := info.Symbols[0].Filters
	if f[0]["tickSize"] != "0.1" || f[1]["stepSize"] != "0.001" {
		t.Fatalf("filters %v", f)
	}
}

// TestCloseWithLiveConnections: Close returns promptly with connections
// open (one of them not reading at all) and leaves no goroutine behind.
func TestCloseWithLiveConnections(t *testing.T) {
	defer goleak.VerifyNone(t)
	s, err := New(Config{Recording: mustLoad(t, spot10), Speed: 50})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var conns []*websocket.Conn
	for _, p := range []string{"/stream?streams=dentusdt@depth@100ms/dentusdt@bookTicker", "/ws/zilusdt@aggTrade", "/ws"} {
		c := mustDial(t, s, p)
		conns = append(conns, c)
	}
	conns[0].CloseRead(t.Context())
	release := s.Faults().HangREST()
	defer release()
	_, base := s.URL()
	restDone := make(chan error, 1)
	go func() {
		resp, err := http.Get(base + "/api/v3/depth?symbol=ZILUSDT")
		if err == nil {
			resp.Body.Close()
		}
		restDone <- err
	}()
	waitFor(t, 5*time.Second, "hung REST request", func() bool { return s.Stats().Faults["rest-hang"] == 1 })
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	st := s.Stats()
	if st.ConnsOpen != 0 || st.ConnsClosed != 3 {
		t.Fatalf("after Close: %d open, %d closed", st.ConnsOpen, st.ConnsClosed)
	}
	<-restDone
	for _, c := range conns {
		c.CloseNow()
	}
	http.DefaultClient.CloseIdleConnections()
}
