package bus_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/stacktest"
)

// realData reads a real recording with the project's capture reader and
// frame decoder: its trades, depth updates and first REST snapshot;
// limit > 0 stops once it has that many trades and updates.
func realData(tb testing.TB, file string, limit int) (trades []market.Trade, deltas []market.DepthUpdate, snap market.DepthSnapshot) {
	tb.Helper()
	r, err := capture.Open(file, capture.OpenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	dec := binance.NewDecoder()
	var m binance.Message
	haveSnap := false
	for limit <= 0 || len(trades) < limit || len(deltas) < limit || !haveSnap {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		if rec.Kind == capture.Snapshot {
			if !haveSnap {
				if err := binance.DecodeDepthSnapshot(rec.Data, &snap); err != nil {
					tb.Fatal(err)
				}
				snap.Bids, snap.Asks = slices.Clone(snap.Bids), slices.Clone(snap.Asks)
				haveSnap = true
			}
			continue
		}
		if err := dec.Decode(rec.Data, &m); err != nil {
			continue
		}
		switch m.Kind {
		case binance.KindTrade, binance.KindAggTrade:
			trades = append(trades, m.Trade)
		case binance.KindDepthUpdate:
			d := m.Depth
			d.Bids, d.Asks = slices.Clone(d.Bids), slices.Clone(d.Asks)
			deltas = append(deltas, d)
		}
	}
	if len(trades) == 0 || len(deltas) == 0 || !haveSnap {
		tb.Fatalf("%s: %d trades, %d deltas, snapshot %v", file, len(trades), len(deltas), haveSnap)
	}
	return trades, deltas, snap
}

var realFiles = []struct {
	file string
	kind market.Kind
}{
	{"hft-spot-btcusdt-20240808.txt.gz", market.Spot},
	{"hft-usdm-btcusdt-20240718.txt.gz", market.USDM},
}

// TestAppendIsEncodingJSON: the hand-written encoders write, byte for byte,
// what encoding/json writes for the schema types, on every trade and depth
// update of real recordings and on a real book (top-20 after every tenth
// update, the whole book after every 500th); Decode reads each back to
// the same value.
func TestAppendIsEncodingJSON(t *testing.T) {
	for _, rf := range realFiles {
		t.Run(rf.kind.String(), func(t *testing.T) {
			trades, deltas, snap := realData(t, stacktest.Testdata(rf.file), 0)
			var buf []byte
			for i := range trades {
				tr := &trades[i]
				buf = bus.AppendTrade(buf[:0], rf.kind, tr)
				ref := bus.TradeMsg(rf.kind, tr)
				mustSame(t, buf, &ref)
			}
			var b book.Book
			if err := b.Reset(&snap); err != nil {
				t.Fatal(err)
			}
			for i := range deltas {
				u := &deltas[i]
				buf = bus.AppendBookDelta(buf[:0], rf.kind, "BTCUSDT", u)
				ref := bus.BookDeltaMsg(rf.kind, "BTCUSDT", u)
				mustSame(t, buf, &ref)
				if u.FinalID <= b.UpdateID() {
					continue
				}
				if err := b.ApplyUpdate(u); err != nil {
					t.Fatal(err)
				}
				if i%10 == 0 {
					top := bus.AppendBookTop(nil, rf.kind, "BTCUSDT", u.EventTime, &b, 20)
					refTop := bus.BookTopMsg(rf.kind, "BTCUSDT", u.EventTime, &b, 20)
					mustSame(t, top, &refTop)
				}
				if i%500 == 0 {
					sn := bus.AppendBookSnapshot(nil, rf.kind, "BTCUSDT", u.EventTime, &b, bus.ReasonPeriodic)
					refSn := bus.BookSnapshotMsg(rf.kind, "BTCUSDT", u.EventTime, &b, bus.ReasonPeriodic)
					mustSame(t, sn, &refSn)
				}
			}
		})
	}
}

// mustSame checks got == encoding/json(ref) and Decode(got) == *ref.
func mustSame[T any](t *testing.T, got []byte, ref *T) {
	t.Helper()
	want, err := json.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoder differs from encoding/json:\n got %s\nwant %s", got, want)
	}
	back, err := bus.Decode(got)
	if err != nil {
		t.Fatalf("decode %s: %v", got, err)
	}
	if !reflect.DeepEqual(back, ref) {
		t.Fatalf("decoded %+v, want %+v", back, ref)
	}
}

