package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/market"
)

// TestHFTFiles reads every bundled hftbacktest file and checks it against
// the counts and facts of testdata/binance/SOURCES.md.
func TestHFTFiles(t *testing.T) {
	tests := []struct {
		file                         string
		market                       market.Kind
		symbol                       string
		depth, trades, tickers, snap int
		lastUpdateID                 int64 // of the snapshot, if any
		lagMin, lagMax               int64 // median E - local, ns
	}{
		{"hft-spot-btcusdt-20240808.txt.gz", market.Spot, "BTCUSDT", 3451, 9757, 28040, 1, 50093239218, 1.2e9, 1.35e9},
		{"hft-spot-btcusdt-20240809.txt.gz", market.Spot, "BTCUSDT", 3044, 10147, 45134, 0, 0, 1.2e9, 1.35e9},
		{"hft-spot-ethusdt-20240808.txt.gz", market.Spot, "ETHUSDT", 3434, 6106, 24077, 1, 35346513512, 1.2e9, 1.35e9},
		{"hft-spot-ethusdt-20240809.txt.gz", market.Spot, "ETHUSDT", 3036, 8409, 34681, 0, 0, 1.2e9, 1.35e9},
		{"hft-usdm-btcusdt-20240808.txt.gz", market.USDM, "BTCUSDT", 6551, 21313, 66089, 1, 5123107852948, 1.2e9, 1.35e9},
		{"hft-usdm-ethusdt-20240808.txt.gz", market.USDM, "ETHUSDT", 6586, 14076, 53992, 1, 5123107856276, 1.2e9, 1.35e9},
		{"hft-usdm-btcusdt-20240718.txt.gz", market.USDM, "BTCUSDT", 3326, 974, 7113, 1, 4984028384061, 1.45e9, 1.6e9},
		{"hft-usdm-btcusdt-20240719.txt.gz", market.USDM, "BTCUSDT", 5696, 9727, 45147, 0, 0, 1.45e9, 1.6e9},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".txt.gz"), func(t *testing.T) {
			r := MustOpen(t, dataPath(tt.file), OpenOptions{})
			recs, lineErrs, err := ReadAll(t, r)
			if !errors.Is(err, io.EOF) || len(lineErrs) > 0 {
				t.Fatalf("ended with %v after %d bad lines", err, len(lineErrs))
			}
			var depth, trades, tickers, snaps int
			var lags []int64
			prev := int64(0)
			for i, rec := range recs {
				if rec.Local < prev {
					t.Fatalf("record %d: local time went back from %d to %d", i, prev, rec.Local)
				}
				prev = rec.Local
				if rec.Symbol != tt.symbol || !rec.MarketKnown || rec.Market != tt.market {
					t.Fatalf("record %d: symbol %q market %v known %v, want %s %v", i, rec.Symbol, rec.Market, rec.MarketKnown, tt.symbol, tt.market)
				}
				switch {
				case rec.Kind == Snapshot:
					snaps++
					var body struct {
						LastUpdateID int64       `json:"lastUpdateId"`
						Bids         [][2]string `json:"bids"`
						Asks         [][2]string `json:"asks"`
					}
					if err := json.Unmarshal(rec.Data, &body); err != nil {
						t.Fatalf("snapshot %d: %v", i, err)
					}
					if len(body.Bids) != 1000 || len(body.Asks) != 1000 {
						t.Errorf("snapshot has %dx%d levels, want 1000x1000", len(body.Bids), len(body.Asks))
					}
					if body.LastUpdateID != tt.lastUpdateID {
						t.Errorf("snapshot lastUpdateId %d, want %d", body.LastUpdateID, tt.lastUpdateID)
					}
				case bytes.Contains(rec.Data, []byte(`@depth@`)):
					depth++
				case bytes.Contains(rec.Data, []byte(`@trade"`)):
					trades++
				case bytes.Contains(rec.Data, []byte(`@bookTicker"`)):
					tickers++
				default:
					t.Fatalf("record %d: unexpected frame %.100s", i, rec.Data)
				}
				if rec.Kind == Frame && !bytes.Contains(rec.Data, []byte(`@bookTicker"`)) || bytes.Contains(rec.Data, []byte(`"e":"bookTicker"`)) {
					lags = append(lags, jsonInt(t, rec.Data, "E")*1e6-rec.Local)
				}
			}
			if depth != tt.depth || trades != tt.trades || tickers != tt.tickers || snaps != tt.snap {
				t.Errorf("depth %d trades %d bookTicker %d snapshots %d, want %d %d %d %d",
					depth, trades, tickers, snaps, tt.depth, tt.trades, tt.tickers, tt.snap)
			}
			total := tt.depth + tt.trades + tt.tickers + tt.snap
			st := r.(StatsReporter).Stats()
			if st.Records != int64(total) || st.Lines != int64(total) || st.Skipped != 0 || st.Errors != 0 {
				t.Errorf("stats %+v, want %d records and lines", st, total)
			}
			slices.Sort(lags)
			if med := lags[len(lags)/2]; med < tt.lagMin || med > tt.lagMax {
				t.Errorf("median E - local = %d ns, want %d..%d (SOURCES.md: recorder clock behind)", med, tt.lagMin, tt.lagMax)
			}
			done, size := r.(ProgressReporter).Progress()
			if size == 0 || done != size {
				t.Errorf("progress at EOF %d of %d, want all bytes", done, size)
			}
		})
	}
}

