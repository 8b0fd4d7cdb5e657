package replay_test

// An independent computation of the replay JSON contract, written
// differently from the pipeline on purpose: encoding/json for the frames,
// math/big.Rat for every number, a map for the book and the plain spot
// procedure. The pipeline's output must agree with it exactly.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

type refBar struct {
	Start                         int64
	Open, High, Low, Close        *big.Rat
	Volume, Buy, Sell, Delta, CVD *big.Rat
	Trades                        int64
}

type refSymbol struct {
	Symbol     string
	Trades     int64
	Buy, Sell  *big.Rat
	Notional   *big.Rat
	Bars       []*refBar
	cvd        *big.Rat
	bids, asks map[string]*big.Rat // keyed by canonical price string
	bookID     int64
	synced     bool
	buffered   []refDepth
	firstU     int64
	haveFirstU bool
}

type refDepth struct {
	U, u int64
	b, a [][2]string
}

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("bad decimal " + s)
	}
	return r
}

// canon returns a canonical key for a decimal string.
func canon(s string) string { return rat(s).RatString() }

// referenceSpot computes bars, summary and the top-depth book of a spot
// hftbacktest recording (one symbol, files in order).
func referenceSpot(t *testing.T, files []string) *refSymbol {
	t.Helper()
	rs := &refSymbol{Buy: new(big.Rat), Sell: new(big.Rat), Notional: new(big.Rat), cvd: new(big.Rat),
		bids: map[string]*big.Rat{}, asks: map[string]*big.Rat{}}
	var cur *refBar
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		gz, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(gz)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := sc.Bytes()
			sp := bytes.IndexByte(line, ' ')
			body := line[sp+1:]
			var env struct {
				Stream string          `json:"stream"`
				Data   json.RawMessage `json:"data"`
				LastID *int64          `json:"lastUpdateId"`
				Bids   [][2]string     `json:"bids"`
				Asks   [][2]string     `json:"asks"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch {
			case env.LastID != nil: // snapshot
				rs.snapshot(t, *env.LastID, env.Bids, env.Asks)
			case strings.HasSuffix(env.Stream, "@trade"):
				// A map, not a struct: encoding/json matches keys case-insensitively,
				// so a struct field for "m" would be overwritten by spot's "M".
				var raw map[string]json.RawMessage
				if err := json.Unmarshal(env.Data, &raw); err != nil {
					t.Fatal(err)
				}
				var tr struct {
					S, P, Q string
					T       int64
					M       bool
				}
				for k, dst := range map[string]any{"s": &tr.S, "p": &tr.P, "q": &tr.Q, "T": &tr.T, "m": &tr.M} {
					if err := json.Unmarshal(raw[k], dst); err != nil {
						t.Fatalf("trade field %q: %v", k, err)
					}
				}
				rs.Symbol = tr.S
				p, q := rat(tr.P), rat(tr.Q)
				rs.Trades++
				rs.Notional.Add(rs.Notional, new(big.Rat).Mul(p, q))
				start := tr.T - tr.T%60000
				if cur == nil || cur.Start != start {
					cur = &refBar{Start: start, Open: p, High: p, Low: p, Volume: new(big.Rat), Buy: new(big.Rat), Sell: new(big.Rat)}
					rs.Bars = append(rs.Bars, cur)
				}
				if p.Cmp(cur.High) > 0 {
					cur.High = p
				}
				if p.Cmp(cur.Low) < 0 {
					cur.Low = p
				}
				cur.Close = p
				cur.Trades++
				cur.Volume.Add(cur.Volume, q)
				if tr.M { // buyer is maker: taker sold
					cur.Sell.Add(cur.Sell, q)
					rs.Sell.Add(rs.Sell, q)
					rs.cvd.Sub(rs.cvd, q)
				} else {
					cur.Buy.Add(cur.Buy, q)
					rs.Buy.Add(rs.Buy, q)
					rs.cvd.Add(rs.cvd, q)
				}
				cur.Delta = new(big.Rat).Sub(cur.Buy, cur.Sell)
				cur.CVD = new(big.Rat).Set(rs.cvd)
			case strings.Contains(env.Stream, "@depth"):
				var d struct {
					U  int64       `json:"U"`
					Lu int64       `json:"u"`
					B  [][2]string `json:"b"`
					A  [][2]string `json:"a"`
				}
				if err := json.Unmarshal(env.Data, &d); err != nil {
					t.Fatal(err)
				}
				rs.depth(t, refDepth{U: d.U, u: d.Lu, b: d.B, a: d.A})
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		gz.Close()
		fh.Close()
	}
	if !rs.synced {
		t.Fatal("reference book never synced")
	}
	return rs
}

func (rs *refSymbol) snapshot(t *testing.T, id int64, bids, asks [][2]string) {
	if !rs.haveFirstU || id < rs.firstU {
		t.Fatalf("reference: snapshot %d older than first buffered U %d", id, rs.firstU)
	}
	for _, l := range bids {
		if rat(l[1]).Sign() != 0 {
			rs.bids[canon(l[0])] = rat(l[1])
		}
	}
	for _, l := range asks {
		if rat(l[1]).Sign() != 0 {
			rs.asks[canon(l[0])] = rat(l[1])
		}
	}
	rs.bookID = id
	rs.synced = true
	buf := rs.buffered
	rs.buffered = nil
	for _, d := range buf {
		rs.depth(t, d)
	}
}

func (rs *refSymbol) depth(t *testing.T, d refDepth) {
	if !rs.synced {
		if !rs.haveFirstU {
			rs.firstU, rs.haveFirstU = d.U, true
		}
		rs.buffered = append(rs.buffered, d)
		return
	}
	if d.u <= rs.bookID {
		return
	}
	if d.U > rs.bookID+1 {
		t.Fatalf("reference: gap U=%d id=%d", d.U, rs.bookID)
	}
	for _, l := range d.b {
		if q := rat(l[1]); q.Sign() == 0 {
			delete(rs.bids, canon(l[0]))
		} else {
			rs.bids[canon(l[0])] = q
		}
	}
	for _, l := range d.a {
		if q := rat(l[1]); q.Sign() == 0 {
			delete(rs.asks, canon(l[0]))
		} else {
			rs.asks[canon(l[0])] = q
		}
	}
	rs.bookID = d.u
}

func topLevels(m map[string]*big.Rat, n int, desc bool) [][2]*big.Rat {
	out := make([][2]*big.Rat, 0, len(m))
	for p, q := range m {
		out = append(out, [2]*big.Rat{rat(p), q})
	}
	sort.Slice(out, func(i, j int) bool {
		c := out[i][0].Cmp(out[j][0])
		if desc {
			return c > 0
		}
		return c < 0
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// roundHalfEven8 rounds r to 8 decimals, half to even, and returns it as a Rat.
func roundHalfEven8(r *big.Rat) *big.Rat {
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt64(100_000_000))
	q, m := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	twice := new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2))
	switch c := twice.Cmp(scaled.Denom()); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		if scaled.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return new(big.Rat).SetFrac(q, big.NewInt(100_000_000))
}

// decField reads a JSON string holding a decimal and fails on anything else:
// the contract says decimals are strings.
func decField(t *testing.T, obj map[string]json.RawMessage, key string) *big.Rat {
	t.Helper()
	raw, ok := obj[key]
	if !ok {
		t.Fatalf("missing %q in %v", key, obj)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%q is not a JSON string: %s", key, raw)
	}
	return rat(s)
}

func intField(t *testing.T, obj map[string]json.RawMessage, key string) int64 {
	t.Helper()
	raw, ok := obj[key]
	if !ok {
		t.Fatalf("missing %q", key)
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", key, err)
	}
	return v
}

func eqRat(t *testing.T, what string, got, want *big.Rat) {
	t.Helper()
	if got.Cmp(want) != 0 {
		t.Errorf("%s = %s, want %s", what, got.FloatString(8), want.FloatString(8))
	}
}

func levelsOf(t *testing.T, raw json.RawMessage) [][2]*big.Rat {
	t.Helper()
	var ls [][2]string
	if err := json.Unmarshal(raw, &ls); err != nil {
		t.Fatalf("levels: %v", err)
	}
	out := make([][2]*big.Rat, len(ls))
	for i, l := range ls {
		out[i] = [2]*big.Rat{rat(l[0]), rat(l[1])}
	}
	return out
}

func compareLevels(t *testing.T, side string, got, want [][2]*big.Rat) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d levels, want %d", side, len(got), len(want))
	}
	for i := range got {
		if got[i][0].Cmp(want[i][0]) != 0 || got[i][1].Cmp(want[i][1]) != 0 {
			t.Errorf("%s[%d] = %s@%s, want %s@%s", side, i, got[i][1].FloatString(8), got[i][0].FloatString(8),
				want[i][1].FloatString(8), want[i][0].FloatString(8))
		}
	}
}

// checkAgainstReference compares replay JSON lines with the reference.
func checkAgainstReference(t *testing.T, out []byte, ref *refSymbol, depth int) {
	t.Helper()
	var bars []map[string]json.RawMessage
	var summary map[string]json.RawMessage
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		var typ string
		_ = json.Unmarshal(obj["type"], &typ)
		switch typ {
		case "bar":
			bars = append(bars, obj)
		case "summary":
			if summary != nil {
				t.Fatal("two summary lines for one symbol")
			}
			summary = obj
		default:
			t.Fatalf("unexpected line type %q", typ)
		}
	}
	if summary == nil {
		t.Fatal("no summary line")
	}
	if got := intField(t, summary, "trades"); got != ref.Trades {
		t.Errorf("summary trades = %d, want %d", got, ref.Trades)
	}
	eqRat(t, "buy_volume", decField(t, summary, "buy_volume"), ref.Buy)
	eqRat(t, "sell_volume", decField(t, summary, "sell_volume"), ref.Sell)
	eqRat(t, "delta", decField(t, summary, "delta"), new(big.Rat).Sub(ref.Buy, ref.Sell))
	vol := new(big.Rat).Add(ref.Buy, ref.Sell)
	eqRat(t, "vwap", decField(t, summary, "vwap"), roundHalfEven8(new(big.Rat).Quo(ref.Notional, vol)))

	var book map[string]json.RawMessage
	if err := json.Unmarshal(summary["book"], &book); err != nil || book == nil {
		t.Fatalf("summary book: %v %s", err, summary["book"])
	}
	if got := intField(t, book, "last_update_id"); got != ref.bookID {
		t.Errorf("book last_update_id = %d, want %d", got, ref.bookID)
	}
	compareLevels(t, "bids", levelsOf(t, book["bids"]), topLevels(ref.bids, depth, true))
	compareLevels(t, "asks", levelsOf(t, book["asks"]), topLevels(ref.asks, depth, false))

	if len(bars) != len(ref.Bars) {
		t.Fatalf("%d bars, want %d", len(bars), len(ref.Bars))
	}
	for i, b := range bars {
		w := ref.Bars[i]
		name := fmt.Sprintf("bar %d", w.Start)
		if got := intField(t, b, "start"); got != w.Start {
			t.Fatalf("bar[%d].start = %d, want %d", i, got, w.Start)
		}
		if got := intField(t, b, "trades"); got != w.Trades {
			t.Errorf("%s trades = %d, want %d", name, got, w.Trades)
		}
		eqRat(t, name+" open", decField(t, b, "open"), w.Open)
		eqRat(t, name+" high", decField(t, b, "high"), w.High)
		eqRat(t, name+" low", decField(t, b, "low"), w.Low)
		eqRat(t, name+" close", decField(t, b, "close"), w.Close)
		eqRat(t, name+" volume", decField(t, b, "volume"), w.Volume)
		eqRat(t, name+" buy_volume", decField(t, b, "buy_volume"), w.Buy)
		eqRat(t, name+" sell_volume", decField(t, b, "sell_volume"), w.Sell)
		eqRat(t, name+" delta", decField(t, b, "delta"), w.Delta)
		eqRat(t, name+" cvd", decField(t, b, "cvd"), w.CVD)
	}
}
