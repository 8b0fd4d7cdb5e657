package binance

import (
	"errors"
	"testing"

	"github.com/orderflow/orderflow/market"
)

// fuzzSeedFiles give real frames of every kind in both markets while
// staying quick to read.
var fuzzSeedFiles = []string{
	"cryptofeed-spot-10sym-20210405.txt.gz", // spot aggTrade, depth, bookTicker, snapshots
	"cryptofeed-usdm-5sym-20210405.txt.gz",  // USD-M aggTrade, depth, bookTicker, snapshots
	"hft-usdm-btcusdt-20240718.txt.gz",      // USD-M trade, depth@0ms
	"hft-spot-btcusdt-20240808.txt.gz",      // spot trade
}

// realSeeds returns a few small real frames of each kind and the real
// snapshots cut to a few levels.
func realSeeds(tb testing.TB) (frames [][]byte, snapshots [][]byte) {
	for _, file := range fuzzSeedFiles {
		byKind, snaps := sampleFrames(tb, file, 40)
		for _, fs := range byKind {
			n := 0
			for _, f := range fs {
				if len(f) <= 1500 && n < 3 { // small frames keep the fuzzer fast
					frames = append(frames, f)
					n++
				}
			}
		}
		kind := recordingMarket(file)
		for _, s := range snaps[:min(len(snaps), 2)] {
			var snap market.DepthSnapshot
			if err := DecodeDepthSnapshot(s, &snap); err != nil {
				tb.Fatal(err)
			}
			snap.Bids, snap.Asks = snap.Bids[:min(len(snap.Bids), 4)], snap.Asks[:min(len(snap.Asks), 4)]
			snapshots = append(snapshots, AppendDepthSnapshot(nil, &snap, kind))
		}
	}
	return frames, snapshots
}

// FuzzDecode: Decode never panics, fails only with a *DecodeError, and a
// frame it accepts re-encodes (for every market whose format carries its
// fields) and decodes to the same values.
func FuzzDecode(f *testing.F) {
	frames, _ := realSeeds(f)
	for _, fr := range frames {
		f.Add(fr)
	}
	for _, fr := range allFrames {
		f.Add([]byte(fr.frame))
	}
	for _, s := range []string{
		`{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","1"],["x","1"]],"a":[]}`,
		`{"b":[["1","1"]],"a":[],"E":1,"s":"X","U":1,"u":2,"e":"depthUpdate"}`,
		`{"e":"trade","E":1,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","b":88,"a":50,"T":2,"m":true,"M":true}`,
		`{"\u0065":"trade","E":1,"s":"BTC\u0055SDT","t":1,"p":"\u0031.5","q":"2","T":2,"m":false}`,
		`{"result":null}`, `{"error":{"code":"2"}}`, `{"x":[[[[{}]]]]}`, ``, `{`, `[]`,
	} {
		f.Add([]byte(s))
	}
	d := NewDecoder()
	d2 := NewDecoder()
	f.Fuzz(func(t *testing.T, frame []byte) {
		var m Message
		err := d.Decode(frame, &m)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			_ = err.Error()
			return
		}
		if m.Kind == KindUnknown {
			if m.Event == "" {
				t.Fatalf("KindUnknown without an event name")
			}
			return
		}
		for _, kind := range encodable(&m) {
			payload := appendPayload(nil, &m, kind)
			enc := payload
			if m.Stream != "" {
				enc = AppendCombined(nil, m.Stream, payload)
			}
			var m2 Message
			if err := d2.Decode(enc, &m2); err != nil {
				t.Fatalf("re-encoded %v frame does not decode: %v\n in: %q\nout: %q", kind, err, frame, enc)
			}
			want := canonical(&m, kind)
			if diff := messageDiff(&want, &m2); diff != "" {
				t.Fatalf("%v round trip: %s\n in: %q\nout: %q", kind, diff, frame, enc)
			}
		}
	})
}

// FuzzDecodeDepthSnapshot: never panics; a body it accepts re-encodes and
// decodes to the same snapshot.
func FuzzDecodeDepthSnapshot(f *testing.F) {
	_, snaps := realSeeds(f)
	for _, s := range snaps {
		f.Add(s)
	}
	f.Add([]byte(usdmSnapshotSmall))
	f.Add([]byte(`{"code":-1121,"msg":"Invalid symbol."}`))
	f.Add([]byte(`{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000",[]]],"asks":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var snap market.DepthSnapshot
		err := DecodeDepthSnapshot(body, &snap)
		if err != nil {
			var de *DecodeError
			var api *APIError
			if !errors.As(err, &de) && !errors.As(err, &api) {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		kind := market.Spot
		if snap.EventTime != 0 || snap.TransactTime != 0 {
			kind = market.USDM
		}
		enc := AppendDepthSnapshot(nil, &snap, kind)
		var snap2 market.DepthSnapshot
		if err := DecodeDepthSnapshot(enc, &snap2); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v\n%q", err, enc)
		}
		if !snapshotsEqual(&snap, &snap2) {
			t.Fatalf("round trip differs\n in: %q\nout: %q", body, enc)
		}
	})
}

// FuzzDecodeAggTrades: never panics; a body it accepts re-encodes and
// decodes to the same trades.
func FuzzDecodeAggTrades(f *testing.F) {
	frames, _ := realSeeds(f)
	d := NewDecoder()
	var trades []market.Trade
	for _, fr := range frames {
		var m Message
		if err := d.Decode(fr, &m); err == nil && m.Kind == KindAggTrade {
			trades = append(trades, m.Trade)
		}
	}
	f.Add(AppendAggTradesREST(nil, trades[:3], market.Spot))
	f.Add(AppendAggTradesREST(nil, trades[len(trades)-3:], market.USDM))
	f.Add([]byte(aggTradesDocBody))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"code":-1100,"msg":"Illegal characters found in parameter 'fromId'."}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeAggTrades(body, "SYM", nil)
		if err != nil {
			var de *DecodeError
			var api *APIError
			if !errors.As(err, &de) && !errors.As(err, &api) {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		for _, kind := range []market.Kind{market.Spot, market.USDM} {
			enc := AppendAggTradesREST(nil, got, kind)
			back, err := DecodeAggTrades(enc, "SYM", nil)
			if err != nil {
				t.Fatalf("re-encoded body does not decode: %v\n%q", err, enc)
			}
			if len(back) != len(got) {
				t.Fatalf("%d trades, want %d", len(back), len(got))
			}
			for i := range got {
				if back[i] != got[i] {
					t.Fatalf("[%d] %+v != %+v", i, back[i], got[i])
				}
			}
		}
	})
}
