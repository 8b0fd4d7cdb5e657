package binance

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// recordingsDir holds the real Binance recordings described in its SOURCES.md.
const recordingsDir = "../testdata/binance"

// recLine is one record of a recording: a WebSocket frame or a REST depth
// snapshot body, verbatim.
type recLine struct {
	line     int
	snapshot bool
	url      string // snapshot URL (cryptofeed only)
	data     []byte
}

// readRecording parses a recording with a minimal reader of its own (the
// capture package is written separately): hftbacktest lines are
// "<ns> <json>" where a snapshot is the only JSON without "stream";
// cryptofeed lines are "<float>: <json>" or "<URL> -> <float>: <json>",
// after a "configuration:" line and a "wss://" line.
func readRecording(tb testing.TB, name string) []recLine {
	tb.Helper()
	f, err := os.Open(filepath.Join(recordingsDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	hft := strings.HasPrefix(name, "hft-")
	var out []recLine
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r := recLine{line: n}
		if hft {
			sp := bytes.IndexByte(line, ' ')
			if sp <= 0 {
				tb.Fatalf("%s:%d: no space in hft line", name, n)
			}
			r.data = bytes.Clone(line[sp+1:])
			r.snapshot = !bytes.Contains(r.data[:min(len(r.data), 16)], []byte(`"stream"`))
		} else {
			if bytes.HasPrefix(line, []byte("configuration: ")) || bytes.HasPrefix(line, []byte("wss://")) {
				continue
			}
			if i := bytes.Index(line, []byte(" -> ")); i > 0 && bytes.HasPrefix(line, []byte("http")) {
				r.snapshot = true
				r.url = string(line[:i])
				line = line[i+4:]
			}
			c := bytes.Index(line, []byte(": "))
			if c <= 0 {
				tb.Fatalf("%s:%d: no ': ' in cryptofeed line", name, n)
			}
			r.data = bytes.Clone(line[c+2:])
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return out
}

// recordingMarket tells a recording's market from its file name.
func recordingMarket(name string) market.Kind {
	if strings.Contains(name, "-usdm-") {
		return market.USDM
	}
	return market.Spot
}

// --- the independent reference: encoding/json + math/big -------------------

// refUnmarshal decodes JSON into generic values keeping numbers exact.
func refUnmarshal(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

var scale8 = new(big.Rat).SetInt64(int64(fixed.One))

// refDec converts a decimal string to units of 1e-8 with big.Rat.
func refDec(v any) (fixed.Dec, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("not a string: %v", v)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("bad decimal %q", s)
	}
	r.Mul(r, scale8)
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, fmt.Errorf("%q is not a whole number of 1e-8", s)
	}
	return fixed.Dec(r.Num().Int64()), nil
}

// refInt converts a JSON number to int64 with big.Int.
func refInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("not a number: %v", v)
	}
	i, ok := new(big.Int).SetString(n.String(), 10)
	if !ok || !i.IsInt64() {
		return 0, fmt.Errorf("bad integer %s", n)
	}
	return i.Int64(), nil
}

// cmp collects mismatches between decoded and reference values.
type cmp struct{ errs []string }

func (c *cmp) int(name string, got int64, ref any) {
	want, err := refInt(ref)
	if err != nil {
		c.errs = append(c.errs, fmt.Sprintf("%s: reference: %v", name, err))
	} else if got != want {
		c.errs = append(c.errs, fmt.Sprintf("%s = %d, reference %d", name, got, want))
	}
}

func (c *cmp) dec(name string, got fixed.Dec, ref any) {
	want, err := refDec(ref)
	if err != nil {
		c.errs = append(c.errs, fmt.Sprintf("%s: reference: %v", name, err))
	} else if got != want {
		c.errs = append(c.errs, fmt.Sprintf("%s = %v, reference %v (%v)", name, got, want, ref))
	}
}

func (c *cmp) eq(name string, got, want any) {
	if got != want {
		c.errs = append(c.errs, fmt.Sprintf("%s = %v, reference %v", name, got, want))
	}
}