// TestHFTSnapshotFirst moves the real snapshot line of the 08 file before
// every frame: its symbol and market must come from looking ahead, and the
// frames must still come out in order, unchanged.
func TestHFTSnapshotFirst(t *testing.T) {
	for _, tt := range []struct {
		file   string
		market market.Kind
	}{
		{"hft-spot-btcusdt-20240808.txt.gz", market.Spot},
		{"hft-usdm-btcusdt-20240808.txt.gz", market.USDM},
	} {
		t.Run(tt.market.String(), func(t *testing.T) {
			lines := bytes.SplitAfter(headLines(gunzip(t, dataPath(tt.file)), 60), []byte("\n"))
			var snap []byte
			var rest [][]byte
			for _, l := range lines {
				if len(l) > 0 && !bytes.Contains(l, []byte(`"stream"`)) {
					snap = l
					continue
				}
				rest = append(rest, l)
			}
			if snap == nil {
				t.Fatal("no snapshot line in the first 60 lines")
			}
			reordered := bytes.Join(append([][]byte{snap}, rest...), nil)
			r, err := NewReader(bytes.NewReader(reordered), "reordered", OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			recs, lineErrs, err := ReadAll(t, r)
			if !errors.Is(err, io.EOF) || len(lineErrs) > 0 {
				t.Fatalf("ended with %v after %v", err, lineErrs)
			}
			if len(recs) != len(lines)-1 {
				t.Fatalf("%d records, want %d", len(recs), len(lines)-1)
			}
			first := recs[0]
			if first.Kind != Snapshot || first.Symbol != "BTCUSDT" || !first.MarketKnown || first.Market != tt.market {
				t.Fatalf("first record %v %q %v/%v, want a BTCUSDT %v snapshot", first.Kind, first.Symbol, first.Market, first.MarketKnown, tt.market)
			}
			if !bytes.Equal(first.Data, bytes.TrimRight(snap[bytes.IndexByte(snap, ' ')+1:], "\n")) {
				t.Error("snapshot data changed")
			}
			for i, rec := range recs[1:] {
				want := bytes.TrimRight(rest[i], "\n")
				if rec.Kind != Frame || !bytes.Equal(rec.Data, want[bytes.IndexByte(want, ' ')+1:]) {
					t.Fatalf("frame %d differs", i)
				}
			}
		})
	}
}

// TestHFTBadLines checks that malformed lines are reported with their line
// number and field, that reading goes on after them, and that an
// incomplete last line is a torn tail.
func TestHFTBadLines(t *testing.T) {
	real := headLines(gunzip(t, dataPath("hft-spot-btcusdt-20240809.txt.gz")), 3)
	lines := bytes.SplitAfter(real, []byte("\n"))
	tests := []struct {
		name    string
		input   []byte
		wantRec int
		wantErr string // substring of the line error, "" for none
		torn    bool
	}{
		{"BadLocalTime", join(lines[0], []byte("17x3 {\"stream\":\"a@b\"}\n"), lines[1]), 2, `line 2 (offset`, false},
		{"NoSpace", join(lines[0], []byte("1723161600001658384\n"), lines[1]), 2, `no space after the local time`, false},
		{"NotJSON", join(lines[0], []byte("1723161600001658384 hello\n"), lines[1]), 2, `JSON body`, false},
		{"NeitherFrameNorSnapshot", join(lines[0], []byte("1723161600001658384 {\"result\":null,\"id\":1}\n"), lines[1]), 2, `neither a stream frame`, false},
		{"BlankLinesSkipped", join(lines[0], []byte("\n\r\n"), lines[1]), 2, "", false},
		{"CRLF", bytes.ReplaceAll(real, []byte("\n"), []byte("\r\n")), 3, "", false},
		{"LastLineWithoutNewline", bytes.TrimSuffix(real, []byte("\n")), 3, "", false},
		{"TornLastLine", real[:len(real)-40], 2, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.input), "x.txt", OpenOptions{Format: FormatHFT})
			if err != nil {
				t.Fatal(err)
			}
			recs, lineErrs, err := ReadAll(t, r)
			if len(recs) != tt.wantRec {
				t.Errorf("%d records, want %d", len(recs), tt.wantRec)
			}
			if tt.wantErr == "" && len(lineErrs) > 0 {
				t.Errorf("unexpected line errors %v", lineErrs)
			}
			if tt.wantErr != "" && (len(lineErrs) != 1 || !strings.Contains(lineErrs[0].Error(), tt.wantErr)) {
				t.Errorf("line errors %v, want one containing %q", lineErrs, tt.wantErr)
			}
			if tt.torn != errors.Is(err, ErrTorn) || !tt.torn && !errors.Is(err, io.EOF) {
				t.Errorf("final error %v, torn want %v", err, tt.torn)
			}
			if tt.torn {
				if _, err2 := r.Next(); !errors.Is(err2, ErrTorn) {
					t.Errorf("torn error not sticky: then %v", err2)
				}
			}
		})
	}
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestLongLines reads the real 64 KB snapshot line with a tiny bufio buffer
// (so it is assembled from many fragments) and with a line limit below it.
func TestLongLines(t *testing.T) {
	raw := headLines(gunzip(t, dataPath("hft-spot-btcusdt-20240808.txt.gz")), 20)
	want := MustReadAllBytes(t, raw, OpenOptions{Format: FormatHFT})
	if want[7].Kind != Snapshot || len(want[7].Data) < 60000 {
		t.Fatalf("record 7 is not the 64 KB snapshot")
	}

	t.Run("SmallBuffer", func(t *testing.T) {
		src := &source{name: "small", br: bufioSize(raw, 16)}
		got, _, err := ReadAll(t, newHFTReader(src, DefaultMaxLineSize))
		if !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		equalRecords(t, got, want)
	})
	t.Run("OverLimit", func(t *testing.T) {
		r, err := NewReader(bytes.NewReader(raw), "limited", OpenOptions{Format: FormatHFT, MaxLineSize: 10000})
		if err != nil {
			t.Fatal(err)
		}
		got, lineErrs, err := ReadAll(t, r)
		if !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if len(lineErrs) != 1 || !strings.Contains(lineErrs[0].Error(), "line 8 (offset") || !strings.Contains(lineErrs[0].Error(), "longer than 10000 bytes") {
			t.Fatalf("line errors %v, want one for line 8", lineErrs)
		}
		equalRecords(t, got, slices.Delete(slices.Clone(want), 7, 8))
	})
	t.Run("OverLimitAtEnd", func(t *testing.T) {
		lines := bytes.SplitAfter(raw, []byte("\n"))
		input := bytes.TrimSuffix(join(lines[0], lines[7]), []byte("\n"))
		r, err := NewReader(bytes.NewReader(input), "limited", OpenOptions{Format: FormatHFT, MaxLineSize: 10000})
		if err != nil {
			t.Fatal(err)
		}
		got, lineErrs, err := ReadAll(t, r)
		if !errors.Is(err, io.EOF) || len(got) != 1 || len(lineErrs) != 1 {
			t.Fatalf("got %d records, %v, end %v", len(got), lineErrs, err)
		}
	})
}
