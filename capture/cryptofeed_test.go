package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/market"
)

// TestCryptofeedFiles reads both bundled cryptofeed recordings and checks
// them against SOURCES.md: per-symbol aggTrade counts, stream counts, one
// snapshot per symbol with the URL's symbol and market, and local times.
func TestCryptofeedFiles(t *testing.T) {
	tests := []struct {
		file                  string
		market                market.Kind
		aggTrades             map[string]int
		depth, tickers, lines int
		from, to              string // recording window, UTC
	}{
		{
			file:   "cryptofeed-spot-10sym-20210405.txt.gz",
			market: market.Spot,
			aggTrades: map[string]int{"DENTUSDT": 716, "ZILUSDT": 331, "MANAUSDT": 98, "BTCSTUSDT": 50,
				"BTCAUD": 20, "ETHBRL": 18, "AXSBNB": 4, "QTUMETH": 3},
			depth: 4709, tickers: 5408, lines: 11370,
			from: "2021-04-05T18:33:22Z", to: "2021-04-05T18:35:23Z",
		},
		{
			file:      "cryptofeed-usdm-5sym-20210405.txt.gz",
			market:    market.USDM,
			aggTrades: map[string]int{"NEOUSDT": 180, "SANDUSDT": 166, "CTKUSDT": 89, "BATUSDT": 86, "CHRUSDT": 53},
			depth:     4423, tickers: 3424, lines: 8428,
			from: "2021-04-05T18:36:36Z", to: "2021-04-05T18:38:37Z",
		},
	}
	// The spot file also subscribed to symbols that never traded.
	spotSnapshots := []string{"AXSBNB", "BTCAUD", "BTCSTUSDT", "DENTUSDT", "ETHBRL", "MANAUSDT", "NEOUSDC", "QTUMETH", "RENBTCETH", "ZILUSDT"}
	for _, tt := range tests {
		t.Run(tt.market.String(), func(t *testing.T) {
			r := MustOpen(t, dataPath(tt.file), OpenOptions{})
			recs, lineErrs, err := ReadAll(t, r)
			if !errors.Is(err, io.EOF) || len(lineErrs) > 0 {
				t.Fatalf("ended with %v after bad lines %v", err, lineErrs)
			}
			from, _ := time.Parse(time.RFC3339, tt.from)
			to, _ := time.Parse(time.RFC3339, tt.to)
			agg := map[string]int{}
			var depth, tickers int
			var snapSyms []string
			prev := int64(0)
			for i, rec := range recs {
				if rec.Local < prev || rec.Local < from.UnixNano() || rec.Local > to.UnixNano() {
					t.Fatalf("record %d: local %s out of order or outside %s..%s", i, time.Unix(0, rec.Local).UTC(), tt.from, tt.to)
				}
				prev = rec.Local
				if !rec.MarketKnown || rec.Market != tt.market {
					t.Fatalf("record %d: market %v known %v, want %v", i, rec.Market, rec.MarketKnown, tt.market)
				}
				if rec.Kind == Snapshot {
					snapSyms = append(snapSyms, rec.Symbol)
					var body struct {
						LastUpdateID int64 `json:"lastUpdateId"`
						E            int64 `json:"E"`
					}
					if err := json.Unmarshal(rec.Data, &body); err != nil || body.LastUpdateID == 0 {
						t.Fatalf("snapshot %s: %v", rec.Symbol, err)
					}
					if (body.E != 0) != (tt.market == market.USDM) {
						t.Errorf("snapshot %s: E=%d in a %v file", rec.Symbol, body.E, tt.market)
					}
					continue
				}
				var env struct {
					Stream string
					Data   struct{ S string }
				}
				if err := json.Unmarshal(rec.Data, &env); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if rec.Symbol != env.Data.S || !strings.HasPrefix(env.Stream, strings.ToLower(env.Data.S)+"@") {
					t.Fatalf("record %d: symbol %q, frame says %q in stream %q", i, rec.Symbol, env.Data.S, env.Stream)
				}
				switch {
				case strings.HasSuffix(env.Stream, "@aggTrade"):
					agg[rec.Symbol]++
				case strings.HasSuffix(env.Stream, "@depth@100ms"):
					depth++
				case strings.HasSuffix(env.Stream, "@bookTicker"):
					tickers++
				default:
					t.Fatalf("record %d: stream %q", i, env.Stream)
				}
			}
			if !maps.Equal(agg, tt.aggTrades) {
				t.Errorf("aggTrades per symbol %v, want %v", agg, tt.aggTrades)
			}
			if depth != tt.depth || tickers != tt.tickers {
				t.Errorf("depth %d bookTicker %d, want %d %d", depth, tickers, tt.depth, tt.tickers)
			}
			slices.Sort(snapSyms)
			want := spotSnapshots
			if tt.market == market.USDM {
				want = slices.Sorted(maps.Keys(tt.aggTrades))
			}
			if !slices.Equal(snapSyms, want) {
				t.Errorf("snapshot symbols %v, want %v", snapSyms, want)
			}
			st := r.(StatsReporter).Stats()
			if st.Lines != int64(tt.lines) || st.Records != int64(len(recs)) || st.Skipped != int64(tt.lines-len(recs)) {
				t.Errorf("stats %+v with %d records, want %d lines", st, len(recs), tt.lines)
			}
		})
	}
}

