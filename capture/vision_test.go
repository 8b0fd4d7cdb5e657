package capture

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/market"
)

const visionFile = "vision-spot-btcusdt-aggTrades-2026-01-01-first5000.csv"

// aggFrame is the combined-stream aggTrade frame, decoded by encoding/json
// as an independent check of the synthesized frames.
type aggFrame struct {
	Stream string `json:"stream"`
	Data   struct {
		E     string `json:"e"`
		EvtMs int64  `json:"E"`
		S     string `json:"s"`
		A     int64  `json:"a"`
		P     string `json:"p"`
		Q     string `json:"q"`
		F     int64  `json:"f"`
		L     int64  `json:"l"`
		T     int64  `json:"T"`
		M     bool   `json:"m"`
		Best  *bool  `json:"M"`
	} `json:"data"`
}

// TestVisionSpotCSV reads the bundled spot CSV and compares every
// synthesized frame with the row as encoding/csv reads it.
func TestVisionSpotCSV(t *testing.T) {
	recs := MustReadAll(t, dataPath(visionFile), OpenOptions{})
	f, err := os.Open(dataPath(visionFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5000 || len(rows) != 5000 {
		t.Fatalf("%d records from %d rows, want 5000 (SOURCES.md)", len(recs), len(rows))
	}
	var sells int
	var prevA, prevL int64
	for i, rec := range recs {
		row := rows[i]
		var fr aggFrame
		if err := json.Unmarshal(rec.Data, &fr); err != nil {
			t.Fatalf("record %d: %v in %s", i, err, rec.Data)
		}
		us, _ := strconv.ParseInt(row[5], 10, 64)
		a, _ := strconv.ParseInt(row[0], 10, 64)
		first, _ := strconv.ParseInt(row[3], 10, 64)
		last, _ := strconv.ParseInt(row[4], 10, 64)
		d := fr.Data
		if rec.Kind != Frame || rec.Symbol != "BTCUSDT" || rec.Market != market.Spot || !rec.MarketKnown || rec.Local != us*1000 ||
			fr.Stream != "btcusdt@aggTrade" || d.E != "aggTrade" || d.S != "BTCUSDT" || d.A != a || d.F != first || d.L != last ||
			d.P != row[1] || d.Q != row[2] || d.T != us/1000 || d.EvtMs != us/1000 || d.M != (row[6] == "True") ||
			d.Best == nil || *d.Best != (row[7] == "True") {
			t.Fatalf("record %d: %+v %s\nrow %v", i, rec, rec.Data, row)
		}
		if i > 0 && (d.A != prevA+1 || d.F != prevL+1 || rec.Local < recs[i-1].Local) {
			t.Errorf("record %d: a=%d f=%d after a=%d l=%d: SOURCES.md says ids are consecutive and times non-decreasing", i, d.A, d.F, prevA, prevL)
		}
		prevA, prevL = d.A, d.L
		if d.M {
			sells++
		}
	}
	if sells != 2003 {
		t.Errorf("%d buyer-maker rows, want 2003 (SOURCES.md)", sells)
	}
	if recs[0].Local != 1767225600039409000 {
		t.Errorf("first local %d, want 1767225600039409000", recs[0].Local)
	}
}

// usdmCSV converts real spot rows to the USD-M CSV layout (header row, 7
// columns, millisecond times, lowercase booleans): the same real trades in
// the other layout, since no real USD-M CSV is bundled.
func usdmCSV(tb testing.TB, n int) []byte {
	tb.Helper()
	b, err := os.ReadFile(dataPath(visionFile))
	if err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	out.WriteString("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n")
	for _, line := range strings.SplitN(string(b), "\n", n+1)[:n] {
		c := strings.Split(line, ",")
		us, _ := strconv.ParseInt(c[5], 10, 64)
		fmt.Fprintf(&out, "%s,%s,%s,%s,%s,%d,%s\n", c[0], c[1], c[2], c[3], c[4], us/1000, strings.ToLower(c[6]))
	}
	return out.Bytes()
}

// TestVisionUSDMCSV reads the USD-M layout: market from the columns,
// milliseconds, no "M" field.
func TestVisionUSDMCSV(t *testing.T) {
	in := usdmCSV(t, 100)
	r, err := NewReader(bytes.NewReader(in), "BTCUSDT-aggTrades-2026-01-01.csv", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs, lineErrs, err := ReadAll(t, r)
	if !errors.Is(err, io.EOF) || len(lineErrs) > 0 || len(recs) != 100 {
		t.Fatalf("%d records, %v, end %v", len(recs), lineErrs, err)
	}
	spot := MustReadAll(t, dataPath(visionFile), OpenOptions{})[:100]
	for i, rec := range recs {
		var fr aggFrame
		if err := json.Unmarshal(rec.Data, &fr); err != nil {
			t.Fatal(err)
		}
		if rec.Market != market.USDM || !rec.MarketKnown || fr.Data.Best != nil || rec.Symbol != "BTCUSDT" ||
			rec.Local != spot[i].Local/1e6*1e6 || bytes.Contains(rec.Data, []byte(`"M"`)) {
			t.Fatalf("record %d: %+v %s", i, rec, rec.Data)
		}
	}
	if st := r.(StatsReporter).Stats(); st.Skipped != 1 || st.Records != 100 {
		t.Errorf("stats %+v, want the header skipped", st)
	}
}

// TestVisionSymbol checks where the symbol comes from.
func TestVisionSymbol(t *testing.T) {
	row := "3800397495,87648.21000000,0.08185000,5723703861,5723703861,1767225600039409,True,True\n"
	tests := []struct {
		name, file, opt, want, err string
	}{
		{"VisionName", "BTCUSDT-aggTrades-2026-01-01.csv", "", "BTCUSDT", ""},
		{"OurName", "/x/vision-spot-ethusdt-aggTrades-2026-01-01-first5000.csv", "", "ETHUSDT", ""},
		{"OptionWins", "BTCUSDT-aggTrades-2026-01-01.csv", "solusdt", "SOLUSDT", ""},
		{"NoSymbol", "trades.csv", "", "", "no symbol for the CSV rows"},
		{"BadOption", "trades.csv", "BTC/USDT", "", `symbol "BTC/USDT"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(row), tt.file, OpenOptions{Symbol: tt.opt})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rec, err := r.Next()
			if err != nil || rec.Symbol != tt.want || !bytes.Contains(rec.Data, []byte(`"stream":"`+strings.ToLower(tt.want)+`@aggTrade"`)) {
				t.Fatalf("record %v, %v; want symbol %s", rec, err, tt.want)
			}
		})
	}
}

// TestVisionBadRows checks that each field is validated and the error names
// the line and column.
func TestVisionBadRows(t *testing.T) {
	good := "3800397495,87648.21000000,0.08185000,5723703861,5723703861,1767225600039409,True,True\n"
	tests := []struct {
		name, row, want string
	}{
		{"BadAggID", "38003974x5,87648.21,0.08,5723703861,5723703861,1767225600039409,True,True", "column 1 (agg_trade_id)"},
		{"BadPrice", "3800397495,87648.2.1,0.08,5723703861,5723703861,1767225600039409,True,True", "column 2 (price)"},
		{"NinePlaces", "3800397495,87648.21,0.081850001,5723703861,5723703861,1767225600039409,True,True", "column 3 (quantity)"},
		{"NegativeQty", "3800397495,87648.21,-0.08,5723703861,5723703861,1767225600039409,True,True", "negative"},
		{"BadFirstID", "3800397495,87648.21,0.08,,5723703861,1767225600039409,True,True", "column 4 (first_trade_id)"},
		{"FirstAfterLast", "3800397495,87648.21,0.08,5723703862,5723703861,1767225600039409,True,True", "first_trade_id 5723703862 > last_trade_id"},
		{"BadTime", "3800397495,87648.21,0.08,5723703861,5723703861,17672256000394.09,True,True", "column 6 (transact_time)"},
		{"BadMaker", "3800397495,87648.21,0.08,5723703861,5723703861,1767225600039409,yes,True", "column 7 (is_buyer_maker)"},
		{"BadBestMatch", "3800397495,87648.21,0.08,5723703861,5723703861,1767225600039409,True,1", "column 8 (is_best_match)"},
		{"TooFewColumns", "3800397495,87648.21,0.08,5723703861,5723703861,1767225600039409,True", "7 columns, want 8"},
		{"TooManyColumns", "3800397495,87648.21,0.08,5723703861,5723703861,1767225600039409,True,True,x", "more than 8 columns"},
		{"LateHeader", "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker", "header row after data rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good + tt.row + "\n" + good
			r, err := NewReader(strings.NewReader(in), "BTCUSDT-aggTrades-x.csv", OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			recs, lineErrs, err := ReadAll(t, r)
			if !errors.Is(err, io.EOF) || len(recs) != 2 {
				t.Fatalf("%d records, end %v; want 2", len(recs), err)
			}
			if len(lineErrs) != 1 || !strings.Contains(lineErrs[0].Error(), "line 2 ") || !strings.Contains(lineErrs[0].Error(), tt.want) {
				t.Fatalf("line errors %v, want %q on line 2", lineErrs, tt.want)
			}
		})
	}
	t.Run("TornLastRow", func(t *testing.T) {
		in := good + good[:40]
		r, _ := NewReader(strings.NewReader(in), "BTCUSDT-aggTrades-x.csv", OpenOptions{})
		recs, _, err := ReadAll(t, r)
		if len(recs) != 1 || !errors.Is(err, ErrTorn) {
			t.Fatalf("%d records, end %v; want 1 then ErrTorn", len(recs), err)
		}
	})
}
