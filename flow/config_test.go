package flow

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

func TestConfigDefaultsAndCorrections(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		invalid string // substring of Validate's error; "" = valid
		check   func(t *testing.T, c Config)
	}{
		{"ZeroValueMeansDefaults", Config{}, "", func(t *testing.T, c Config) {
			if len(c.Windows) != 4 || c.Windows[3] != time.Hour || c.BarIntervals[0] != time.Minute ||
				c.ImbalancePercent != 300 || c.StackedImbalanceMin != 3 || c.ValueAreaPercent != 70 ||
				c.HistorySize != 10_000 || c.LargePercentile != 99 || c.LargeMinSample != 1000 || c.BarHistory != 120 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"WindowsRoundedSortedDeduped", Config{Windows: []time.Duration{5 * time.Minute, 1500 * time.Millisecond, 2 * time.Second, -time.Second}}, "Windows[3]",
			func(t *testing.T, c Config) {
				want := []time.Duration{2 * time.Second, 5 * time.Minute}
				if len(c.Windows) != 2 || c.Windows[0] != want[0] || c.Windows[1] != want[1] {
					t.Errorf("Windows = %v, want %v", c.Windows, want)
				}
			}},
		{"NegativeSizes", Config{HistorySize: -1, LargeSample: -5}, "HistorySize=-1", func(t *testing.T, c Config) {
			if c.HistorySize != DefaultHistorySize || c.LargeSample != DefaultLargeSample {
				t.Errorf("%+v", c)
			}
		}},
		{"PercentileAbove100", Config{LargePercentile: 120}, "LargePercentile", func(t *testing.T, c Config) {
			if c.LargePercentile != 100 {
				t.Errorf("LargePercentile = %v", c.LargePercentile)
			}
		}},
		{"MinSampleAboveSample", Config{LargeSample: 10, LargeMinSample: 20}, "LargeMinSample", func(t *testing.T, c Config) {
			if c.LargeMinSample != 10 {
				t.Errorf("LargeMinSample = %d", c.LargeMinSample)
			}
		}},
		{"ValueAreaOutOfRange", Config{ValueAreaPercent: 150}, "ValueAreaPercent", func(t *testing.T, c Config) {
			if c.ValueAreaPercent != 70 {
				t.Errorf("ValueAreaPercent = %d", c.ValueAreaPercent)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.invalid == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.invalid != "" && (err == nil || !strings.Contains(err.Error(), tc.invalid)) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.invalid)
			}
			tc.check(t, NewTracker("X", tc.cfg).Config())
		})
	}
}

func TestJSONCarriesExactDecimals(t *testing.T) {
	trades := load(t, datasets[0])
	tk := NewTracker("BTCUSDT", Config{})
	feed(t, tk, trades)
	ws, _ := tk.Window(time.Minute)
	b, err := json.Marshal(ws)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["notional"] != ws.Notional.String() || back["delta"] != ws.Delta.String() || back["vwap"] != ws.VWAP.String() {
		t.Errorf("JSON %s does not carry the exact strings", b)
	}
	bar, _ := tk.CurrentBar(time.Minute)
	if b, err = json.Marshal(bar); err != nil || !strings.Contains(string(b), `"poc":"`+bar.POC.String()+`"`) {
		t.Errorf("bar JSON %s, err %v", b, err)
	}
}

// FuzzAdd feeds arbitrary trades: Add must never panic, must refuse what
// breaks the ordering rules, and the totals must stay the exact sums of
// the accepted trades.
func FuzzAdd(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte("\x00\x00\x00\x00\xff\xff\xff\xff\x80\x00\x00\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		tk := NewTracker("T", Config{Windows: []time.Duration{time.Second, time.Minute}, BarIntervals: []time.Duration{time.Second},
			PriceGroup: fixed.Dec(data[0]), LargeSample: 4, LargeRecompute: 2, LargeNotional: 1, HistorySize: 3, BarHistory: 2})
		var buy, sell fixed.Int128
		id, tm := int64(0), int64(0)
		for len(data) >= 5 {
			c := data[:5]
			data = data[5:]
			id += int64(int8(c[0]))
			tm += int64(int8(c[1])) * 97
			tr := market.Trade{ID: id, Time: tm, Price: fixed.Dec(int64(c[2]) * 1_000_000), Qty: fixed.Dec(int64(int8(c[3])) * 1000), BuyerMaker: c[4]&1 == 1}
			if err := tk.Add(&tr); err != nil {
				continue
			}
			if tr.BuyerMaker {
				sell = sell.AddDec(tr.Qty)
			} else {
				buy = buy.AddDec(tr.Qty)
			}
			tk.Window(time.Minute)
			tk.CurrentBar(time.Second)
			tk.Trades(TradeQuery{MinNotional: 1}, nil)
		}
		tk.Flush()
		tk.SessionProfile()
		tk.Profile(0, 0)
		tot := tk.Totals()
		if tot.BuyVolume.Int128() != buy || tot.SellVolume.Int128() != sell {
			t.Fatalf("totals %v/%v, want %v/%v", tot.BuyVolume, tot.SellVolume, Volume(buy), Volume(sell))
		}
	})
}
