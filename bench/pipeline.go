package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// PipelineOptions configures RunPipeline. The zero value runs one round.
type PipelineOptions struct {
	// Duration keeps replaying the corpus (a fresh engine each round) until
	// this much wall time has passed; at least MinRounds rounds run.
	Duration time.Duration
	// MinRounds is the least number of rounds (default 1).
	MinRounds int
	// Flow configures the metrics (zero: the service's defaults).
	Flow flow.Config
	// Configure, if set, adjusts each round's engine configuration before
	// the engine is built (e.g. to attach push subscribers).
	Configure func(cfg *engine.Config)
	// Progress, if set, is called about every 100 ms with the events done
	// so far, for a terminal display. It runs on the measuring goroutine.
	Progress func(events int64, elapsed time.Duration)
}

// PipelineResult is what RunPipeline measured.
type PipelineResult struct {
	Rounds int
	// Events counts records fed (frames and snapshots), Bytes their JSON.
	Events, Bytes int64
	// Wall is the elapsed time of the rounds; CPU the process CPU time
	// (user+system, all threads, GC included) over the same span.
	Wall, CPU time.Duration
	// Mallocs and AllocBytes are runtime.MemStats deltas over every round,
	// including each round's engine setup (a new engine, its books and
	// rings); SteadyMallocs is the delta over the last 80% of one round,
	// after setup and warm-up, and SteadyEvents the events it covers.
	Mallocs, AllocBytes         uint64
	SteadyMallocs, SteadyEvents uint64
	// PeakHeapInuse is the largest HeapInuse sampled (every 8192 events and
	// at round ends); Sys is runtime's total from the OS at the end.
	PeakHeapInuse, Sys uint64
	// HeapBefore is HeapInuse after a GC just before the first round: the
	// corpus and whatever else the process holds, so PeakHeapInuse -
	// HeapBefore is what the pipeline itself holds at most.
	HeapBefore uint64
	// GCs is the number of garbage collections during the rounds.
	GCs uint32
	// Rejected counts records the engine refused in the last round (0 on
	// the bundled recordings; anything else means the figures cover less
	// work than they claim).
	Rejected int64
	// Stats are the engine's counters of the last round.
	Stats engine.Stats
	// Summaries are the last round's per-symbol results, to compare with
	// the baseline's.
	Summaries []Summary
}

// EventsPerSec returns events per second of wall time.
func (r *PipelineResult) EventsPerSec() float64 { return float64(r.Events) / r.Wall.Seconds() }

// EventsPerCPUSec returns events per second of process CPU time: the rate
// one core sustains.
func (r *PipelineResult) EventsPerCPUSec() float64 { return float64(r.Events) / r.CPU.Seconds() }

// MBPerCPUSec returns MB (1e6 bytes) of JSON per CPU second.
func (r *PipelineResult) MBPerCPUSec() float64 { return float64(r.Bytes) / 1e6 / r.CPU.Seconds() }

// AllocsPerEvent returns mallocs per event over every round.
func (r *PipelineResult) AllocsPerEvent() float64 { return float64(r.Mallocs) / float64(r.Events) }

// SteadyAllocsPerEvent returns mallocs per event after warm-up.
func (r *PipelineResult) SteadyAllocsPerEvent() float64 {
	if r.SteadyEvents == 0 {
		return 0
	}
	return float64(r.SteadyMallocs) / float64(r.SteadyEvents)
}

// CPUTime returns the process's user+system CPU time (every thread).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Feed applies one record to an engine, as replay does.
func Feed(e *engine.Engine, r *Record) error {
	if r.Kind == capture.Snapshot {
		return e.HandleSnapshot(r.Symbol, r.Data, r.Market, r.MarketKnown)
	}
	_, err := e.HandleFrame(r.Data, r.Market, r.MarketKnown)
	return err
}

// NewEngine returns the engine a round uses: the service's defaults, no
// callbacks, no logging.
func NewEngine(fc flow.Config) *engine.Engine {
	return engine.New(engine.Config{Flow: fc})
}

func newRoundEngine(opts *PipelineOptions) *engine.Engine {
	cfg := engine.Config{Flow: opts.Flow}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	return engine.New(cfg)
}

