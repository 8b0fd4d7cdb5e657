package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestLatencyOnSpotBTCUSDT(t *testing.T) {
	c := mustCorpus(t)
	res, err := Latency(context.Background(), c, LatencyOptions{Rate: 50_000, Rounds: 1, WarmupFrames: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// SOURCES.md entry 1: 19,904 trades and 6,495 depth diffs.
	if res.TradesPerRound != 19904 || res.DepthPerRound != 3451+3044 {
		t.Fatalf("feed: %d trades, %d diffs", res.TradesPerRound, res.DepthPerRound)
	}
	if res.Missing != 0 || !res.BookSynced {
		t.Fatalf("missing %d trades, book synced %v", res.Missing, res.BookSynced)
	}
	if res.ServiceTradeSeen != 19904 {
		t.Fatalf("service saw %d trades", res.ServiceTradeSeen)
	}
	// Every trade after the first 1,000 frames is a sample.
	if res.Samples < 19904-1000 || res.Samples >= 19904 {
		t.Fatalf("samples %d", res.Samples)
	}
	if res.P50 <= 0 || res.P50 > res.P99 || res.P99 > res.P999 || res.P999 > res.Max {
		t.Fatalf("percentiles out of order: %+v", res)
	}
}

func TestScaleSmoke(t *testing.T) {
	steps, err := Scale(context.Background(), ScaleOptions{
		Files:   []string{repoFile("testdata/binance/hft-spot-btcusdt-20240808.txt.gz")},
		Ns:      []int{2},
		Speed:   func(int) float64 { return 10 },
		Measure: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 {
		t.Fatalf("steps %v", steps)
	}
	s := steps[0]
	if s.N != 2 || s.Synced != 2 {
		t.Fatalf("symbols %d, synced %d", s.N, s.Synced)
	}
	if s.Trades <= 0 || s.Frames <= s.Trades || s.CPU <= 0 || s.Reconnects != 0 || s.Behind {
		t.Fatalf("step %+v", s)
	}
}

func TestPushFanoutCountsEveryTrade(t *testing.T) {
	c := mustCorpus(t)
	p := NewPushFanout(PushOptions{Subscribers: 3, Queue: 1 << 16})
	res, err := RunPipeline(context.Background(), c, PipelineOptions{Configure: p.Configure})
	p.Close()
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	// Each trade goes to each subscriber, delivered or counted as skipped;
	// bars (one per minute of the recording) come on top.
	trades := res.Stats.Trades
	if got := st.Delivered + st.Skipped; got < 3*trades || got > 3*(trades+20) {
		t.Fatalf("delivered %d + skipped %d, want about 3 x %d trades", st.Delivered, st.Skipped, trades)
	}
	if st.Bytes == 0 {
		t.Fatal("nothing encoded")
	}
}

func TestCompareSummaries(t *testing.T) {
	base := Summary{Symbol: "BTCUSDT", Trades: 10, BuyVolume: "1.5", SellVolume: "2", VWAP: "61671.55160665",
		BestBid: "61602.01", BestAsk: "61602.02", BidLevels: 3, AskLevels: 4, Applied: 7}
	tests := []struct {
		name   string
		theirs func(s *Summary)
		want   string
	}{
		{"Identical", func(*Summary) {}, ""},
		{"FloatRounding", func(s *Summary) { s.VWAP = "61671.5516066533"; s.BuyVolume = "1.5000000000000004" }, ""},
		{"TradeCountDiffers", func(s *Summary) { s.Trades = 9 }, "counts differ"},
		{"BookTopDiffers", func(s *Summary) { s.BestAsk = "61602.03" }, "best_ask"},
		{"VolumeDiffers", func(s *Summary) { s.SellVolume = "2.001" }, "sell_volume"},
		{"MissingSymbol", func(s *Summary) { s.Symbol = "ETHUSDT" }, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := base
			tt.theirs(&other)
			diffs := CompareSummaries([]Summary{base}, []Summary{other})
			got := strings.Join(diffs, "\n")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("diffs %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBaselineDoesTheSameWork builds and runs the go-binance baseline on
// one recording and checks it ends where the pipeline ends: otherwise the
// ratio PERFORMANCE.md quotes would compare different work.
func TestBaselineDoesTheSameWork(t *testing.T) {
	files := []string{repoFile("testdata/binance/hft-spot-btcusdt-20240808.txt.gz")}
	c, err := Load(files)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := RunPipeline(context.Background(), c, PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, dec := range []string{"stdjson", "simplejson"} {
		t.Run(dec, func(t *testing.T) {
			theirs, err := RunBaseline(context.Background(), BaselineOptions{Dir: "gobinance", Files: files, Decoder: dec})
			if err != nil {
				t.Fatal(err)
			}
			if theirs.Records != len(c.Records) || theirs.Rejected != 0 || theirs.Decoder != dec {
				t.Fatalf("baseline records %d (want %d), rejected %d, decoder %q", theirs.Records, len(c.Records), theirs.Rejected, theirs.Decoder)
			}
			if diffs := CompareSummaries(ours.Summaries, theirs.Summaries); len(diffs) > 0 {
				t.Fatalf("baseline ended elsewhere:\n%s", strings.Join(diffs, "\n"))
			}
		})
	}
}