func (c *cmp) levels(name string, got []market.Level, ref any) {
	arr, ok := ref.([]any)
	if !ok {
		c.errs = append(c.errs, name+": reference is not an array")
		return
	}
	if len(got) != len(arr) {
		c.errs = append(c.errs, fmt.Sprintf("%s: %d levels, reference %d", name, len(got), len(arr)))
		return
	}
	for i, l := range arr {
		pq, _ := l.([]any)
		if len(pq) != 2 {
			c.errs = append(c.errs, fmt.Sprintf("%s[%d]: reference level %v", name, i, l))
			continue
		}
		c.dec(fmt.Sprintf("%s[%d].Price", name, i), got[i].Price, pq[0])
		c.dec(fmt.Sprintf("%s[%d].Qty", name, i), got[i].Qty, pq[1])
	}
}

// has reports whether the reference object has key k.
func has(o map[string]any, k string) bool { _, ok := o[k]; return ok }

// compareFrame checks every field of m against the reference decoding of
// frame and returns the frame's kind by the reference's reading.
func compareFrame(m *Message, frame []byte) (Kind, []string) {
	top, err := refUnmarshal(frame)
	if err != nil {
		return KindUnknown, []string{"reference: " + err.Error()}
	}
	var c cmp
	ev := top
	if data, ok := top["data"].(map[string]any); ok {
		c.eq("Stream", m.Stream, top["stream"])
		ev = data
	}
	var want Kind
	switch ev["e"] {
	case "aggTrade":
		want = KindAggTrade
	case "trade":
		want = KindTrade
	case "depthUpdate":
		want = KindDepthUpdate
	case "bookTicker":
		want = KindBookTicker
	case nil:
		if has(ev, "u") && has(ev, "b") && has(ev, "A") {
			want = KindBookTicker
		}
	}
	c.eq("Kind", m.Kind, want)
	if e, ok := ev["e"].(string); ok {
		c.eq("Event", m.Event, e)
	}
	if has(ev, "E") {
		c.int("EventTime", m.EventTime, ev["E"])
	} else {
		c.eq("EventTime", m.EventTime, int64(0))
	}
	switch want {
	case KindAggTrade, KindTrade:
		t := &m.Trade
		c.eq("Trade.Symbol", t.Symbol, ev["s"])
		c.int("Trade.EventTime", t.EventTime, ev["E"])
		c.int("Trade.Time", t.Time, ev["T"])
		c.dec("Trade.Price", t.Price, ev["p"])
		c.dec("Trade.Qty", t.Qty, ev["q"])
		c.eq("Trade.BuyerMaker", t.BuyerMaker, ev["m"])
		c.eq("Trade.Aggregated", t.Aggregated, want == KindAggTrade)
		if want == KindAggTrade {
			c.int("Trade.ID", t.ID, ev["a"])
			c.int("Trade.FirstID", t.FirstID, ev["f"])
			c.int("Trade.LastID", t.LastID, ev["l"])
		} else {
			c.int("Trade.ID", t.ID, ev["t"])
			c.int("Trade.FirstID", t.FirstID, ev["t"])
			c.int("Trade.LastID", t.LastID, ev["t"])
		}
	case KindDepthUpdate:
		u := &m.Depth
		c.eq("Depth.Symbol", u.Symbol, ev["s"])
		c.int("Depth.EventTime", u.EventTime, ev["E"])
		c.int("Depth.FirstID", u.FirstID, ev["U"])
		c.int("Depth.FinalID", u.FinalID, ev["u"])
		if has(ev, "T") {
			c.int("Depth.TransactTime", u.TransactTime, ev["T"])
		} else {
			c.eq("Depth.TransactTime", u.TransactTime, int64(0))
		}
		c.eq("Depth.HasPrev", u.HasPrev, has(ev, "pu"))
		if has(ev, "pu") {
			c.int("Depth.PrevFinalID", u.PrevFinalID, ev["pu"])
		}
		c.levels("Depth.Bids", u.Bids, ev["b"])
		c.levels("Depth.Asks", u.Asks, ev["a"])
	case KindBookTicker:
		t := &m.Ticker
		c.eq("Ticker.Symbol", t.Symbol, ev["s"])
		c.int("Ticker.UpdateID", t.UpdateID, ev["u"])
		c.dec("Ticker.BidPrice", t.BidPrice, ev["b"])
		c.dec("Ticker.BidQty", t.BidQty, ev["B"])
		c.dec("Ticker.AskPrice", t.AskPrice, ev["a"])
		c.dec("Ticker.AskQty", t.AskQty, ev["A"])
		if has(ev, "E") {
			c.int("Ticker.EventTime", t.EventTime, ev["E"])
		}
		if has(ev, "T") {
			c.int("Ticker.TransactTime", t.TransactTime, ev["T"])
		}
	}
	return want, c.errs
}

