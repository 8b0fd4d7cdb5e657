package binance

import (
	"errors"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/market"
)

func TestStreamNames(t *testing.T) {
	if got := StreamName("BTCUSDT", ChannelDepth100ms); got != "btcusdt@depth@100ms" {
		t.Errorf("StreamName = %q", got)
	}
	if got := StreamName("ETHUSDT", ChannelAggTrade); got != "ethusdt@aggTrade" {
		t.Errorf("StreamName = %q", got)
	}
	for _, c := range []struct {
		name, sym, ch string
		ok            bool
	}{
		{"btcusdt@depth@100ms", "BTCUSDT", "depth@100ms", true},
		{"btcusdt@aggTrade", "BTCUSDT", "aggTrade", true},
		{"1000shibusdt@bookTicker", "1000SHIBUSDT", "bookTicker", true},
		{"btcusdt_240927@trade", "BTCUSDT_240927", "trade", true},
		{"!bookTicker", "", "", false},
		{"!forceOrder@arr", "", "", false},
		{"btcusdt", "", "", false},
		{"btcusdt@", "", "", false},
		{"@trade", "", "", false},
	} {
		sym, ch, ok := ParseStreamName(c.name)
		if sym != c.sym || ch != c.ch || ok != c.ok {
			t.Errorf("ParseStreamName(%q) = %q %q %v, want %q %q %v", c.name, sym, ch, ok, c.sym, c.ch, c.ok)
		}
	}
}

func TestStreamPath(t *testing.T) {
	for _, c := range []struct {
		kind    market.Kind
		channel string
		want    string
	}{
		{market.Spot, ChannelDepth100ms, ""},
		{market.Spot, ChannelAggTrade, ""},
		{market.USDM, ChannelDepth100ms, "/public"},
		{market.USDM, ChannelDepth, "/public"},
		{market.USDM, "depth@0ms", "/public"},
		{market.USDM, "depth20@100ms", "/public"},
		{market.USDM, ChannelBookTicker, "/public"},
		{market.USDM, "!bookTicker", "/public"},
		{market.USDM, ChannelAggTrade, "/market"},
		{market.USDM, ChannelTrade, "/market"},
		{market.USDM, "markPrice@1s", "/market"},
		{market.USDM, "forceOrder", "/market"},
		{market.USDM, "kline_1m", "/market"},
	} {
		if got := StreamPath(c.kind, c.channel); got != c.want {
			t.Errorf("StreamPath(%v, %q) = %q, want %q", c.kind, c.channel, got, c.want)
		}
	}
}

func TestEndpoints(t *testing.T) {
	spot, usdm := DefaultEndpoints(market.Spot), DefaultEndpoints(market.USDM)
	if spot.WS != "wss://stream.binance.com:9443" || spot.REST != "https://api.binance.com" ||
		usdm.WS != "wss://fstream.binance.com" || usdm.REST != "https://fapi.binance.com" {
		t.Errorf("%+v %+v", spot, usdm)
	}
	for _, c := range []struct{ got, want string }{
		{spot.RawStreamURL("btcusdt@aggTrade"), "wss://stream.binance.com:9443/ws/btcusdt@aggTrade"},
		{usdm.RawStreamURL("btcusdt@depth@100ms"), "wss://fstream.binance.com/public/ws/btcusdt@depth@100ms"},
		{usdm.RawStreamURL("btcusdt@aggTrade"), "wss://fstream.binance.com/market/ws/btcusdt@aggTrade"},
		{spot.DepthURL("btcusdt", 5000), "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000"},
		{usdm.DepthURL("BTCUSDT", 300), "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=500"},
		{spot.AggTradesURL("BTCUSDT", 3800397495, 5000), "https://api.binance.com/api/v3/aggTrades?symbol=BTCUSDT&fromId=3800397495&limit=1000"},
	} {
		if c.got != c.want {
			t.Errorf("got %s\nwant %s", c.got, c.want)
		}
	}
	url, err := spot.CombinedStreamURL("btcusdt@aggTrade", "btcusdt@depth@100ms")
	if err != nil || url != "wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/btcusdt@depth@100ms" {
		t.Errorf("%s %v", url, err)
	}
	url, err = usdm.CombinedStreamURL("btcusdt@depth@100ms", "ethusdt@bookTicker")
	if err != nil || url != "wss://fstream.binance.com/public/stream?streams=btcusdt@depth@100ms/ethusdt@bookTicker" {
		t.Errorf("%s %v", url, err)
	}
	if _, err := usdm.CombinedStreamURL("btcusdt@depth@100ms", "btcusdt@aggTrade"); !errors.Is(err, ErrStreams) {
		t.Errorf("mixed /public and /market: %v", err)
	}
	many := make([]string, MaxStreamsPerConn+1)
	for i := range many {
		many[i] = "btcusdt@aggTrade"
	}
	if _, err := spot.CombinedStreamURL(many...); !errors.Is(err, ErrStreams) {
		t.Errorf("%d streams: %v", len(many), err)
	}
	if _, err := spot.CombinedStreamURL(many[:MaxStreamsPerConn]...); err != nil {
		t.Errorf("%d streams: %v", MaxStreamsPerConn, err)
	}
	if _, err := spot.CombinedStreamURL(); !errors.Is(err, ErrStreams) {
		t.Errorf("no streams: %v", err)
	}
}

