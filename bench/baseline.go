package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// BaselineOptions configures RunBaseline.
type BaselineOptions struct {
	// Dir is the baseline module's directory (bench/gobinance).
	Dir string
	// Files are the recordings, as paths valid from the caller's working
	// directory (they are made absolute for the child).
	Files []string
	// Duration and MinRounds mean what they mean in PipelineOptions.
	Duration  time.Duration
	MinRounds int
	// CPUs sets the child's GOMAXPROCS (0: its default).
	CPUs int
	// Decoder is "stdjson" (default) or "simplejson" (go-binance's own
	// depth handler path).
	Decoder string
	// Stderr receives the go tool's and the child's diagnostics.
	Stderr *bytes.Buffer
}

// BaselineResult is what the go-binance baseline measured, in its own
// process with the same method as RunPipeline.
type BaselineResult struct {
	Decoder       string    `json:"decoder"`
	Records       int       `json:"records"`
	Bytes         int64     `json:"bytes"`
	LoadNanos     int64     `json:"load_ns"`
	Rounds        int       `json:"rounds"`
	Events        int64     `json:"events"`
	WallNanos     int64     `json:"wall_ns"`
	CPUNanos      int64     `json:"cpu_ns"`
	Mallocs       uint64    `json:"mallocs"`
	AllocBytes    uint64    `json:"alloc_bytes"`
	PeakHeapInuse uint64    `json:"peak_heap_inuse"`
	Sys           uint64    `json:"sys"`
	GCs           uint32    `json:"gcs"`
	Rejected      int64     `json:"rejected"`
	Summaries     []Summary `json:"summaries"`
}

// EventsPerCPUSec returns events per second of the child's CPU time.
func (r *BaselineResult) EventsPerCPUSec() float64 {
	return float64(r.Events) / (float64(r.CPUNanos) / 1e9)
}

// AllocsPerEvent returns mallocs per event.
func (r *BaselineResult) AllocsPerEvent() float64 { return float64(r.Mallocs) / float64(r.Events) }

// RunBaseline builds the baseline module to a temporary binary (so compile
// time is not measured) and runs it on the files.
func RunBaseline(ctx context.Context, opts BaselineOptions) (*BaselineResult, error) {
	if _, err := os.Stat(filepath.Join(opts.Dir, "go.mod")); err != nil {
		return nil, fmt.Errorf("bench: baseline module: %w", err)
	}
	tmp, err := os.MkdirTemp("", "orderflow-baseline-")
	if err != nil {
		return nil, fmt.Errorf("bench: baseline: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "gobinance")
	stderr := opts.Stderr
	if stderr == nil {
		stderr = &bytes.Buffer{}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = opts.Dir
	build.Stderr = stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("bench: build baseline in %s: %w: %s", opts.Dir, err, lastLines(stderr.String(), 5))
	}
	args := []string{"-json", "-duration", opts.Duration.String(), "-min-rounds", strconv.Itoa(max(opts.MinRounds, 1)),
		"-cpus", strconv.Itoa(opts.CPUs)}
	if opts.Decoder != "" {
		args = append(args, "-decoder", opts.Decoder)
	}
	for _, f := range opts.Files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("bench: baseline: %w", err)
		}
		args = append(args, abs)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("bench: run baseline: %w: %s", err, lastLines(stderr.String(), 5))
	}
	res := &BaselineResult{}
	if err := json.Unmarshal(out.Bytes(), res); err != nil {
		return nil, fmt.Errorf("bench: baseline output: %w", err)
	}
	if res.Events == 0 || res.CPUNanos <= 0 {
		return nil, errors.New("bench: baseline measured nothing")
	}
	return res, nil
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("; ")))
}

// CompareSummaries checks that the baseline ended where the pipeline did:
// the same symbols, trade counts, applied diffs, book sizes and top of
// book, and volumes and VWAP equal within float64 rounding (relative 1e-9).
// It returns one line per difference; none means both sides did the same
// work.
func CompareSummaries(ours, theirs []Summary) []string {
	var diffs []string
	byName := map[string]Summary{}
	for _, s := range theirs {
		byName[s.Symbol] = s
	}
	if len(ours) != len(theirs) {
		diffs = append(diffs, fmt.Sprintf("symbols: %d vs %d", len(ours), len(theirs)))
	}
	for _, a := range ours {
		b, ok := byName[a.Symbol]
		if !ok {
			diffs = append(diffs, a.Symbol+": missing from the baseline")
			continue
		}
		if a.Trades != b.Trades || a.Applied != b.Applied || a.BidLevels != b.BidLevels || a.AskLevels != b.AskLevels {
			diffs = append(diffs, fmt.Sprintf("%s: counts differ: trades %d/%d applied %d/%d levels %d+%d/%d+%d", a.Symbol,
				a.Trades, b.Trades, a.Applied, b.Applied, a.BidLevels, a.AskLevels, b.BidLevels, b.AskLevels))
		}
		for _, f := range []struct{ name, x, y string }{
			{"best_bid", a.BestBid, b.BestBid}, {"best_ask", a.BestAsk, b.BestAsk},
			{"buy_volume", a.BuyVolume, b.BuyVolume}, {"sell_volume", a.SellVolume, b.SellVolume}, {"vwap", a.VWAP, b.VWAP},
		} {
			if !closeEnough(f.x, f.y) {
				diffs = append(diffs, fmt.Sprintf("%s: %s %s vs %s", a.Symbol, f.name, f.x, f.y))
			}
		}
	}
	return diffs
}

func closeEnough(x, y string) bool {
	if x == y {
		return true
	}
	a, err1 := strconv.ParseFloat(x, 64)
	b, err2 := strconv.ParseFloat(y, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return math.Abs(a-b) <= 1e-9*max(math.Abs(a), math.Abs(b))
}
