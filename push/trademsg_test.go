package push_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/push"
	"github.com/orderflow/orderflow/service"
)

// TestTradeMessageMatchesJSON sends every real trade of the recording, and
// a few made-up edge cases, through the hub and compares each trade
// message, byte for byte, with what encoding/json makes of the
// client.Message the hub documents: the hand-written encoder of the
// trade path is only a faster way to the same bytes.
func TestTradeMessageMatchesJSON(t *testing.T) {
	trades := recordedTrades(t)
	trades = append(trades,
		market.Trade{Symbol: "BTCUSDT", ID: 1, Price: fixed.MustParse("0.00000001"), Qty: fixed.MustParse("0.00000001")},
		market.Trade{Symbol: "BTCUSDT", ID: 2, Price: fixed.MustParse("92233720368.54775807"), Qty: fixed.MustParse("92233720368.54775807"), BuyerMaker: true},
		market.Trade{Symbol: "BTCUSDT", ID: 3, Price: fixed.MustParse("-5.5"), Qty: fixed.MustParse("2")},
		market.Trade{Symbol: "BTC<USDT>", ID: 4, Price: fixed.MustParse("1"), Qty: fixed.MustParse("1")}, // needs escaping: the marshal path
		market.Trade{Symbol: "", ID: 5, Price: fixed.MustParse("1"), Qty: fixed.MustParse("0")},
	)
	h, stop := newHub(t, push.Options{Queue: len(trades) + 1, Inbox: len(trades) + 1, MaxBehind: time.Hour})
	defer stop()
	sub, err := h.Subscribe(nil, push.Trades)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range trades {
		h.Publish(service.Event{Symbol: "BTCUSDT", Trade: &trades[i]})
	}
	for i := range trades {
		var got []byte
		select {
		case got = <-sub.C():
		case <-time.After(10 * time.Second):
			t.Fatalf("trade %d of %d: no message", i, len(trades))
		}
		want, err := json.Marshal(client.Message{Type: "trade", Symbol: "BTCUSDT", Data: client.FromTrade(&trades[i])})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("trade %d (%+v):\n got %s\nwant %s", i, trades[i], got, want)
		}
	}
	if st := h.Stats(); st.Dropped != 0 || st.InboxDropped != 0 {
		t.Fatalf("dropped: %+v", st)
	}
}