// TestDecodeRefuses: messages that break the schema are refused with
// ErrSchema, never half-read.
func TestDecodeRefuses(t *testing.T) {
	trade := `{"v":1,"type":"trade","market":"spot","symbol":"BTCUSDT","time":1,"id":2,"first_id":2,"last_id":2,"price":"61837.63","qty":"0.02","side":"sell","trade_time":1}`
	if _, err := bus.Decode([]byte(trade)); err != nil {
		t.Fatalf("valid trade refused: %v", err)
	}
	for _, tc := range []struct{ name, msg string }{
		{"NotJSON", `{"v":1,`},
		{"Empty", ``},
		{"OtherVersion", strings.Replace(trade, `"v":1`, `"v":2`, 1)},
		{"NoVersion", strings.Replace(trade, `"v":1,`, ``, 1)},
		{"UnknownType", strings.Replace(trade, `"type":"trade"`, `"type":"quote"`, 1)},
		{"UnknownMarket", strings.Replace(trade, `"market":"spot"`, `"market":"coinm"`, 1)},
		{"NoSymbol", strings.Replace(trade, `"symbol":"BTCUSDT"`, `"symbol":""`, 1)},
		{"BadSide", strings.Replace(trade, `"side":"sell"`, `"side":"short"`, 1)},
		{"InexactPrice", strings.Replace(trade, `"price":"61837.63"`, `"price":"61837.630000001"`, 1)},
		{"FloatPrice", strings.Replace(trade, `"price":"61837.63"`, `"price":61837.63`, 1)},
		{"ZeroPrice", strings.Replace(trade, `"price":"61837.63"`, `"price":"0"`, 1)},
		{"DeltaNegativeQty", `{"v":1,"type":"book.delta","market":"spot","symbol":"X","time":1,"first_update_id":1,"last_update_id":2,"bids":[["1","-1"]],"asks":[]}`},
		{"DeltaIDsReversed", `{"v":1,"type":"book.delta","market":"spot","symbol":"X","time":1,"first_update_id":3,"last_update_id":2,"bids":[],"asks":[]}`},
		{"DeltaShortLevel", `{"v":1,"type":"book.delta","market":"spot","symbol":"X","time":1,"first_update_id":1,"last_update_id":2,"bids":[["1"]],"asks":[]}`},
		{"SnapshotBadReason", `{"v":1,"type":"book.snapshot","market":"spot","symbol":"X","time":1,"last_update_id":2,"bids":[],"asks":[],"known_bid_floor":"0","known_ask_ceiling":"0","reason":"whim"}`},
		{"SnapshotZeroQty", `{"v":1,"type":"book.snapshot","market":"spot","symbol":"X","time":1,"last_update_id":2,"bids":[["1","0"]],"asks":[],"known_bid_floor":"0","known_ask_ceiling":"0","reason":"sync"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := bus.Decode([]byte(tc.msg))
			if !errors.Is(err, bus.ErrSchema) {
				t.Fatalf("Decode = %v, %v; want ErrSchema", m, err)
			}
		})
	}
	var tr bus.Trade
	delta := `{"v":1,"type":"book.delta","market":"spot","symbol":"X","time":1,"first_update_id":1,"last_update_id":2,"bids":[],"asks":[]}`
	if err := bus.DecodeTrade([]byte(delta), &tr); !errors.Is(err, bus.ErrSchema) {
		t.Fatalf("DecodeTrade of a delta = %v; want ErrSchema", err)
	}
}

// FuzzDecode: Decode never panics; what it accepts re-encodes (with
// encoding/json) to a message it decodes to the same value. Seeds are real
// encoded messages.
func FuzzDecode(f *testing.F) {
	trades, deltas, snap := realData(f, stacktest.Testdata("hft-usdm-btcusdt-20240718.txt.gz"), 20)
	for _, tr := range trades[:20] {
		f.Add(bus.AppendTrade(nil, market.USDM, &tr))
	}
	for _, d := range deltas[:20] {
		f.Add(bus.AppendBookDelta(nil, market.USDM, "BTCUSDT", &d))
	}
	var b book.Book
	if err := b.Reset(&snap); err != nil {
		f.Fatal(err)
	}
	f.Add(bus.AppendBookTop(nil, market.USDM, "BTCUSDT", 1, &b, 20))
	f.Add(bus.AppendBookSnapshot(nil, market.USDM, "BTCUSDT", 1, &b, bus.ReasonSync))
	f.Add([]byte(`{"v":1,"type":"bar","market":"spot","time":60000,"symbol":"BTCUSDT","interval":"1m","start":0,"end":60000,"closed":true,"open":"1","high":"2","low":"1","close":"2"}`))
	f.Add([]byte(`{"v":1,"type":"large","market":"spot","symbol":"BTCUSDT","id":5,"time":1,"side":"buy","price":"1","qty":"2"}`))
	f.Add([]byte(`{"v":1,"type":"signal","market":"usdm","symbol":"BTCUSDT","kind":"absorption","time":1,"price":"1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := bus.Decode(data)
		if err != nil {
			if !errors.Is(err, bus.ErrSchema) {
				t.Fatalf("error %v does not wrap ErrSchema", err)
			}
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := bus.Decode(again)
		if err != nil {
			t.Fatalf("re-encoded %s: %v", again, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
	})
}