// compareSnapshot checks a decoded snapshot against the reference.
func compareSnapshot(snap *market.DepthSnapshot, body []byte) []string {
	ref, err := refUnmarshal(body)
	if err != nil {
		return []string{"reference: " + err.Error()}
	}
	var c cmp
	c.int("LastUpdateID", snap.LastUpdateID, ref["lastUpdateId"])
	if has(ref, "E") {
		c.int("EventTime", snap.EventTime, ref["E"])
		c.int("TransactTime", snap.TransactTime, ref["T"])
	} else {
		c.eq("EventTime", snap.EventTime, int64(0))
		c.eq("TransactTime", snap.TransactTime, int64(0))
	}
	c.levels("Bids", snap.Bids, ref["bids"])
	c.levels("Asks", snap.Asks, ref["asks"])
	return c.errs
}

// recordingCounts are the per-file frame counts stated in
// testdata/binance/SOURCES.md.
var recordingCounts = []struct {
	file                                      string
	depth, trade, aggTrade, ticker, snapshots int
}{
	{"hft-spot-btcusdt-20240808.txt.gz", 3451, 9757, 0, 28040, 1},
	{"hft-spot-btcusdt-20240809.txt.gz", 3044, 10147, 0, 45134, 0},
	{"hft-spot-ethusdt-20240808.txt.gz", 3434, 6106, 0, 24077, 1},
	{"hft-spot-ethusdt-20240809.txt.gz", 3036, 8409, 0, 34681, 0},
	{"hft-usdm-btcusdt-20240718.txt.gz", 3326, 974, 0, 7113, 1},
	{"hft-usdm-btcusdt-20240719.txt.gz", 5696, 9727, 0, 45147, 0},
	{"hft-usdm-btcusdt-20240808.txt.gz", 6551, 21313, 0, 66089, 1},
	{"hft-usdm-ethusdt-20240808.txt.gz", 6586, 14076, 0, 53992, 1},
	{"cryptofeed-spot-10sym-20210405.txt.gz", 4709, 0, 1240, 5408, 10},
	{"cryptofeed-usdm-5sym-20210405.txt.gz", 4423, 0, 574, 3424, 5},
}

// fileStats is what one pass over a recording counted and saw.
type fileStats struct {
	depth, trade, aggTrade, ticker, snapshots int
	aggBySymbol                               map[string]int
	firstTrade, lastTrade                     int64 // raw trade ids, in file order
	tradeGaps                                 int   // raw trade id != previous + 1 (per symbol)
	aggGaps                                   int   // aggregate id or f/l not contiguous (per symbol)
	spotChainBreaks                           int   // spot U != previous u + 1 (per symbol)
	puBreaks                                  int   // USD-M pu != previous u (per symbol)
	firstU, lastU                             int64
}