// TestCryptofeedLocalExact checks that local times are converted from the
// decimal digits, not through a float: 1617647603.4249449 is exactly
// 1617647603424944900 ns, which float64 cannot hold.
func TestCryptofeedLocalExact(t *testing.T) {
	recs := MustReadAll(t, dataPath("cryptofeed-spot-10sym-20210405.txt.gz"), OpenOptions{})
	if recs[0].Local != 1617647603424944900 {
		t.Errorf("first frame local %d, want 1617647603424944900", recs[0].Local)
	}
	var zil *Record
	for i := range recs {
		if recs[i].Kind == Snapshot {
			zil = &recs[i]
			break
		}
	}
	if zil == nil || zil.Symbol != "ZILUSDT" || zil.Local != 1617647603816491100 || jsonInt(t, zil.Data, "lastUpdateId") != 499822895 {
		t.Errorf("first snapshot %+v, want ZILUSDT at 1617647603816491100 with lastUpdateId 499822895", zil)
	}

	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"1617647603.4249449", 1617647603424944900, false},
		{"1617647605.80758", 1617647605807580000, false},
		{"1617647603", 1617647603000000000, false},
		{"1617647603.1234567891", 1617647603123456789, false}, // sub-ns digits dropped
		{"1617647603.", 0, true},
		{"16176x7603.1", 0, true},
		{"-1.5", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSecondsNs([]byte(tt.in))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSecondsNs(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestCryptofeedBadLines covers malformed lines around real ones.
func TestCryptofeedBadLines(t *testing.T) {
	raw := headLines(gunzip(t, dataPath("cryptofeed-usdm-5sym-20210405.txt.gz")), 4)
	lines := bytes.SplitAfter(raw, []byte("\n")) // config, wss, frame, REST snapshot
	tests := []struct {
		name    string
		input   []byte
		wantRec int
		wantErr string
	}{
		{"Real", raw, 2, ""},
		{"RESTWithoutArrow", join(lines[0], lines[1], []byte("https://fapi.binance.com/fapi/v1/depth?symbol=BATUSDT 1.5: {}\n"), lines[2]), 1, `without " -> "`},
		{"RESTWithoutSymbol", join(lines[0], lines[1], []byte("https://fapi.binance.com/fapi/v1/depth?limit=5 -> 1.5: {\"lastUpdateId\":1}\n"), lines[2]), 1, `no symbol=`},
		{"RESTNotSnapshot", join(lines[0], lines[1], []byte("https://fapi.binance.com/fapi/v1/depth?symbol=BATUSDT -> 1.5: {\"code\":-1121}\n"), lines[2]), 1, `not a depth snapshot`},
		{"BadTime", join(lines[0], lines[1], []byte("1617647797.59 {}\n"), lines[2]), 1, `no ": " after the time`},
		{"BadTimeDigits", join(lines[0], lines[1], []byte("16176477x7.59: {}\n"), lines[2]), 1, `local time`},
		{"NotJSON", join(lines[0], lines[1], []byte("1617647797.59: hello\n"), lines[2]), 1, `JSON body`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.input), "cf.txt", OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			recs, lineErrs, err := ReadAll(t, r)
			if !errors.Is(err, io.EOF) || len(recs) != tt.wantRec {
				t.Fatalf("%d records, end %v; want %d", len(recs), err, tt.wantRec)
			}
			if tt.wantErr == "" && len(lineErrs) > 0 || tt.wantErr != "" && (len(lineErrs) != 1 || !strings.Contains(lineErrs[0].Error(), tt.wantErr) || !strings.Contains(lineErrs[0].Error(), "line 3 ")) {
				t.Errorf("line errors %v, want %q on line 3", lineErrs, tt.wantErr)
			}
		})
	}
}
