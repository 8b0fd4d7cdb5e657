package binance

import (
	"errors"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// usdmSnapshotHead is the start of the real USD-M BATUSDT snapshot in
// cryptofeed-usdm-5sym-20210405.txt.gz, cut to three levels a side.
const usdmSnapshotSmall = `{"lastUpdateId":303212654508,"E":1617647797886,"T":1617647797881,"bids":[["1.2236","49.4"],["1.2234","392.5"],["1.2232","817.1"]],"asks":[["1.2242","475.3"],["1.2243","111.8"],["1.2244","0.0"]]}`

// aggTradesDocBody is the example of spot REST "Compressed/Aggregate trades
// list".
const aggTradesDocBody = `[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true,"M":true}]`

func TestDecodeDepthSnapshot(t *testing.T) {
	var snap market.DepthSnapshot
	snap.Symbol = "BATUSDT"
	if err := DecodeDepthSnapshot([]byte(usdmSnapshotSmall), &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Symbol != "BATUSDT" || snap.LastUpdateID != 303212654508 || snap.EventTime != 1617647797886 || snap.TransactTime != 1617647797881 {
		t.Errorf("%+v", snap)
	}
	if len(snap.Bids) != 3 || len(snap.Asks) != 3 || snap.Asks[2].Qty != 0 || snap.Bids[0].Price != fixed.MustParse("1.2236") {
		t.Errorf("levels %v %v", snap.Bids, snap.Asks)
	}
	// A spot body reuses the slices and clears E/T.
	spot := `{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}`
	bids := &snap.Bids[0]
	if err := DecodeDepthSnapshot([]byte(spot), &snap); err != nil {
		t.Fatal(err)
	}
	if snap.EventTime != 0 || snap.TransactTime != 0 || len(snap.Bids) != 1 || &snap.Bids[0] != bids {
		t.Errorf("spot after USD-M: %+v", snap)
	}
}

func TestDecodeDepthSnapshotErrors(t *testing.T) {
	cases := []struct {
		name, body, want string
		is               error
	}{
		{"APIError", `{"code":-1121,"msg":"Invalid symbol."}`, "binance: API error -1121: Invalid symbol.", nil},
		{"Missing", `{"lastUpdateId":1,"bids":[]}`, `decode depthSnapshot: missing field "asks"`, ErrMissingField},
		{"BadQty", `{"lastUpdateId":1,"bids":[["1","2x"]],"asks":[]}`, `decode depthSnapshot: field "bids"[0][1]: invalid digit at offset 31`, fixed.ErrSyntax},
		{"IDIsString", `{"lastUpdateId":"1","bids":[],"asks":[]}`, `field "lastUpdateId": wrong JSON type: want integer, got string`, ErrType},
		{"Array", `[]`, `want object, got array`, ErrType},
		{"Truncated", usdmSnapshotSmall[:40], `unexpected end of input`, ErrUnexpectedEOF},
		{"Trailing", usdmSnapshotSmall + `,`, `data after the top-level value`, ErrSyntax},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var snap market.DepthSnapshot
			err := DecodeDepthSnapshot([]byte(c.body), &snap)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("%v is not %v", err, c.is)
			}
			var api *APIError
			if c.name == "APIError" && (!errors.As(err, &api) || api.Code != -1121) {
				t.Errorf("want *APIError, got %T", err)
			}
		})
	}
	t.Run("EveryPrefix", func(t *testing.T) {
		var snap market.DepthSnapshot
		for i := range len(usdmSnapshotSmall) {
			var de *DecodeError
			if err := DecodeDepthSnapshot([]byte(usdmSnapshotSmall[:i]), &snap); !errors.As(err, &de) {
				t.Fatalf("prefix %d: %v", i, err)
			}
		}
	})
}

