package flow

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// rawTrade is a trade as read from a recording: the decimal strings as
// Binance wrote them, for the math/big reference, and the market.Trade fed
// to the tracker.
type rawTrade struct {
	P, Q string
	T    market.Trade
}

func (r rawTrade) price() *big.Rat { return mustRat(r.P) }
func (r rawTrade) qty() *big.Rat   { return mustRat(r.Q) }

func mustRat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("bad decimal " + s)
	}
	return r
}

const dataDir = "../testdata/binance"

func openGz(tb testing.TB, name string) io.Reader {
	tb.Helper()
	f, err := os.Open(filepath.Join(dataDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	return zr
}

// tradeFromJSON decodes a trade/aggTrade payload into a rawTrade with
// encoding/json (independent of the project's scanner).
func tradeFromJSON(tb testing.TB, data []byte) rawTrade {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatalf("decode %s: %v", data, err)
	}
	str := func(k string) string {
		var s string
		if err := json.Unmarshal(m[k], &s); err != nil {
			tb.Fatalf("field %q of %s: %v", k, data, err)
		}
		return s
	}
	num := func(k string) int64 {
		n, err := strconv.ParseInt(string(m[k]), 10, 64)
		if err != nil {
			tb.Fatalf("field %q of %s: %v", k, data, err)
		}
		return n
	}
	var buyerMaker bool
	if err := json.Unmarshal(m["m"], &buyerMaker); err != nil {
		tb.Fatalf("field m of %s: %v", data, err)
	}
	r := rawTrade{P: str("p"), Q: str("q")}
	r.T = market.Trade{Symbol: str("s"), Time: num("T"), EventTime: num("E"), BuyerMaker: buyerMaker}
	if str("e") == "aggTrade" {
		r.T.ID, r.T.FirstID, r.T.LastID, r.T.Aggregated = num("a"), num("f"), num("l"), true
	} else {
		r.T.ID = num("t")
		r.T.FirstID, r.T.LastID = r.T.ID, r.T.ID
	}
	r.T.Price = mustDec(tb, r.P)
	r.T.Qty = mustDec(tb, r.Q)
	return r
}

func mustDec(tb testing.TB, s string) fixed.Dec {
	tb.Helper()
	d, err := fixed.ParseString(s)
	if err != nil {
		tb.Fatalf("parse %q: %v", s, err)
	}
	return d
}

// loadHFT reads the <ns> <json> lines of hftbacktest files and returns the
// frames of stream.
func loadHFT(tb testing.TB, stream string, files ...string) []rawTrade {
	tb.Helper()
	var out []rawTrade
	needle := []byte(`"stream":"` + stream + `"`)
	for _, name := range files {
		sc := bufio.NewScanner(openGz(tb, name))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			line := sc.Bytes()
			if !bytes.Contains(line, needle) {
				continue
			}
			_, js, ok := bytes.Cut(line, []byte(" "))
			if !ok {
				tb.Fatalf("%s: line without a space", name)
			}
			var env struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(js, &env); err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			out = append(out, tradeFromJSON(tb, env.Data))
		}
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// loadCryptofeed reads "<secs>: <frame>" lines and returns the aggTrade
// frames of one symbol (lower case stream prefix, e.g. "dentusdt").
func loadCryptofeed(tb testing.TB, name, sym string) []rawTrade {
	tb.Helper()
	var out []rawTrade
	sc := bufio.NewScanner(openGz(tb, name))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	needle := `"stream":"` + sym + `@aggTrade"`
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, needle) {
			continue
		}
		_, js, ok := strings.Cut(line, ": ")
		if !ok {
			tb.Fatalf("%s: line without ': '", name)
		}
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(js), &env); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		out = append(out, tradeFromJSON(tb, env.Data))
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// loadVision reads the headerless data.binance.vision aggTrades CSV.
func loadVision(tb testing.TB, name string) []rawTrade {
	tb.Helper()
	f, err := os.Open(filepath.Join(dataDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]rawTrade, 0, len(rows))
	for i, row := range rows {
		n := func(k int) int64 {
			v, err := strconv.ParseInt(row[k], 10, 64)
			if err != nil {
				tb.Fatalf("row %d col %d: %v", i, k, err)
			}
			return v
		}
		r := rawTrade{P: row[1], Q: row[2]}
		r.T = market.Trade{Symbol: "BTCUSDT", ID: n(0), FirstID: n(3), LastID: n(4),
			Time: n(5) / 1000, BuyerMaker: row[6] == "True", Aggregated: true}
		r.T.EventTime = r.T.Time
		r.T.Price, r.T.Qty = mustDec(tb, r.P), mustDec(tb, r.Q)
		out = append(out, r)
	}
	return out
}

type dataset struct {
	name   string
	symbol string
	load   func(testing.TB) []rawTrade
}

var datasets = []dataset{
	{"HFTSpotBTCUSDT", "BTCUSDT", func(tb testing.TB) []rawTrade {
		return loadHFT(tb, "btcusdt@trade", "hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz")
	}},
	{"HFTUSDMETHUSDT", "ETHUSDT", func(tb testing.TB) []rawTrade {
		return loadHFT(tb, "ethusdt@trade", "hft-usdm-ethusdt-20240808.txt.gz")
	}},
	{"VisionSpotBTCUSDTAggTrades", "BTCUSDT", func(tb testing.TB) []rawTrade {
		return loadVision(tb, "vision-spot-btcusdt-aggTrades-2026-01-01-first5000.csv")
	}},
	{"CryptofeedSpotDENTUSDTAggTrades", "DENTUSDT", func(tb testing.TB) []rawTrade {
		return loadCryptofeed(tb, "cryptofeed-spot-10sym-20210405.txt.gz", "dentusdt")
	}},
}

var cache = map[string][]rawTrade{}

func load(tb testing.TB, ds dataset) []rawTrade {
	tb.Helper()
	if r, ok := cache[ds.name]; ok {
		return r
	}
	r := ds.load(tb)
	if len(r) == 0 {
		tb.Fatalf("%s: no trades read", ds.name)
	}
	cache[ds.name] = r
	return r
}