// TestRecordings decodes every frame and snapshot of every recording,
// checks every field against the reference decoding, re-encodes each one
// (byte for byte on spot, where Binance writes 8 decimals too) and checks
// the counts and id sequences SOURCES.md states.
func TestRecordings(t *testing.T) {
	entries, err := os.ReadDir(recordingsDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".txt.gz") {
			files = append(files, e.Name())
		}
	}
	if len(files) != len(recordingCounts) {
		t.Fatalf("found %d recordings, the count table has %d", len(files), len(recordingCounts))
	}
	// With -short (the race stage of make test) one spot and one USD-M
	// recording run, and the checks across files are left to
	// the full run without -race that make test does next: the decoder is
	// single-threaded, so the race detector only slows this test tenfold.
	counts := recordingCounts
	if testing.Short() {
		counts = counts[:0:0]
		for _, rc := range recordingCounts {
			if rc.file == "hft-spot-btcusdt-20240808.txt.gz" || rc.file == "hft-usdm-btcusdt-20240718.txt.gz" {
				counts = append(counts, rc)
			}
		}
	}
	stats := make(map[string]*fileStats)
	for _, rc := range counts {
		stats[rc.file] = &fileStats{}
	}
	// The files run in parallel; "Files" returns when all have finished, so
	// the checks across files below see every count.
	t.Run("Files", func(t *testing.T) {
		for _, rc := range counts {
			st := stats[rc.file]
			t.Run(rc.file, func(t *testing.T) {
				t.Parallel()
				*st = checkRecording(t, rc.file)
				got := [5]int{st.depth, st.trade, st.aggTrade, st.ticker, st.snapshots}
				want := [5]int{rc.depth, rc.trade, rc.aggTrade, rc.ticker, rc.snapshots}
				if got != want {
					t.Errorf("counts depth/trade/aggTrade/bookTicker/snapshot = %v, SOURCES.md %v", got, want)
				}
				t.Logf("%d depth diffs, %d trades, %d aggTrades, %d bookTicker, %d snapshots",
					st.depth, st.trade, st.aggTrade, st.ticker, st.snapshots)
			})
		}
	})
	if t.Failed() || testing.Short() {
		return
	}

	t.Run("SpotBTCUSDTContiguous", func(t *testing.T) {
		a, b := stats["hft-spot-btcusdt-20240808.txt.gz"], stats["hft-spot-btcusdt-20240809.txt.gz"]
		if got := [3]int{a.depth + b.depth, a.trade + b.trade, a.ticker + b.ticker}; got != [3]int{6495, 19904, 73174} {
			t.Errorf("08+09 depth/trades/bookTicker = %v, SOURCES.md [6495 19904 73174]", got)
		}
		if a.firstTrade != 3735683259 || b.lastTrade != 3735703162 || b.firstTrade != a.lastTrade+1 {
			t.Errorf("trade ids %d..%d, %d..%d; SOURCES.md 3735683259 -> 3735703162 with no gap",
				a.firstTrade, a.lastTrade, b.firstTrade, b.lastTrade)
		}
		if a.firstU != 50093239189 || b.lastU != 50093696318 {
			t.Errorf("depth U..u %d..%d, SOURCES.md 50093239189 -> 50093696318", a.firstU, b.lastU)
		}
	})
	t.Run("Sequences", func(t *testing.T) {
		for name, st := range stats {
			if st.tradeGaps+st.aggGaps+st.spotChainBreaks+st.puBreaks != 0 {
				t.Errorf("%s: trade gaps %d, aggTrade gaps %d, spot U/u breaks %d, pu breaks %d; SOURCES.md says none",
					name, st.tradeGaps, st.aggGaps, st.spotChainBreaks, st.puBreaks)
			}
		}
	})
	t.Run("CryptofeedAggTradesPerSymbol", func(t *testing.T) {
		spot := map[string]int{"DENTUSDT": 716, "ZILUSDT": 331, "MANAUSDT": 98, "BTCSTUSDT": 50, "BTCAUD": 20, "ETHBRL": 18, "AXSBNB": 4, "QTUMETH": 3}
		usdm := map[string]int{"NEOUSDT": 180, "SANDUSDT": 166, "CTKUSDT": 89, "BATUSDT": 86, "CHRUSDT": 53}
		for file, want := range map[string]map[string]int{
			"cryptofeed-spot-10sym-20210405.txt.gz": spot,
			"cryptofeed-usdm-5sym-20210405.txt.gz":  usdm,
		} {
			if got := stats[file].aggBySymbol; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: aggTrades per symbol %v, SOURCES.md %v", file, got, want)
			}
		}
	})
}

