package replay_test

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/orderflow/orderflow/replay"
)

func testdata(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "binance", name)
}

var spotBTC = []string{testdata("hft-spot-btcusdt-20240808.txt.gz"), testdata("hft-spot-btcusdt-20240809.txt.gz")}

func runReplay(t *testing.T, opts replay.Options) ([]byte, *replay.Result) {
	t.Helper()
	var out bytes.Buffer
	res, err := replay.Run(context.Background(), opts, &out)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return out.Bytes(), res
}

// TestSpotBTCUSDTMatchesReference is the foundation issue's acceptance
// check: 19,904 trades, and bars, summary and the top-20 book agree exactly
// with the independent computation in reference_test.go.
func TestSpotBTCUSDTMatchesReference(t *testing.T) {
	out, res := runReplay(t, replay.Options{Files: spotBTC, Bars: time.Minute, Depth: 20})
	ref := referenceSpot(t, spotBTC)
	if ref.Trades != 19904 {
		t.Fatalf("reference saw %d trades; SOURCES.md says 19,904", ref.Trades)
	}
	if res.Stats.Trades != 19904 || res.Stats.DecodeErrors != 0 || res.Stats.TradeRejected != 0 {
		t.Fatalf("stats = %+v", res.Stats)
	}
	checkAgainstReference(t, out, ref, 20)
}

// TestDeterministic replays the same files twice: the JSON must be
// byte-identical, since every metric is driven by exchange time.
func TestDeterministic(t *testing.T) {
	opts := replay.Options{Files: spotBTC, Bars: time.Minute, Footprint: true, Depth: 50}
	a, _ := runReplay(t, opts)
	b, _ := runReplay(t, opts)
	if !bytes.Equal(a, b) {
		t.Fatal("two replays of the same files differ")
	}
	if len(a) == 0 {
		t.Fatal("no output")
	}
}
