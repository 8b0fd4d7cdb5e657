package binance

import (
	"encoding/json"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// The benchmarks decode real frames: aggTrade from the cryptofeed
// recordings (both markets), trade, depthUpdate and bookTicker from the
// hftbacktest spot BTCUSDT and USD-M BTCUSDT recordings. Each has an
// encoding/json baseline producing the same market values, so
//
//	go test ./binance -run '^$' -bench . -benchmem
//
// shows the ratio directly (scanner vs encoding-json per kind).

type benchSet struct {
	name   string
	frames [][]byte
}

func benchFrames(b *testing.B) []benchSet {
	b.Helper()
	const perKind = 1000
	spot, _ := sampleFrames(b, "hft-spot-btcusdt-20240808.txt.gz", perKind)
	usdm, _ := sampleFrames(b, "hft-usdm-btcusdt-20240808.txt.gz", perKind)
	cfSpot, _ := sampleFrames(b, "cryptofeed-spot-10sym-20210405.txt.gz", perKind)
	cfUSDM, _ := sampleFrames(b, "cryptofeed-usdm-5sym-20210405.txt.gz", perKind)
	return []benchSet{
		{"aggTrade", append(cfSpot[KindAggTrade], cfUSDM[KindAggTrade]...)},
		{"trade", append(spot[KindTrade][:perKind/2], usdm[KindTrade][:perKind/2]...)},
		{"depthUpdate/spot", spot[KindDepthUpdate]},
		{"depthUpdate/usdm", usdm[KindDepthUpdate]},
		{"bookTicker", append(spot[KindBookTicker][:perKind/2], usdm[KindBookTicker][:perKind/2]...)},
	}
}

func totalBytes(frames [][]byte) int64 {
	var n int64
	for _, f := range frames {
		n += int64(len(f))
	}
	return n
}

// BenchmarkDecode reports per-frame cost; b.N counts frames.
func BenchmarkDecode(b *testing.B) {
	for _, set := range benchFrames(b) {
		avg := totalBytes(set.frames) / int64(len(set.frames))
		b.Run(set.name+"/scanner", func(b *testing.B) {
			d := NewDecoder()
			var m Message
			b.SetBytes(avg)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := d.Decode(set.frames[i%len(set.frames)], &m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(set.name+"/encoding-json", func(b *testing.B) {
			var m Message
			b.SetBytes(avg)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := jsonDecode(set.frames[i%len(set.frames)], &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeDepthSnapshot decodes the real 1000x1000 USD-M snapshot.
func BenchmarkDecodeDepthSnapshot(b *testing.B) {
	_, snaps := sampleFrames(b, "hft-usdm-btcusdt-20240808.txt.gz", 0)
	body := snaps[0]
	b.Run("scanner", func(b *testing.B) {
		var snap market.DepthSnapshot
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if err := DecodeDepthSnapshot(body, &snap); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		var snap market.DepthSnapshot
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var w struct {
				LastUpdateID int64       `json:"lastUpdateId"`
				E            int64       `json:"E"`
				T            int64       `json:"T"`
				Bids         [][2]string `json:"bids"`
				Asks         [][2]string `json:"asks"`
			}
			if err := json.Unmarshal(body, &w); err != nil {
				b.Fatal(err)
			}
			snap.LastUpdateID, snap.EventTime, snap.TransactTime = w.LastUpdateID, w.E, w.T
			snap.Bids = jsonLevels(snap.Bids[:0], w.Bids)
			snap.Asks = jsonLevels(snap.Asks[:0], w.Asks)
		}
	})
}

// BenchmarkEncode measures the simulator's side.
func BenchmarkEncode(b *testing.B) {
	for _, set := range benchFrames(b) {
		d := NewDecoder()
		msgs := make([]Message, len(set.frames))
		for i, f := range set.frames {
			if err := d.Decode(f, &msgs[i]); err != nil {
				b.Fatal(err)
			}
			msgs[i].Depth.Bids = append([]market.Level(nil), msgs[i].Depth.Bids...)
			msgs[i].Depth.Asks = append([]market.Level(nil), msgs[i].Depth.Asks...)
		}
		b.Run(set.name, func(b *testing.B) {
			buf := make([]byte, 0, 64<<10)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m := &msgs[i%len(msgs)]
				buf = AppendCombined(buf[:0], m.Stream, appendPayload(buf[len(buf):], m, market.Spot))
			}
		})
	}
}

// --- the encoding/json baseline: struct unmarshal + fixed.Parse ------------

// jsonEvent holds every field of the four kinds; encoding/json matches keys
// exactly before falling back to case-insensitive matching, so "b" and "B"
// land in their own fields.
type jsonEvent struct {
	Ev string          `json:"e"`
	E  int64           `json:"E"`
	S  string          `json:"s"`
	A  json.RawMessage `json:"a"`
	P  string          `json:"p"`
	Q  string          `json:"q"`
	F  int64           `json:"f"`
	L  int64           `json:"l"`
	T  int64           `json:"T"`
	M  bool            `json:"m"`
	MM bool            `json:"M"` // without it, spot's "M":true lands in "m" (case-insensitive match)
	Ti int64           `json:"t"`
	B  json.RawMessage `json:"b"`
	BQ string          `json:"B"`
	AQ string          `json:"A"`
	U0 int64           `json:"U"`
	U1 int64           `json:"u"`
	PU *int64          `json:"pu"`
}

type jsonEnvelope struct {
	Stream string    `json:"stream"`
	Data   jsonEvent `json:"data"`
}

func jsonDec(s string) fixed.Dec {
	d, err := fixed.ParseString(s)
	if err != nil {
		panic(err)
	}
	return d
}

func jsonLevels(dst []market.Level, src [][2]string) []market.Level {
	for _, l := range src {
		dst = append(dst, market.Level{Price: jsonDec(l[0]), Qty: jsonDec(l[1])})
	}
	return dst
}

// jsonDecode is what a typical encoding/json client does with a frame.
func jsonDecode(frame []byte, m *Message) error {
	var env jsonEnvelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return err
	}
	e := &env.Data
	m.Stream, m.Event, m.EventTime = env.Stream, e.Ev, e.E
	switch e.Ev {
	case "aggTrade", "trade":
		t := market.Trade{Symbol: e.S, Price: jsonDec(e.P), Qty: jsonDec(e.Q), Time: e.T, EventTime: e.E, BuyerMaker: e.M}
		if e.Ev == "aggTrade" {
			m.Kind = KindAggTrade
			if err := json.Unmarshal(e.A, &t.ID); err != nil {
				return err
			}
			t.FirstID, t.LastID, t.Aggregated = e.F, e.L, true
		} else {
			m.Kind = KindTrade
			t.ID, t.FirstID, t.LastID = e.Ti, e.Ti, e.Ti
		}
		m.Trade = t
	case "depthUpdate":
		m.Kind = KindDepthUpdate
		var bids, asks [][2]string
		if err := json.Unmarshal(e.B, &bids); err != nil {
			return err
		}
		if err := json.Unmarshal(e.A, &asks); err != nil {
			return err
		}
		u := &m.Depth
		u.Symbol, u.EventTime, u.TransactTime, u.FirstID, u.FinalID = e.S, e.E, e.T, e.U0, e.U1
		if e.PU != nil {
			u.PrevFinalID, u.HasPrev = *e.PU, true
		}
		u.Bids = jsonLevels(u.Bids[:0], bids)
		u.Asks = jsonLevels(u.Asks[:0], asks)
	default: // bookTicker
		m.Kind = KindBookTicker
		var bp, ap string
		if err := json.Unmarshal(e.B, &bp); err != nil {
			return err
		}
		if err := json.Unmarshal(e.A, &ap); err != nil {
			return err
		}
		m.Ticker = market.BookTicker{Symbol: e.S, UpdateID: e.U1, BidPrice: jsonDec(bp), BidQty: jsonDec(e.BQ),
			AskPrice: jsonDec(ap), AskQty: jsonDec(e.AQ), EventTime: e.E, TransactTime: e.T}
	}
	return nil
}

// TestJSONBaselineAgrees keeps the baseline honest: it must produce what
// the scanner produces on the benchmark frames.
func TestJSONBaselineAgrees(t *testing.T) {
	spot, _ := sampleFrames(t, "hft-spot-btcusdt-20240808.txt.gz", 200)
	usdm, _ := sampleFrames(t, "hft-usdm-btcusdt-20240808.txt.gz", 200)
	cf, _ := sampleFrames(t, "cryptofeed-usdm-5sym-20210405.txt.gz", 200)
	d := NewDecoder()
	for _, set := range []map[Kind][][]byte{spot, usdm, cf} {
		for _, frames := range set {
			for _, f := range frames {
				var want, got Message
				if err := d.Decode(f, &want); err != nil {
					t.Fatal(err)
				}
				if err := jsonDecode(f, &got); err != nil {
					t.Fatal(err)
				}
				if diff := messageDiff(&want, &got); diff != "" {
					t.Fatalf("baseline differs: %s\n%s", diff, f)
				}
			}
		}
	}
}