// TestDecodeDepthSnapshotAllocs: a 1000-level real snapshot decodes into a
// reused DepthSnapshot without allocating.
func TestDecodeDepthSnapshotAllocs(t *testing.T) {
	_, snaps := sampleFrames(t, "hft-usdm-btcusdt-20240718.txt.gz", 0)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots", len(snaps))
	}
	var snap market.DepthSnapshot
	allocs := testing.AllocsPerRun(20, func() {
		if err := DecodeDepthSnapshot(snaps[0], &snap); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || len(snap.Bids) != 1000 || len(snap.Asks) != 1000 {
		t.Errorf("%v allocs, %d/%d levels", allocs, len(snap.Bids), len(snap.Asks))
	}
}

func TestDecodeAggTrades(t *testing.T) {
	trades, err := DecodeAggTrades([]byte(aggTradesDocBody), "BNBBTC", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := market.Trade{Symbol: "BNBBTC", ID: 26129, FirstID: 27781, LastID: 27781, Price: fixed.MustParse("0.01633102"),
		Qty: fixed.MustParse("4.70443515"), Time: 1498793709153, BuyerMaker: true, Aggregated: true}
	if len(trades) != 1 || trades[0] != want {
		t.Fatalf("%+v", trades)
	}
	// Appends to dst.
	trades, err = DecodeAggTrades([]byte(` [ ] `), "X", trades)
	if err != nil || len(trades) != 1 {
		t.Fatalf("empty list: %v %d", err, len(trades))
	}
}

// TestDecodeAggTradesRecorded re-encodes the real aggTrades of the
// cryptofeed recordings as REST bodies and checks them against the
// reference decoding.
func TestDecodeAggTradesRecorded(t *testing.T) {
	for _, file := range []string{"cryptofeed-spot-10sym-20210405.txt.gz", "cryptofeed-usdm-5sym-20210405.txt.gz"} {
		kind := recordingMarket(file)
		frames, _ := sampleFrames(t, file, 1<<30)
		d := NewDecoder()
		bySymbol := map[string][]market.Trade{}
		var m Message
		for _, f := range frames[KindAggTrade] {
			if err := d.Decode(f, &m); err != nil {
				t.Fatal(err)
			}
			tr := m.Trade
			tr.EventTime = 0
			bySymbol[tr.Symbol] = append(bySymbol[tr.Symbol], tr)
		}
		for sym, want := range bySymbol {
			body := AppendAggTradesREST(nil, want, kind)
			got, err := DecodeAggTrades(body, sym, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", file, sym, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s %s: %d trades, want %d", file, sym, len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s %s [%d]: %+v, want %+v", file, sym, i, got[i], want[i])
				}
			}
			// And against encoding/json + math/big.
			checkAggTradesRef(t, got, body)
		}
	}
}

// checkAggTradesRef compares decoded REST aggTrades with the reference.
func checkAggTradesRef(t *testing.T, got []market.Trade, body []byte) {
	t.Helper()
	ref, err := refUnmarshal([]byte(`{"x":` + string(body) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	list := ref["x"].([]any)
	var c cmp
	for i, o := range list {
		r := o.(map[string]any)
		c.int("ID", got[i].ID, r["a"])
		c.dec("Price", got[i].Price, r["p"])
		c.dec("Qty", got[i].Qty, r["q"])
		c.int("FirstID", got[i].FirstID, r["f"])
		c.int("LastID", got[i].LastID, r["l"])
		c.int("Time", got[i].Time, r["T"])
		c.eq("BuyerMaker", got[i].BuyerMaker, r["m"])
	}
	if len(c.errs) > 0 {
		t.Fatalf("%v", c.errs[:min(len(c.errs), 5)])
	}
}

func TestDecodeAggTradesErrors(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"APIError", `{"code":-1100,"msg":"Illegal characters found in parameter 'fromId'."}`, "binance: API error -1100: Illegal characters"},
		{"ObjectNotError", `{"a":1}`, `decode aggTrades: wrong JSON type: want array, got object at offset 0`},
		{"Missing", `[{"a":1,"p":"1","q":"1","f":1,"l":1,"T":1}]`, `decode aggTrades: missing field "m"`},
		{"BadPrice", `[` + aggTradesDocBody[1:len(aggTradesDocBody)-1] + `,{"a":2,"p":"1..0","q":"1","f":1,"l":1,"T":1,"m":true}]`, `decode aggTrades: field [1]."p": invalid digit`},
		{"ElementIsArray", `[[]]`, `field [0]: wrong JSON type: want object, got array`},
		{"Truncated", aggTradesDocBody[:30], `unexpected end of input`},
		{"Trailing", aggTradesDocBody + `]`, `data after the top-level value`},
		{"String", `"x"`, `want array, got string`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeAggTrades([]byte(c.body), "X", nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	t.Run("EveryPrefix", func(t *testing.T) {
		for i := range len(aggTradesDocBody) {
			var de *DecodeError
			if _, err := DecodeAggTrades([]byte(aggTradesDocBody[:i]), "X", nil); !errors.As(err, &de) {
				t.Fatalf("prefix %d: %v", i, err)
			}
		}
	})
}

func TestDecodeAggTradesAllocs(t *testing.T) {
	one := aggTradesDocBody[1 : len(aggTradesDocBody)-1]
	body := []byte("[" + strings.Repeat(one+",", 99) + one + "]")
	dst := make([]market.Trade, 0, 100)
	allocs := testing.AllocsPerRun(50, func() {
		var err error
		if dst, err = DecodeAggTrades(body, "BNBBTC", dst[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || len(dst) != 100 {
		t.Errorf("%v allocs for %d trades", allocs, len(dst))
	}
}

// exchangeInfoBody follows the shape of spot GET /api/v3/exchangeInfo.
const exchangeInfoBody = `{"timezone":"UTC","serverTime":1723161255308,
"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000},
 {"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":100}],
"exchangeFilters":[],
"symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","baseAssetPrecision":8,"quoteAsset":"USDT","quotePrecision":8,
 "orderTypes":["LIMIT","MARKET"],"filters":[
  {"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},
  {"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"},
  {"filterType":"ICEBERG_PARTS","limit":10},
  {"filterType":"NOTIONAL","minNotional":"5.00000000","applyMinToMarket":true,"maxNotional":"9000000.00000000"}]},
 {"symbol":"ETHUSDT","status":"TRADING","baseAsset":"ETH","quoteAsset":"USDT","filters":[
  {"filterType":"PRICE_FILTER","minPrice":"0.01","maxPrice":"1000000","tickSize":"0.01"},
  {"filterType":"LOT_SIZE","minQty":"0.0001","maxQty":"9000","stepSize":"0.0001"}]}]}`

func TestDecodeExchangeInfo(t *testing.T) {
	info, err := DecodeExchangeInfo([]byte(exchangeInfoBody))
	if err != nil {
		t.Fatal(err)
	}
	if info.Timezone != "UTC" || info.ServerTime != 1723161255308 || len(info.RateLimits) != 2 ||
		info.RateLimits[0] != (RateLimit{"REQUEST_WEIGHT", "MINUTE", 1, 6000}) {
		t.Errorf("%+v", info)
	}
	s, ok := info.Symbol("BTCUSDT")
	if !ok || s.TickSize() != fixed.MustParse("0.01") || s.StepSize() != fixed.MustParse("0.00001") || s.BaseAsset != "BTC" {
		t.Fatalf("BTCUSDT: %v %+v", ok, s)
	}
	if f, _ := s.filter("LOT_SIZE"); f.MaxQty != fixed.MustParse("9000") || f.MinQty != fixed.MustParse("0.00001") {
		t.Errorf("LOT_SIZE %+v", f)
	}
	if s, ok := info.Symbol("ethusdt"); !ok || s.Symbol != "ETHUSDT" || s.StepSize() != fixed.MustParse("0.0001") {
		t.Errorf("case-insensitive lookup: %v %+v", ok, s)
	}
	if _, ok := info.Symbol("NOPE"); ok {
		t.Error("found a symbol that is not there")
	}
	if (SymbolInfo{}).TickSize() != 0 {
		t.Error("TickSize of a symbol without filters")
	}

	_, err = DecodeExchangeInfo([]byte(`{"code":-1003,"msg":"Too many requests."}`))
	var api *APIError
	if !errors.As(err, &api) || api.Code != -1003 {
		t.Errorf("error body: %v", err)
	}
	if _, err := DecodeExchangeInfo([]byte(`{"symbols":[{"filters":[{"tickSize":"0.1x"}]}]}`)); err == nil {
		t.Error("bad tickSize accepted")
	}
}
