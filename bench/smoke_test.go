package bench

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestLatencyOnSpotBTCUSDT(t *testing.T) {
	c := mustCorpus(t)
	res, err := Latency(context.Background(), c, LatencyOptions{Rate: 50_000, Rounds: 1, WarmupFrames: 1000, Push: true})
	if err != nil {
		t.Fatal(err)
	}
	checkLatency(t, res, true)
}

// checkLatency checks a one-round result of the spot BTCUSDT recording.
func checkLatency(t *testing.T, res *LatencyResult, push bool) {
	t.Helper()
	// SOURCES.md entry 1: 19,904 trades and 6,495 depth diffs.
	if res.TradesPerRound != 19904 || res.DepthPerRound != 3451+3044 {
		t.Fatalf("feed: %d trades, %d diffs", res.TradesPerRound, res.DepthPerRound)
	}
	if res.API.Missing != 0 || !res.BookSynced {
		t.Fatalf("missing %d trades, book synced %v", res.API.Missing, res.BookSynced)
	}
	if res.ServiceTradeSeen != 19904 {
		t.Fatalf("service saw %d trades", res.ServiceTradeSeen)
	}
	// Every trade after the first 1,000 frames is a sample, and every
	// one came from a frame, so each has its two parts.
	if res.API.Samples < 19904-1000 || res.API.Samples >= 19904 {
		t.Fatalf("samples %d", res.API.Samples)
	}
	if res.Wire.Samples != res.API.Samples || res.Apply.Samples != res.API.Samples {
		t.Fatalf("parts: wire %d, apply %d samples of %d", res.Wire.Samples, res.Apply.Samples, res.API.Samples)
	}
	// Every frame after the warm-up has a writer lateness.
	if res.WriterLag.Samples != 19904+6495-1000 {
		t.Fatalf("writer lateness samples %d", res.WriterLag.Samples)
	}
	for name, p := range map[string]Percentiles{"api": res.API, "wire": res.Wire, "apply": res.Apply} {
		if p.P50 <= 0 || p.P50 > p.P99 || p.P99 > p.P999 || p.P999 > p.Max {
			t.Fatalf("%s: percentiles out of order: %+v", name, p)
		}
	}
	// The parts add up to the whole, sample by sample, so their means do.
	if d := res.API.Mean - res.Wire.Mean - res.Apply.Mean; d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("mean %v != wire %v + apply %v", res.API.Mean, res.Wire.Mean, res.Apply.Mean)
	}
	// The runtime figures cover the one round's frames, and the service
	// used CPU and slept between frames.
	if rt := res.Runtime; rt.Frames != 19904+6495 || rt.CPU <= 0 || rt.VolSwitches <= 0 || rt.SchedLatency.Count == 0 {
		t.Fatalf("runtime stats %+v", rt)
	}
	if !push {
		return
	}
	// The push hub may skip trades for a slow client, but counts them.
	if res.Push.Samples == 0 || res.Push.Samples+int(res.Push.Missing) != res.API.Samples {
		t.Fatalf("push: %d samples + %d missing, want %d", res.Push.Samples, res.Push.Missing, res.API.Samples)
	}
	if res.Push.Missing > res.PushDropped {
		t.Fatalf("push: %d missing but the hub dropped only %d", res.Push.Missing, res.PushDropped)
	}
	// A trade reaches a push client only after the service read its frame,
	// trade by trade on one clock. (Comparing the two medians is not sound:
	// the push client's samples are a subset when the hub skips trades, and
	// the push hook may run before the measuring hook.)
	if res.PushBeforeRead != 0 {
		t.Fatalf("push: %d trades reached the client before the service read their frame", res.PushBeforeRead)
	}
}

// The writer's child-process protocol (two JSON lines), here over a pipe
// to a writer in this process, with the spin pace.
func TestLatencyWriterProtocol(t *testing.T) {
	c := mustCorpus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(ctx context.Context, spec WriterSpec) (LatencyWriter, error) {
		pr, pw := io.Pipe()
		wctx, wcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			err := ServeLatencyWriter(wctx, spec, pw)
			pw.CloseWithError(err)
			done <- err
		}()
		info, report, err := ReadWriterLines(pr)
		if err != nil {
			wcancel()
			<-done
			return nil, err
		}
		return &pipeWriter{info: info, report: report, cancel: wcancel, done: done, pr: pr}, nil
	}
	res, err := Latency(ctx, c, LatencyOptions{Rate: 50_000, Rounds: 1, WarmupFrames: 1000, Pace: PaceSpin,
		Files: defaultFiles(), Writer: start})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Child || res.Pace != PaceSpin {
		t.Fatalf("result %+v", res)
	}
	checkLatency(t, res, false)
}

type pipeWriter struct {
	info   WriterInfo
	report func() (*WriterReport, error)
	cancel context.CancelFunc
	done   chan error
	pr     *io.PipeReader
}

func (p *pipeWriter) Info() WriterInfo                              { return p.info }
func (p *pipeWriter) Report(context.Context) (*WriterReport, error) { return p.report() }
func (p *pipeWriter) Close() error {
	p.cancel()
	_ = p.pr.Close()
	return <-p.done
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

// FuzzReadWriterLines: whatever a writer process prints, reading it never
// panics; a report is returned only when both lines parse and carry no
// error.
func FuzzReadWriterLines(f *testing.F) {
	f.Add([]byte("{\"ws\":\"ws://127.0.0.1:1\",\"rest\":\"http://127.0.0.1:1\"}\n{\"sent\":[1,2],\"lag\":[0,5],\"write_ns\":7}\n"))
	f.Add([]byte("{\"ws\":\"x\"}\n{\"err\":\"write frame 3: broken pipe\"}\n"))
	f.Add([]byte("{}\n"))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, report, err := ReadWriterLines(bytes.NewReader(b))
		if err != nil {
			return
		}
		rep, err := report()
		if err == nil && (rep == nil || rep.Err != "") {
			t.Fatalf("report %+v without error", rep)
		}
	})
}
