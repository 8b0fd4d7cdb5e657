package main

import (
	"maps"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/service"
)

// TestWallMinNotionalAndHistoryDepthFlags: --wall-min-notional takes a
// bare default, SYMBOL=value pairs or both, and --book-history-depth a
// level count; both land in the service configuration, and service.New
// accepts it.
func TestWallMinNotionalAndHistoryDepthFlags(t *testing.T) {
	dec := func(units int64) fixed.Dec { return fixed.Dec(units * 100_000_000) }
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		def     fixed.Dec
		per     map[string]fixed.Dec
		history int
	}{
		{"Defaults", nil, nil, depthflow.DefaultWallMinNotional, nil, service.DefaultBookHistoryDepth},
		{"BareValue", []string{"--wall-min-notional", "250000"}, nil, dec(250_000), nil, 20},
		{"PerSymbolOnly", []string{"--wall-min-notional", "BTCUSDT=500000,ETHUSDT=100000"}, nil, depthflow.DefaultWallMinNotional,
			map[string]fixed.Dec{"BTCUSDT": dec(500_000), "ETHUSDT": dec(100_000)}, 20},
		{"DefaultAndPerSymbol", []string{"--wall-min-notional", " 50000, btcusdt=500000.5 ,ETHUSDT=0"}, nil, dec(50_000),
			map[string]fixed.Dec{"BTCUSDT": fixed.Dec(50_000_050_000_000), "ETHUSDT": -1}, 20},
		{"FromEnvironment", nil, map[string]string{"ORDERFLOW_WALL_MIN_NOTIONAL": "0,BTCUSDT=1", "ORDERFLOW_BOOK_HISTORY_DEPTH": "250"}, -1,
			map[string]fixed.Dec{"BTCUSDT": dec(1)}, 250},
		{"HistoryDepth", []string{"--book-history-depth", "1000"}, nil, depthflow.DefaultWallMinNotional, nil, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := runConfig(t, append([]string{"--symbols", "BTCUSDT,ETHUSDT"}, tc.args...), tc.env)
			if cfg.DepthFlow == nil || cfg.DepthFlow.WallMinNotional != tc.def {
				t.Fatalf("default wall floor %v; want %v", cfg.DepthFlow, tc.def)
			}
			if !maps.Equal(cfg.WallMinNotional, tc.per) {
				t.Fatalf("per-symbol floors %v; want %v", cfg.WallMinNotional, tc.per)
			}
			if cfg.BookHistoryDepth != tc.history {
				t.Fatalf("history depth %d; want %d", cfg.BookHistoryDepth, tc.history)
			}
			if _, err := service.New(cfg); err != nil {
				t.Fatalf("service.New: %v", err)
			}
		})
	}
}

// TestWallMinNotionalAndHistoryDepthRefused: mistakes in the two flags
// exit 2 naming the flag, before the data directory is touched.
func TestWallMinNotionalAndHistoryDepthRefused(t *testing.T) {
	runTestNoLeaks(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"TwoBareValues", []string{"--wall-min-notional", "1,2"}, "--wall-min-notional"},
		{"BadSymbol", []string{"--wall-min-notional", "BTC-USDT=5"}, "--wall-min-notional"},
		{"NegativePerSymbol", []string{"--wall-min-notional", "BTCUSDT=-5"}, "--wall-min-notional"},
		{"NotANumber", []string{"--wall-min-notional", "BTCUSDT=lots"}, "--wall-min-notional"},
		{"SymbolTwice", []string{"--wall-min-notional", "BTCUSDT=1,btcusdt=2"}, "twice"},
		{"EmptySymbol", []string{"--wall-min-notional", "=5"}, "--wall-min-notional"},
		{"Nothing", []string{"--wall-min-notional", ","}, "--wall-min-notional"},
		{"PerSymbolWithoutBookMetrics", []string{"--wall-min-notional", "BTCUSDT=5", "--book-metrics=false"}, "--book-metrics"},
		{"HistoryDepthZero", []string{"--book-history-depth", "0"}, "--book-history-depth"},
		{"HistoryDepthTooDeep", []string{"--book-history-depth", "1001"}, "--book-history-depth"},
	}
	refusals := make([]runRefusal, len(cases))
	for i, c := range cases {
		refusals[i] = runRefusal{name: c.name, args: c.args, want: c.want}
	}
	runTestRefused(t, refusals)
}

// FuzzParseWallMinNotional: whatever the text, the parser returns an
// error or a floor (positive, or -1 for none) and upper-case valid
// symbols with such floors; never a panic.
func FuzzParseWallMinNotional(f *testing.F) {
	for _, s := range []string{"500000", "BTCUSDT=500000,ETHUSDT=100000", "0,BTCUSDT=1", "1,2", "=", ",,", "btcusdt=0.00000001", "BTCUSDT=1e5", "X=-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		def, per, err := parseWallMinNotional(s)
		if err != nil {
			return
		}
		if def == 0 || def < -1 {
			t.Fatalf("%q: default %v", s, def)
		}
		for sym, v := range per {
			if service.ValidSymbol(sym) != nil || strings.ToUpper(sym) != sym || v == 0 || v < -1 {
				t.Fatalf("%q: %s=%v", s, sym, v)
			}
		}
	})
}