func TestRESTPathsAndLimits(t *testing.T) {
	if p := RESTPaths(market.Spot); p != (RESTPathSet{"/api/v3/depth", "/api/v3/aggTrades", "/api/v3/exchangeInfo"}) {
		t.Errorf("spot %+v", p)
	}
	if p := RESTPaths(market.USDM); p != (RESTPathSet{"/fapi/v1/depth", "/fapi/v1/aggTrades", "/fapi/v1/exchangeInfo"}) {
		t.Errorf("usdm %+v", p)
	}
	for _, c := range []struct {
		kind                 market.Kind
		limit, valid, weight int
	}{
		{market.Spot, 0, 100, 5},
		{market.Spot, 1, 1, 5},
		{market.Spot, 100, 100, 5},
		{market.Spot, 101, 101, 25},
		{market.Spot, 500, 500, 25},
		{market.Spot, 501, 501, 50},
		{market.Spot, 1000, 1000, 50},
		{market.Spot, 1001, 1001, 250},
		{market.Spot, 5000, 5000, 250},
		{market.Spot, 9000, 5000, 250},
		{market.USDM, 0, 500, 10},
		{market.USDM, 1, 5, 2},
		{market.USDM, 5, 5, 2},
		{market.USDM, 6, 10, 2},
		{market.USDM, 20, 20, 2},
		{market.USDM, 21, 50, 2},
		{market.USDM, 51, 100, 5},
		{market.USDM, 100, 100, 5},
		{market.USDM, 101, 500, 10},
		{market.USDM, 501, 1000, 20},
		{market.USDM, 1000, 1000, 20},
		{market.USDM, 5000, 1000, 20},
	} {
		if v := ValidDepthLimit(c.kind, c.limit); v != c.valid {
			t.Errorf("ValidDepthLimit(%v, %d) = %d, want %d", c.kind, c.limit, v, c.valid)
		}
		if w := DepthWeight(c.kind, c.limit); w != c.weight {
			t.Errorf("DepthWeight(%v, %d) = %d, want %d", c.kind, c.limit, w, c.weight)
		}
	}
	if AggTradesWeight(market.Spot) != 4 || AggTradesWeight(market.USDM) != 20 {
		t.Error("AggTradesWeight")
	}
	if ControlMsgsPerSecond(market.Spot) != 5 || ControlMsgsPerSecond(market.USDM) != 10 || MaxStreamsPerConn != 1024 || SpotConnAttemptsPer5Min != 300 {
		t.Error("limits")
	}
}

// TestRequestDecodesAsJSON: a request is valid JSON that encoding/json reads back.
func TestRequestDecodesAsJSON(t *testing.T) {
	req := AppendRequest(nil, MethodSubscribe, []string{`we"ird`}, 9)
	ref, err := refUnmarshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if ref["method"] != "SUBSCRIBE" || ref["params"].([]any)[0] != `we"ird` || !strings.Contains(string(req), `"id":9`) {
		t.Errorf("%s", req)
	}
}
