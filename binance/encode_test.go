package binance

import (
	"math"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

func TestAppendDec8(t *testing.T) {
	for _, c := range []struct {
		d    fixed.Dec
		want string
	}{
		{0, "0.00000000"},
		{1, "0.00000001"},
		{fixed.MustParse("61737.63"), "61737.63000000"},
		{fixed.MustParse("-1.5"), "-1.50000000"},
		{fixed.MustParse("0.000"), "0.00000000"},
		{math.MaxInt64, "92233720368.54775807"},
		{math.MinInt64, "-92233720368.54775808"},
	} {
		got := string(AppendDec8([]byte("x"), c.d))
		if got != "x"+c.want {
			t.Errorf("AppendDec8(%d) = %q, want %q", int64(c.d), got, "x"+c.want)
		}
		if c.d != math.MinInt64 { // fixed.Parse cannot produce MinInt64
			if back, err := fixed.ParseString(c.want); err != nil || back != c.d {
				t.Errorf("Parse(%q) = %v, %v", c.want, back, err)
			}
		}
	}
}

// TestEncodeRoundTrip encodes values of every kind for both markets and
// decodes them back.
func TestEncodeRoundTrip(t *testing.T) {
	d := NewDecoder()
	dec := fixed.MustParse
	trade := market.Trade{Symbol: "BTCUSDT", ID: 3735683259, FirstID: 5723703861, LastID: 5723703870, Price: dec("61837.63"),
		Qty: dec("0.02"), Time: 1723161255342, EventTime: 1723161255343, BuyerMaker: true, Aggregated: true}
	depth := market.DepthUpdate{Symbol: "ETHUSDT", EventTime: 1721347201585, TransactTime: 1721347201533, FirstID: 4984034747463,
		FinalID: 4984034747470, PrevFinalID: 4984033952967, HasPrev: true,
		Bids: []market.Level{{Price: dec("2683.8"), Qty: dec("3.0292")}, {Price: dec("2679"), Qty: 0}},
		Asks: []market.Level{{Price: dec("2733.7"), Qty: dec("0.00000001")}}}
	ticker := market.BookTicker{Symbol: "BTCUSDT", UpdateID: 5123107839020, BidPrice: dec("61800.2"), BidQty: dec("2.507"),
		AskPrice: dec("61800.3"), AskQty: dec("2.51"), EventTime: 1723161256313, TransactTime: 1723161256312}

	for _, kind := range []market.Kind{market.Spot, market.USDM} {
		t.Run(kind.String(), func(t *testing.T) {
			var want Message
			check := func(name string, frame []byte) {
				t.Helper()
				var got Message
				env := AppendCombined(nil, want.Stream, frame)
				if err := d.Decode(env, &got); err != nil {
					t.Fatalf("%s: %v\n%s", name, err, env)
				}
				if diff := messageDiff(&want, &got); diff != "" {
					t.Errorf("%s: %s\n%s", name, diff, env)
				}
			}

			want = Message{Kind: KindAggTrade, Stream: "btcusdt@aggTrade", Event: "aggTrade", EventTime: trade.EventTime, Trade: trade}
			check("aggTrade", AppendAggTrade(nil, &trade, kind))

			raw := trade
			raw.Aggregated, raw.FirstID, raw.LastID = false, raw.ID, raw.ID
			want = Message{Kind: KindTrade, Stream: "btcusdt@trade", Event: "trade", EventTime: raw.EventTime, Trade: raw}
			check("trade", AppendTrade(nil, &raw, kind))

			u := depth
			if kind == market.Spot {
				u.TransactTime, u.PrevFinalID, u.HasPrev = 0, 0, false
			}
			want = Message{Kind: KindDepthUpdate, Stream: "ethusdt@depth@100ms", Event: "depthUpdate", EventTime: u.EventTime, Depth: u}
			check("depthUpdate", AppendDepthUpdate(nil, &depth, kind))

			tk := ticker
			want = Message{Kind: KindBookTicker, Stream: "btcusdt@bookTicker", Ticker: tk, EventTime: tk.EventTime, Event: "bookTicker"}
			if kind == market.Spot {
				want.Ticker.EventTime, want.Ticker.TransactTime, want.EventTime, want.Event = 0, 0, 0, ""
			}
			check("bookTicker", AppendBookTicker(nil, &tk, kind))

			snap := market.DepthSnapshot{LastUpdateID: 5123107852948, EventTime: 1723161256299, TransactTime: 1723161256298,
				Bids: depth.Bids, Asks: depth.Asks}
			var got market.DepthSnapshot
			if err := DecodeDepthSnapshot(AppendDepthSnapshot(nil, &snap, kind), &got); err != nil {
				t.Fatal(err)
			}
			if kind == market.Spot {
				snap.EventTime, snap.TransactTime = 0, 0
			}
			if !snapshotsEqual(&snap, &got) {
				t.Errorf("snapshot %+v, want %+v", got, snap)
			}

			trades := []market.Trade{trade, trade}
			trades[1].ID++
			trades[1].EventTime, trades[0].EventTime = 0, 0
			back, err := DecodeAggTrades(AppendAggTradesREST(nil, trades, kind), "BTCUSDT", nil)
			if err != nil || len(back) != 2 || back[0] != trades[0] || back[1] != trades[1] {
				t.Errorf("aggTrades REST: %v %+v", err, back)
			}
		})
	}
}

func TestEncodeGolden(t *testing.T) {
	trade := market.Trade{Symbol: "ZILUSDT", ID: 18938405, FirstID: 23806928, LastID: 23806928, Price: fixed.MustParse("0.21448"),
		Qty: fixed.MustParse("2062.9"), Time: 1617647603483, EventTime: 1617647603484, Aggregated: true}
	for _, c := range []struct{ name, got, want string }{
		// The real spot frame of cryptofeed-spot-10sym-20210405.txt.gz, byte for byte.
		{"SpotAggTrade", string(AppendCombined(nil, "zilusdt@aggTrade", AppendAggTrade(nil, &trade, market.Spot))), spotAggTradeFrame},
		{"USDMAggTrade", string(AppendAggTrade(nil, &trade, market.USDM)),
			`{"e":"aggTrade","E":1617647603484,"a":18938405,"s":"ZILUSDT","p":"0.21448000","q":"2062.90000000","f":23806928,"l":23806928,"T":1617647603483,"m":false}`},
		{"Reply", string(AppendReply(nil, []byte("1"), nil)), `{"result":null,"id":1}`},
		{"ListReply", string(AppendReply(nil, []byte(`"list-7"`), []byte(`["btcusdt@aggTrade","btcusdt@depth@100ms"]`))), listReplyFrame},
		{"Error", string(AppendError(nil, nil, 2, "Invalid request: property name must be a string")), errorFrame},
		{"ErrorEscapes", string(AppendError(nil, []byte("3"), -1, "a\"b\\c\n\x01")), `{"error":{"code":-1,"msg":"a\"b\\c\n\u0001"},"id":3}`},
		{"ServerShutdown", string(AppendCombined(nil, "!serverShutdown", AppendServerShutdown(nil, 1723161255308))), shutdownFrame},
		{"Subscribe", string(AppendRequest(nil, MethodSubscribe, []string{"btcusdt@aggTrade", "btcusdt@depth@100ms"}, 1)),
			`{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth@100ms"],"id":1}`},
		{"List", string(AppendRequest(nil, MethodListSubscriptions, nil, 3)), `{"method":"LIST_SUBSCRIPTIONS","id":3}`},
		{"EmptyParams", string(AppendRequest(nil, MethodUnsubscribe, []string{}, 4)), `{"method":"UNSUBSCRIBE","params":[],"id":4}`},
	} {
		if c.got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, c.got, c.want)
		}
	}
}

// TestEncodeAllocs: encoders into a buffer with room allocate nothing.
func TestEncodeAllocs(t *testing.T) {
	d := NewDecoder()
	var m Message
	if err := d.Decode([]byte(spotDepthFrame), &m); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendDepthUpdate(buf[:0], &m.Depth, market.USDM)
		buf = AppendTrade(buf, &m.Trade, market.Spot)
		buf = AppendBookTicker(buf, &m.Ticker, market.USDM)
		buf = AppendCombined(buf, "btcusdt@trade", buf[:10])
	})
	if allocs != 0 {
		t.Errorf("%v allocs", allocs)
	}
}