// checkRecording runs one recording through the decoder, the reference and
// the encoders.
func checkRecording(t *testing.T, file string) fileStats {
	kind := recordingMarket(file)
	lines := readRecording(t, file)
	d := NewDecoder()
	var (
		m, m2     Message
		snap      market.DepthSnapshot
		buf, env  []byte
		st        = fileStats{aggBySymbol: map[string]int{}}
		lastTrade = map[string]int64{}
		lastAgg   = map[string]*market.Trade{}
		lastU     = map[string]int64{}
		failures  int
	)
	fail := func(r recLine, format string, args ...any) {
		failures++
		if failures <= 10 {
			t.Errorf("%s:%d: %s", file, r.line, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range lines {
		if r.snapshot {
			st.snapshots++
			if err := DecodeDepthSnapshot(r.data, &snap); err != nil {
				fail(r, "snapshot: %v", err)
				continue
			}
			if errs := compareSnapshot(&snap, r.data); len(errs) > 0 {
				fail(r, "snapshot: %v", errs)
			}
			snapKind := market.Spot
			if snap.EventTime != 0 {
				snapKind = market.USDM
			}
			if snapKind != kind {
				fail(r, "snapshot market %v in a %v recording", snapKind, kind)
			}
			buf = AppendDepthSnapshot(buf[:0], &snap, kind)
			if kind == market.Spot && !bytes.Equal(buf, r.data) {
				fail(r, "re-encoded snapshot differs from the original")
			}
			var snap2 market.DepthSnapshot
			if err := DecodeDepthSnapshot(buf, &snap2); err != nil || !snapshotsEqual(&snap, &snap2) {
				fail(r, "snapshot round trip: %v", err)
			}
			continue
		}
		if err := d.Decode(r.data, &m); err != nil {
			fail(r, "decode: %v", err)
			continue
		}
		k, errs := compareFrame(&m, r.data)
		if len(errs) > 0 {
			fail(r, "%v", errs)
		}
		switch k {
		case KindDepthUpdate:
			st.depth++
			u := &m.Depth
			if st.firstU == 0 {
				st.firstU = u.FirstID
			}
			st.lastU = u.FinalID
			if prev, ok := lastU[u.Symbol]; ok {
				if u.HasPrev && u.PrevFinalID != prev {
					st.puBreaks++
				}
				if !u.HasPrev && u.FirstID != prev+1 {
					st.spotChainBreaks++
				}
			}
			lastU[u.Symbol] = u.FinalID
		case KindTrade:
			st.trade++
			if st.firstTrade == 0 {
				st.firstTrade = m.Trade.ID
			}
			st.lastTrade = m.Trade.ID
			if prev, ok := lastTrade[m.Trade.Symbol]; ok && m.Trade.ID != prev+1 {
				st.tradeGaps++
			}
			lastTrade[m.Trade.Symbol] = m.Trade.ID
		case KindAggTrade:
			st.aggTrade++
			st.aggBySymbol[m.Trade.Symbol]++
			if prev, ok := lastAgg[m.Trade.Symbol]; ok && (m.Trade.ID != prev.ID+1 || m.Trade.FirstID != prev.LastID+1) {
				st.aggGaps++
			}
			tr := m.Trade
			lastAgg[m.Trade.Symbol] = &tr
		case KindBookTicker:
			st.ticker++
		}
		// Re-encode the payload and the envelope; decode again.
		buf = appendPayload(buf[:0], &m, kind)
		env = AppendCombined(env[:0], m.Stream, buf)
		if kind == market.Spot && !bytes.Equal(env, r.data) {
			fail(r, "re-encoded frame differs:\n got %s\nwant %s", env, r.data)
		}
		if err := d.Decode(env, &m2); err != nil {
			fail(r, "decode re-encoded: %v", err)
		} else if diff := messageDiff(&m, &m2); diff != "" {
			fail(r, "round trip: %s", diff)
		}
	}
	if failures > 10 {
		t.Errorf("%s: %d failures in all", file, failures)
	}
	return st
}
