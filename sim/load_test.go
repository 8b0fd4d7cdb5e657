package sim

import (
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const dataDir = "../testdata/binance/"

var (
	recMu    sync.Mutex
	recCache = map[string]*Recording{}
)

// mustLoad loads (once per process) a recording of the bundled files.
func mustLoad(tb testing.TB, files ...string) *Recording {
	tb.Helper()
	key := ""
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = dataDir + f
		key += f + "|"
	}
	recMu.Lock()
	defer recMu.Unlock()
	if r := recCache[key]; r != nil {
		return r
	}
	r, err := LoadRecording("", paths...)
	if err != nil {
		tb.Fatalf("load %v: %v", files, err)
	}
	recCache[key] = r
	return r
}

func TestLoadTiming(t *testing.T) {
	if os.Getenv("SIM_TIMING") == "" {
		return
	}
	for _, set := range [][]string{
		{"cryptofeed-spot-10sym-20210405.txt.gz"},
		{"cryptofeed-usdm-5sym-20210405.txt.gz"},
		{"hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz"},
		{"hft-usdm-btcusdt-20240808.txt.gz"},
	} {
		r := mustLoad(t, set...)
		t.Logf("%v: market %s symbols %v events %d skipped %+v", set, r.Market(), r.Symbols(), r.Events(), r.Skipped())
		for _, sd := range r.syms {
			t.Logf("  %s depth %d trades %d aggs %d (derived %v) tick %d widths p%d q%d sig p%d q%d bridge %d",
				sd.name, len(sd.depth), len(sd.trades), len(sd.aggs), sd.derivedAgg, len(sd.tick), sd.priceW, sd.qtyW, sd.priceSig, sd.qtySig, sd.bridge)
		}
	}
}