// RunPipeline replays c through fresh engines until opts.Duration has
// passed, measuring throughput, CPU, allocations and memory.
func RunPipeline(ctx context.Context, c *Corpus, opts PipelineOptions) (*PipelineResult, error) {
	if len(c.Records) == 0 {
		return nil, errors.New("bench: empty corpus")
	}
	minRounds := max(opts.MinRounds, 1)
	res := &PipelineResult{}
	runtime.GC() // start from a clean heap so the peak is this run's
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	startMallocs, startBytes, startGC := ms.Mallocs, ms.TotalAlloc, ms.NumGC
	res.PeakHeapInuse, res.HeapBefore = ms.HeapInuse, ms.HeapInuse
	steadyFrom := len(c.Records) / 5
	lastProgress := time.Now()
	cpu0 := CPUTime()
	start := time.Now()
	var e *engine.Engine
	for res.Rounds < minRounds || time.Since(start) < opts.Duration {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e = newRoundEngine(&opts)
		var rejected int64
		measureSteady := res.Rounds == min(1, minRounds-1) && res.SteadyEvents == 0
		var steady0 uint64
		for i := range c.Records {
			if err := Feed(e, &c.Records[i]); err != nil {
				rejected++
			}
			if i&8191 == 8191 {
				runtime.ReadMemStats(&ms)
				res.PeakHeapInuse = max(res.PeakHeapInuse, ms.HeapInuse)
				if opts.Progress != nil && time.Since(lastProgress) >= 100*time.Millisecond {
					lastProgress = time.Now()
					opts.Progress(res.Events+int64(i), time.Since(start))
				}
			}
			if measureSteady && i == steadyFrom {
				runtime.ReadMemStats(&ms)
				steady0 = ms.Mallocs
			}
		}
		res.Rounds++
		res.Events += int64(len(c.Records))
		res.Bytes += c.Bytes
		res.Rejected = rejected
		runtime.ReadMemStats(&ms)
		res.PeakHeapInuse = max(res.PeakHeapInuse, ms.HeapInuse)
		if measureSteady {
			// The ReadMemStats calls inside the round allocate nothing,
			// so the delta is the pipeline's own.
			res.SteadyMallocs = ms.Mallocs - steady0
			res.SteadyEvents = uint64(len(c.Records) - steadyFrom)
		}
	}
	res.Wall = time.Since(start)
	res.CPU = CPUTime() - cpu0
	runtime.ReadMemStats(&ms)
	res.Mallocs, res.AllocBytes, res.GCs = ms.Mallocs-startMallocs, ms.TotalAlloc-startBytes, ms.NumGC-startGC
	res.Sys = ms.Sys
	res.Stats = e.Stats()
	res.Summaries = Summarize(e)
	if opts.Progress != nil {
		opts.Progress(res.Events, res.Wall)
	}
	return res, nil
}

// Summary is one symbol's end state, the common ground the pipeline and
// the baseline are compared on. Numbers are decimal strings so that the
// exact side stays exact; the baseline writes its floats the same way.
type Summary struct {
	Symbol     string `json:"symbol"`
	Trades     int64  `json:"trades"`
	BuyVolume  string `json:"buy_volume"`
	SellVolume string `json:"sell_volume"`
	VWAP       string `json:"vwap"`
	BestBid    string `json:"best_bid"`
	BestAsk    string `json:"best_ask"`
	BidLevels  int    `json:"bid_levels"`
	AskLevels  int    `json:"ask_levels"`
	// Applied counts depth updates applied to the book.
	Applied uint64 `json:"depth_applied"`
}

// Summarize returns every symbol's summary, in first-seen order.
func Summarize(e *engine.Engine) []Summary {
	var out []Summary
	for _, s := range e.Symbols() {
		t := s.Flow.Totals()
		sum := Summary{Symbol: s.Name, Trades: t.Trades, BuyVolume: t.BuyVolume.String(),
			SellVolume: t.SellVolume.String(), VWAP: t.VWAP.String()}
		if b := s.Book(); b != nil {
			if l, ok := b.BestBid(); ok {
				sum.BestBid = l.Price.String()
			}
			if l, ok := b.BestAsk(); ok {
				sum.BestAsk = l.Price.String()
			}
			sum.BidLevels, sum.AskLevels = b.Len(market.Buy), b.Len(market.Sell)
		}
		if s.Sync != nil {
			sum.Applied = s.Sync.Stats().Applied
		}
		out = append(out, sum)
	}
	return out
}

// String formats a one-line description, for logs.
func (s Summary) String() string {
	return fmt.Sprintf("%s trades=%d buy=%s sell=%s vwap=%s bid=%s(%d) ask=%s(%d) applied=%d",
		s.Symbol, s.Trades, s.BuyVolume, s.SellVolume, s.VWAP, s.BestBid, s.BidLevels, s.BestAsk, s.AskLevels, s.Applied)
}
