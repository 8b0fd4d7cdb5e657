package bench

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// repoFile returns a path under the repository root (tests run in bench/).
func repoFile(name string) string { return filepath.Join("..", name) }

func defaultFiles() []string {
	out := make([]string, len(DefaultFiles))
	for i, f := range DefaultFiles {
		out[i] = repoFile(f)
	}
	return out
}

var (
	corpusOnce sync.Once
	corpus     *Corpus
	corpusErr  error
)

// mustCorpus loads the spot BTCUSDT recordings once per test binary.
func mustCorpus(tb testing.TB) *Corpus {
	tb.Helper()
	corpusOnce.Do(func() { corpus, corpusErr = Load(defaultFiles()) })
	if corpusErr != nil {
		tb.Fatalf("load corpus: %v", corpusErr)
	}
	return corpus
}

// BenchmarkPipeline is the whole pipeline per event (decode, book sync,
// metrics) on the real spot BTCUSDT recording held in memory: one op is
// one recorded message (trade, depth diff, bookTicker or the snapshot).
// When the recording ends the engine is replaced by a fresh one, off the
// timer.
func BenchmarkPipeline(b *testing.B) {
	c := mustCorpus(b)
	b.SetBytes(c.Bytes / int64(len(c.Records)))
	b.ReportAllocs()
	e := NewEngine(flow.Config{})
	i := 0
	b.ResetTimer()
	for range b.N {
		if i == len(c.Records) {
			b.StopTimer()
			e, i = NewEngine(flow.Config{}), 0
			b.StartTimer()
		}
		_ = Feed(e, &c.Records[i])
		i++
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPipelineSteady is the pipeline after its warm-up: the first 20%
// of the recording (the snapshot, the book's growth, the metrics' rings)
// is fed off the timer, then the remaining 80% is timed.
func BenchmarkPipelineSteady(b *testing.B) {
	c := mustCorpus(b)
	from := len(c.Records) / 5
	b.SetBytes(c.Bytes / int64(len(c.Records)))
	b.ReportAllocs()
	var e *engine.Engine
	i := len(c.Records)
	b.ResetTimer()
	for range b.N {
		if i == len(c.Records) {
			b.StopTimer()
			e = NewEngine(flow.Config{})
			for j := range from {
				_ = Feed(e, &c.Records[j])
			}
			i = from
			b.StartTimer()
		}
		_ = Feed(e, &c.Records[i])
		i++
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func TestRunPipelineSpotBTCUSDT(t *testing.T) {
	c := mustCorpus(t)
	// Counts from testdata/binance/SOURCES.md, entry 1.
	if got, want := len(c.Records), 41249+58325; got != want {
		t.Fatalf("records = %d, want %d", got, want)
	}
	if c.Snapshots != 1 {
		t.Fatalf("snapshots = %d, want 1", c.Snapshots)
	}
	res, err := RunPipeline(context.Background(), c, PipelineOptions{MinRounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rounds != 2 || res.Events != 2*int64(len(c.Records)) {
		t.Fatalf("rounds %d events %d", res.Rounds, res.Events)
	}
	if res.Rejected != 0 {
		t.Fatalf("rejected %d records", res.Rejected)
	}
	st := res.Stats
	if st.Trades != 9757+10147 || st.DepthUpdates != 3451+3044 || st.BookTickers != 28040+45134 || st.Snapshots != 1 {
		t.Fatalf("stats %+v", st)
	}
	if len(res.Summaries) != 1 {
		t.Fatalf("summaries %v", res.Summaries)
	}
	s := res.Summaries[0]
	// SOURCES.md: 6,493 diffs applied after dropping 2 buffered ones.
	if s.Symbol != "BTCUSDT" || s.Trades != 19904 || s.Applied != 6493 {
		t.Fatalf("summary %v", s)
	}
	if res.SteadyEvents == 0 || res.CPU <= 0 || res.PeakHeapInuse == 0 {
		t.Fatalf("measurements missing: %+v", res)
	}
}

func TestLoadRejectsMissingFile(t *testing.T) {
	_, err := Load([]string{filepath.Join(t.TempDir(), "absent.txt.gz")})
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error", err)
	}
}
