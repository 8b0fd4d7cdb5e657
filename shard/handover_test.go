package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/natstest"
	"github.com/orderflow/orderflow/service"
)

func FuzzParseTradeMsgID(f *testing.F) {
	f.Add("spot", "BTCUSDT", "spot.BTCUSDT.t.3046218219")
	f.Add("usdm", "ETHUSDT", "usdm.ETHUSDT.t.1")
	f.Add("spot", "BTCUSDT", "spot.BTCUSDT.d.3046218219")
	f.Add("spot", "BTCUSDT", "spot.BTCUSDT.t.-5")
	f.Add("spot", "BTCUSDT", "spot.BTCUSDT.t.99999999999999999999")
	f.Fuzz(func(t *testing.T, mk, sym, id string) {
		k := market.Spot
		if mk == "usdm" {
			k = market.USDM
		}
		got, err := parseTradeMsgID(k, sym, id)
		if err != nil {
			return
		}
		if got <= 0 {
			t.Fatalf("parse %q = %d", id, got)
		}
		// What the publisher would write for that id reads back the same.
		if back, err := parseTradeMsgID(k, sym, bus.TradeMsgID(k, sym, got)); sym == strings.ToUpper(sym) && (err != nil || back != got) {
			t.Fatalf("parse %q = %d, which does not round-trip: %d, %v", id, got, back, err)
		}
	})
}

func TestParseTradeMsgIDRoundTrip(t *testing.T) {
	for _, id := range []int64{1, 42, 3046218219, 1<<62 + 7} {
		got, err := parseTradeMsgID(market.USDM, "BTCUSDT", bus.TradeMsgID(market.USDM, "BTCUSDT", id))
		if err != nil || got != id {
			t.Fatalf("%d: got %d, %v", id, got, err)
		}
	}
	for _, bad := range []string{"", "usdm.BTCUSDT.t.", "usdm.BTCUSDT.d.5", "spot.BTCUSDT.t.5", "usdm.BTCUSDT.t.0", "usdm.BTCUSDT.t.x"} {
		if _, err := parseTradeMsgID(market.USDM, "BTCUSDT", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

type fakeSet struct{ calls []string }

func (f *fakeSet) AddSymbol(_ context.Context, s string) error {
	f.calls = append(f.calls, "add "+s)
	return nil
}
func (f *fakeSet) AddSymbolFrom(_ context.Context, s string, after int64) error {
	f.calls = append(f.calls, fmt.Sprintf("add %s after %d", s, after))
	return nil
}
func (f *fakeSet) RemoveSymbol(_ context.Context, s string) error {
	f.calls = append(f.calls, "remove "+s)
	return fmt.Errorf("%w: %s", service.ErrUnknownSymbol, s)
}

// The new owner continues after the last trade id on the bus; with none
// it warm-starts; a bad message id gives the lease back (error).
func TestServiceHooksContinueFromBus(t *testing.T) {
	// The bus's stream allows direct gets; the last trade is read from
	// the leader either way.
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowDirect=%v", direct), func(t *testing.T) { testServiceHooksContinueFromBus(t, direct) })
	}
}

func testServiceHooksContinueFromBus(t *testing.T, allowDirect bool) {
	n := natstest.StartNode(t)
	_, js := natstest.Connect(t, n.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: bus.StreamName, Subjects: []string{bus.SubjectPrefix + ".>"}, AllowDirect: allowDirect}); err != nil {
		t.Fatal(err)
	}
	subj := bus.Subject(market.Spot, "BTCUSDT", bus.TopicTrades)
	for _, id := range []int64{100, 101, 102} {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: []byte("{}")}, jetstream.WithMsgID(bus.TradeMsgID(market.Spot, "BTCUSDT", id))); err != nil {
			t.Fatal(err)
		}
	}
	// Another topic's later message must not be taken for a trade.
	if _, err := js.Publish(ctx, bus.Subject(market.Spot, "BTCUSDT", bus.TopicBookDelta), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	f := &fakeSet{}
	acquire, release := ServiceHooks(f, js, market.Spot)
	for _, s := range []string{"BTCUSDT", "ETHUSDT"} {
		if err := acquire(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := release(ctx, "SOLUSDT"); err != nil {
		t.Fatalf("release of a symbol not run: %v", err)
	}
	want := []string{"add BTCUSDT after 102", "add ETHUSDT", "remove SOLUSDT"}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls %q, want %q", f.calls, want)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: []byte("{}")}, jetstream.WithMsgID("garbage")); err != nil {
		t.Fatal(err)
	}
	if err := acquire(ctx, "BTCUSDT"); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a bad message id: err %v, want a parse error", err)
	}
	// A message without an id is not taken for trade 0.
	if _, err := js.Publish(ctx, subj, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := LastTradeID(ctx, js, market.Spot, "BTCUSDT"); err == nil || !strings.Contains(err.Error(), "message id") {
		t.Fatalf("a trade without a message id: err %v", err)
	}
}

func TestAPIPrefix(t *testing.T) {
	for _, c := range []struct {
		o    jetstream.JetStreamOptions
		want string
	}{
		{jetstream.JetStreamOptions{}, "$JS.API."},
		{jetstream.JetStreamOptions{APIPrefix: "$JS.hub.API"}, "$JS.hub.API."},
		{jetstream.JetStreamOptions{APIPrefix: "$JS.hub.API."}, "$JS.hub.API."},
		{jetstream.JetStreamOptions{Domain: "leaf"}, "$JS.leaf.API."},
	} {
		if got := apiPrefix(c.o); got != c.want {
			t.Errorf("apiPrefix(%+v) = %q, want %q", c.o, got, c.want)
		}
	}
}
