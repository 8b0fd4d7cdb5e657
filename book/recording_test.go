package book

// A small, deliberately independent reader of the bundled recordings: it
// parses the lines with encoding/json into market types, so the book's
// tests do not depend on the project's own decoder and capture packages.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

const dataDir = "../testdata/binance"

type recKind uint8

const (
	recDepth recKind = iota
	recSnapshot
	recTicker
)

// rec is one recorded message of interest: a depth event, a REST snapshot or
// a bookTicker.
type rec struct {
	kind   recKind
	sym    string
	depth  *market.DepthUpdate
	snap   *market.DepthSnapshot
	ticker market.BookTicker
}

// wireMsg has a field for every key of depthUpdate, bookTicker and snapshot
// bodies, in both letter cases: encoding/json matches keys case-insensitively
// when there is no exact match, so "e" must not fall through to "E".
type wireMsg struct {
	Ev     string          `json:"e"`
	E      int64           `json:"E"`
	Sym    string          `json:"s"`
	Tl     json.Number     `json:"t"`
	T      int64           `json:"T"`
	U      int64           `json:"U"`
	Ul     int64           `json:"u"`
	Pu     *int64          `json:"pu"`
	Bl     json.RawMessage `json:"b"`
	Al     json.RawMessage `json:"a"`
	B      string          `json:"B"`
	A      string          `json:"A"`
	LastID int64           `json:"lastUpdateId"`
	Bids   [][2]string     `json:"bids"`
	Asks   [][2]string     `json:"asks"`
}

type envelope struct {
	Stream string          `json:"stream"`
	Data   json.RawMessage `json:"data"`
}

func parseLevels(pairs [][2]string) ([]market.Level, error) {
	out := make([]market.Level, 0, len(pairs))
	for i, p := range pairs {
		px, err := fixed.ParseString(p[0])
		if err != nil {
			return nil, fmt.Errorf("[%d] price %q: %w", i, p[0], err)
		}
		q, err := fixed.ParseString(p[1])
		if err != nil {
			return nil, fmt.Errorf("[%d] qty %q: %w", i, p[1], err)
		}
		out = append(out, market.Level{Price: px, Qty: q})
	}
	return out, nil
}

func parseSnapshot(sym string, body []byte) (*market.DepthSnapshot, error) {
	var w wireMsg
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	s := &market.DepthSnapshot{Symbol: sym, LastUpdateID: w.LastID, EventTime: w.E, TransactTime: w.T}
	var err error
	if s.Bids, err = parseLevels(w.Bids); err != nil {
		return nil, fmt.Errorf("bids%w", err)
	}
	if s.Asks, err = parseLevels(w.Asks); err != nil {
		return nil, fmt.Errorf("asks%w", err)
	}
	return s, nil
}

// parseFrame returns the record of a combined-stream frame, or ok=false
// for streams the book does not use (trades).
func parseFrame(body []byte) (rec, bool, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return rec{}, false, err
	}
	isDepth := strings.Contains(env.Stream, "@depth")
	isTicker := strings.HasSuffix(env.Stream, "@bookTicker")
	if !isDepth && !isTicker {
		return rec{}, false, nil
	}
	var w wireMsg
	if err := json.Unmarshal(env.Data, &w); err != nil {
		return rec{}, false, fmt.Errorf("stream %s: %w", env.Stream, err)
	}
	if isTicker {
		var bp, ap string
		if err := json.Unmarshal(w.Bl, &bp); err != nil {
			return rec{}, false, fmt.Errorf("bookTicker b: %w", err)
		}
		if err := json.Unmarshal(w.Al, &ap); err != nil {
			return rec{}, false, fmt.Errorf("bookTicker a: %w", err)
		}
		t := market.BookTicker{Symbol: w.Sym, UpdateID: w.Ul, EventTime: w.E, TransactTime: w.T}
		var err error
		for _, f := range []struct {
			dst *fixed.Dec
			s   string
		}{{&t.BidPrice, bp}, {&t.BidQty, w.B}, {&t.AskPrice, ap}, {&t.AskQty, w.A}} {
			if *f.dst, err = fixed.ParseString(f.s); err != nil {
				return rec{}, false, fmt.Errorf("bookTicker %q: %w", f.s, err)
			}
		}
		return rec{kind: recTicker, sym: w.Sym, ticker: t}, true, nil
	}
	d := &market.DepthUpdate{Symbol: w.Sym, EventTime: w.E, TransactTime: w.T, FirstID: w.U, FinalID: w.Ul}
	if w.Pu != nil {
		d.PrevFinalID, d.HasPrev = *w.Pu, true
	}
	var bids, asks [][2]string
	if err := json.Unmarshal(w.Bl, &bids); err != nil {
		return rec{}, false, fmt.Errorf("depth b: %w", err)
	}
	if err := json.Unmarshal(w.Al, &asks); err != nil {
		return rec{}, false, fmt.Errorf("depth a: %w", err)
	}
	var err error
	if d.Bids, err = parseLevels(bids); err != nil {
		return rec{}, false, fmt.Errorf("depth b%w", err)
	}
	if d.Asks, err = parseLevels(asks); err != nil {
		return rec{}, false, fmt.Errorf("depth a%w", err)
	}
	return rec{kind: recDepth, sym: w.Sym, depth: d}, true, nil
}

