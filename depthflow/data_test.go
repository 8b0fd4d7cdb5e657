package depthflow

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// This file loads the bundled recordings with encoding/json, independently
// of the project's scanner. Frames are decoded into map[string]json.RawMessage
// because encoding/json matches struct fields case-insensitively and spot
// trade frames carry both "m" and "M".

const dataDir = "../testdata/binance"

type evKind uint8

const (
	evTrade evKind = iota + 1
	evDepth
	evSnap
)

// rawLevel is a level as Binance wrote it.
type rawLevel struct{ P, Q string }

type event struct {
	kind evKind
	// trade
	T          int64
	buyerMaker bool
	p, q       string
	id         int64
	// depth
	E, TT, U, u, pu int64
	hasPu           bool
	bids, asks      []rawLevel
	// snapshot
	last int64
}

type dataset struct {
	name  string
	files []string
	kind  market.Kind
}

var datasets = []dataset{
	{"spot-btcusdt", []string{"hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz"}, market.Spot},
	{"usdm-btcusdt", []string{"hft-usdm-btcusdt-20240808.txt.gz"}, market.USDM},
	{"usdm-btcusdt-july", []string{"hft-usdm-btcusdt-20240718.txt.gz", "hft-usdm-btcusdt-20240719.txt.gz"}, market.USDM},
	{"spot-ethusdt", []string{"hft-spot-ethusdt-20240808.txt.gz", "hft-spot-ethusdt-20240809.txt.gz"}, market.Spot},
	{"usdm-ethusdt", []string{"hft-usdm-ethusdt-20240808.txt.gz"}, market.USDM},
}

var loaded = map[string][]event{}

// load reads a dataset's trade, depth and snapshot lines in file order.
func load(tb testing.TB, ds dataset) []event {
	tb.Helper()
	if evs, ok := loaded[ds.name]; ok {
		return evs
	}
	var evs []event
	for _, name := range ds.files {
		f, err := os.Open(filepath.Join(dataDir, name))
		if err != nil {
			tb.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		line := 0
		for sc.Scan() {
			line++
			_, js, ok := bytes.Cut(sc.Bytes(), []byte(" "))
			if !ok {
				tb.Fatalf("%s:%d: no space", name, line)
			}
			if e, ok := parseLine(tb, js); ok {
				evs = append(evs, e)
			}
		}
		if err := sc.Err(); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		f.Close()
	}
	loaded[ds.name] = evs
	return evs
}

func parseLine(tb testing.TB, js []byte) (event, bool) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		tb.Fatalf("decode %.80s: %v", js, err)
	}
	if _, ok := top["stream"]; !ok {
		e := event{kind: evSnap, last: jint(tb, top, "lastUpdateId")}
		e.bids = jlevels(tb, top, "bids")
		e.asks = jlevels(tb, top, "asks")
		return e, true
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(top["data"], &d); err != nil {
		tb.Fatal(err)
	}
	var typ string
	if raw, ok := d["e"]; ok {
		_ = json.Unmarshal(raw, &typ)
	}
	switch typ {
	case "trade", "aggTrade":
		e := event{kind: evTrade, T: jint(tb, d, "T"), p: jstr(tb, d, "p"), q: jstr(tb, d, "q")}
		if err := json.Unmarshal(d["m"], &e.buyerMaker); err != nil {
			tb.Fatal(err)
		}
		if _, ok := d["t"]; ok {
			e.id = jint(tb, d, "t")
		} else {
			e.id = jint(tb, d, "a")
		}
		return e, true
	case "depthUpdate":
		e := event{kind: evDepth, E: jint(tb, d, "E"), U: jint(tb, d, "U"), u: jint(tb, d, "u")}
		if _, ok := d["T"]; ok {
			e.TT = jint(tb, d, "T")
		}
		if _, ok := d["pu"]; ok {
			e.pu, e.hasPu = jint(tb, d, "pu"), true
		}
		e.bids = jlevels(tb, d, "b")
		e.asks = jlevels(tb, d, "a")
		return e, true
	}
	return event{}, false
}

func jint(tb testing.TB, m map[string]json.RawMessage, k string) int64 {
	n, err := strconv.ParseInt(string(m[k]), 10, 64)
	if err != nil {
		tb.Fatalf("field %q: %v", k, err)
	}
	return n
}

func jstr(tb testing.TB, m map[string]json.RawMessage, k string) string {
	var s string
	if err := json.Unmarshal(m[k], &s); err != nil {
		tb.Fatalf("field %q: %v", k, err)
	}
	return s
}

func jlevels(tb testing.TB, m map[string]json.RawMessage, k string) []rawLevel {
	var ls [][2]string
	if err := json.Unmarshal(m[k], &ls); err != nil {
		tb.Fatalf("field %q: %v", k, err)
	}
	out := make([]rawLevel, len(ls))
	for i, l := range ls {
		out[i] = rawLevel{l[0], l[1]}
	}
	return out
}

// units converts a decimal string to an integer count of 1e-8 with plain
// string handling (the reference does not use fixed.Parse).
func units(s string) int64 {
	ip, fp, _ := strings.Cut(s, ".")
	fp = strings.TrimRight(fp, "0")
	if len(fp) > 8 {
		panic("more than 8 decimals: " + s)
	}
	fp += strings.Repeat("0", 8-len(fp))
	i, err := strconv.ParseInt(ip, 10, 64)
	if err != nil {
		panic(err)
	}
	f, err := strconv.ParseInt(fp, 10, 64)
	if err != nil {
		panic(err)
	}
	return i*100_000_000 + f
}

// The tracker's inputs, built with the project's types.

func toTrade(e *event) market.Trade {
	return market.Trade{ID: e.id, Price: fixed.MustParse(e.p), Qty: fixed.MustParse(e.q), Time: e.T, BuyerMaker: e.buyerMaker}
}

func toLevels(ls []rawLevel) []market.Level {
	out := make([]market.Level, len(ls))
	for i, l := range ls {
		out[i] = market.Level{Price: fixed.MustParse(l.P), Qty: fixed.MustParse(l.Q)}
	}
	return out
}

func toUpdate(e *event) *market.DepthUpdate {
	return &market.DepthUpdate{EventTime: e.E, TransactTime: e.TT, FirstID: e.U, FinalID: e.u,
		PrevFinalID: e.pu, HasPrev: e.hasPu, Bids: toLevels(e.bids), Asks: toLevels(e.asks)}
}

func toSnapshot(e *event) *market.DepthSnapshot {
	return &market.DepthSnapshot{LastUpdateID: e.last, Bids: toLevels(e.bids), Asks: toLevels(e.asks)}
}

// stale says whether a depth event is already covered by a book at id,
// by the market's rule (the recordings are verified gap-free, so the
// continuity checks of book.Syncer are not repeated here).
func stale(kind market.Kind, e *event, id int64, bridged bool) bool {
	if kind == market.USDM && !bridged {
		return e.u < id
	}
	return e.u <= id
}

// uTime is an update's time as the reference reads it: T when present.
func uTime(e *event) int64 {
	if e.TT != 0 {
		return e.TT
	}
	return e.E
}

type flowVolume = flow.Volume