// parseFile reads one recording. hft files hold "<ns> <json>" lines, a line
// without "stream" being the REST snapshot of the file's symbol; cryptofeed
// files hold "<secs>: <json>" and "<URL> -> <secs>: <json>" (snapshots, the
// symbol in the URL), after a configuration line and a wss:// URL line.
func parseFile(path string) ([]rec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	base := filepath.Base(path)
	hft := strings.HasPrefix(base, "hft-")
	var fileSym string
	if hft { // hft-<market>-<symbol>-<date>.txt.gz
		parts := strings.Split(base, "-")
		fileSym = strings.ToUpper(parts[2])
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var out []rec
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		wrap := func(err error) error { return fmt.Errorf("%s:%d: %w", base, n, err) }
		if hft {
			sp := bytes.IndexByte(line, ' ')
			if sp < 0 {
				return nil, wrap(fmt.Errorf("no space"))
			}
			body := line[sp+1:]
			if !bytes.Contains(body[:min(len(body), 16)], []byte(`"stream"`)) {
				s, err := parseSnapshot(fileSym, body)
				if err != nil {
					return nil, wrap(err)
				}
				out = append(out, rec{kind: recSnapshot, sym: fileSym, snap: s})
				continue
			}
			r, ok, err := parseFrame(body)
			if err != nil {
				return nil, wrap(err)
			}
			if ok {
				out = append(out, r)
			}
			continue
		}
		if bytes.HasPrefix(line, []byte("configuration:")) || bytes.HasPrefix(line, []byte("wss://")) {
			continue
		}
		if i := bytes.Index(line, []byte(" -> ")); i >= 0 {
			u, err := url.Parse(string(line[:i]))
			if err != nil {
				return nil, wrap(err)
			}
			sym := u.Query().Get("symbol")
			rest := line[i+4:]
			c := bytes.Index(rest, []byte(": "))
			if sym == "" || c < 0 {
				return nil, wrap(fmt.Errorf("snapshot line without symbol or body"))
			}
			s, err := parseSnapshot(sym, rest[c+2:])
			if err != nil {
				return nil, wrap(err)
			}
			out = append(out, rec{kind: recSnapshot, sym: sym, snap: s})
			continue
		}
		c := bytes.Index(line, []byte(": "))
		if c < 0 {
			return nil, wrap(fmt.Errorf("no time prefix"))
		}
		r, ok, err := parseFrame(line[c+2:])
		if err != nil {
			return nil, wrap(err)
		}
		if ok {
			out = append(out, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	return out, nil
}

var recCache sync.Map // file name -> []rec

// mustLoad returns the records of the named files (in data dir), in order,
// parsed once per test binary. Callers must not modify the records.
func mustLoad(tb testing.TB, files ...string) []rec {
	tb.Helper()
	var all []rec
	for _, name := range files {
		v, ok := recCache.Load(name)
		if !ok {
			recs, err := parseFile(filepath.Join(dataDir, name))
			if err != nil {
				tb.Fatalf("load %s: %v", name, err)
			}
			v, _ = recCache.LoadOrStore(name, recs)
		}
		all = append(all, v.([]rec)...)
	}
	if len(all) == 0 {
		tb.Fatalf("no records in %v", files)
	}
	return all
}
