package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/goleak"
)

// SoakFaults returns the names of the faults a soak draws from by default:
// every fault of the spot BTCUSDT setup that is injected into a running
// service (not the baseline, not the cold start).
func SoakFaults() []string {
	var out []string
	for _, f := range Catalogue() {
		if f.Setup == SpotBTC && f.Inject != nil && !f.ClosedPort && f.Name != "none" {
			out = append(out, f.Name)
		}
	}
	return out
}

// SoakOptions configure Soak.
type SoakOptions struct {
	// Duration is how long faults are injected. Required. The soak then
	// pauses the replay and verifies, which takes a few seconds more.
	Duration time.Duration
	// Seed seeds the fault sequence; the same seed draws the same faults.
	Seed uint64
	// ReportEvery is the interval of the resource lines. Default 10 s.
	ReportEvery time.Duration
	// Faults are catalogue names to draw from. Default SoakFaults().
	Faults []string
	// Out receives the resource lines and the table. Default: discard.
	Out io.Writer
}

// Sample is one resource measurement of a soak.
type Sample struct {
	Elapsed    time.Duration
	HeapInuse  uint64 // runtime.MemStats.HeapInuse, bytes
	RSS        uint64 // resident set size, bytes (0 where /proc is not available)
	Goroutines int
	FDs        int // open file descriptors (-1 where /proc is not available)
	Faults     int // injected so far
}

// SoakResult is what a soak found.
type SoakResult struct {
	// Rows has one row per fault drawn, and a last row "total" that holds
	// the missing, duplicate, mismatch and leak counts (those are measured
	// once, at the end, over the whole run).
	Rows    []Row
	Samples []Sample
	// Faults counts injections, Recovered those the service recovered
	// from within the bound.
	Faults, Recovered                       int
	Missing, Duplicates, Mismatches, Leaked int
	// FDsBefore and FDsAfter are the process's open file descriptors
	// before the service started and after everything stopped; more after
	// than before (once settled) is a descriptor leak and fails the soak.
	FDsBefore, FDsAfter int
}

// Line is the soak's one-line verdict.
func (r *SoakResult) Line() string {
	return fmt.Sprintf("soak: faults=%d recovered=%d missing=%d duplicates=%d mismatches=%d leaked_goroutines=%d",
		r.Faults, r.Recovered, r.Missing, r.Duplicates, r.Mismatches, r.Leaked)
}

// OK reports whether nothing was lost, duplicated, mismatched or leaked
// (goroutines or file descriptors).
func (r *SoakResult) OK() bool {
	return r.Missing == 0 && r.Duplicates == 0 && r.Mismatches == 0 && r.Leaked == 0 && r.FDsAfter <= r.FDsBefore
}

// FDLine reports the open file descriptors before the run and after it.
func (r *SoakResult) FDLine() string {
	return fmt.Sprintf("soak: open_fds before=%d after=%d", r.FDsBefore, r.FDsAfter)
}

// openFDs counts this process's open file descriptors; -1 where
// /proc/self/fd is not available.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // ReadDir's own descriptor
}

// settleFDs waits up to d for the open descriptors to fall back to want
// (connections closed by the peer are released a little after Stop).
func settleFDs(want int, d time.Duration) int {
	deadline := time.Now().Add(d)
	n := openFDs()
	for n > want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = openFDs()
	}
	return n
}

// rss reads the resident set size from /proc/self/statm (Linux).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

func sample(start time.Time, faults int) Sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Sample{Elapsed: time.Since(start), HeapInuse: ms.HeapInuse, RSS: rss(), Goroutines: runtime.NumGoroutine(),
		FDs: openFDs(), Faults: faults}
}

func mib(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

func (s Sample) String() string {
	r := "n/a"
	if s.RSS > 0 {
		r = mib(s.RSS)
	}
	return fmt.Sprintf("soak: t=%s faults=%d heap_inuse=%s rss=%s goroutines=%d open_fds=%d",
		s.Elapsed.Round(time.Second), s.Faults, mib(s.HeapInuse), r, s.Goroutines, s.FDs)
}

// Soak replays spot BTCUSDT in a loop at Options.Speed and injects faults
// drawn at random (seeded) one after another, each once the service has
// recovered from the previous one, for Duration; it prints a resource line
// every ReportEvery. When ctx ends early the soak stops injecting and still
// verifies. Then, as Run does, it pauses the replay, compares the service's
// trades, totals and book with the simulator's, stops everything and counts
// leaked goroutines. It prints the table; the caller prints Line.
func (h *Harness) Soak(ctx context.Context, o SoakOptions) (*SoakResult, error) {
	if o.Duration <= 0 {
		return nil, errors.New("chaos: soak: Duration must be positive")
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = 10 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	names := o.Faults
	if len(names) == 0 {
		names = SoakFaults()
	}
	var faults []Fault
	for _, n := range names {
		f, err := FaultByName(n)
		if err != nil {
			return nil, fmt.Errorf("chaos: soak: %w", err)
		}
		if f.Setup != SpotBTC || f.Inject == nil || f.ClosedPort {
			return nil, fmt.Errorf("chaos: soak: fault %q needs its own setup (%s) and cannot be drawn in a soak", n, f.Setup)
		}
		faults = append(faults, f)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x50a4))
	res := &SoakResult{}
	rows := map[string]*Row{}
	var order []string
	total := Row{Fault: "total", Setup: SpotBTC.String(),
		Note: "missing, duplicates, mismatches: the service's history, totals and book against the simulator's, once, at the end"}

	start := time.Now()
	g0 := runtime.NumGoroutine()
	ignore := goleak.IgnoreCurrent()
	res.FDsBefore = openFDs()
	s, err := h.open(ctx, SpotBTC, false)
	if err != nil {
		return nil, err
	}
	var injected atomic.Int64
	var (
		sampleMu sync.Mutex
		wg       sync.WaitGroup
	)
	stopReport := make(chan struct{})
	record := func() {
		sm := sample(start, int(injected.Load()))
		sampleMu.Lock()
		res.Samples = append(res.Samples, sm)
		sampleMu.Unlock()
		fmt.Fprintln(o.Out, sm)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(o.ReportEvery)
		defer tk.Stop()
		for {
			select {
			case <-stopReport:
				return
			case <-tk.C:
				record()
			}
		}
	}()
	record()

	runErr := func() error {
		if err := s.warmUp(ctx); err != nil {
			return err
		}
		deadline := time.Now().Add(o.Duration)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			f := faults[rng.IntN(len(faults))]
			r := rows[f.Name]
			if r == nil {
				r = &Row{Fault: f.Name, Setup: f.Setup.String(), What: f.What,
					Note: strings.TrimPrefix(f.Note+"; missing: ids the service itself counted as lost during this fault", "; ")}
				rows[f.Name] = r
				order = append(order, f.Name)
			}
			r.Injected++
			injected.Add(1)
			d, lost, err := s.inject(ctx, &f)
			if lost > 0 {
				r.Missing += int(lost)
				r.fail(fmt.Sprintf("the service counted %d aggregate ids lost during this injection", lost))
			}
			if err != nil {
				if ctx.Err() != nil {
					r.Injected-- // interrupted, not a failed recovery
					injected.Add(-1)
					break
				}
				r.fail(err.Error())
				h.log.Warn("soak: not recovered", "fault", f.Name, "err", err)
			} else {
				r.Survived++
				r.Recovery = append(r.Recovery, d)
			}
			// A pause of Gap to 2*Gap keeps the faults apart and the dial
			// rate within Binance's 300 attempts per 5 minutes.
			gap := h.opts.Gap + time.Duration(rng.Int64N(int64(h.opts.Gap)+1))
			if sleepCtx(ctx, gap) != nil {
				break
			}
		}
		// Verify even after an interrupt: the point of a soak is its result.
		vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		v, err := s.verify(vctx)
		if err != nil {
			return err
		}
		total.Missing, total.Duplicates, total.Mismatches = v.missing, v.duplicates, v.mismatches
		for _, why := range v.reasons {
			total.fail(why)
		}
		total.SimStats = simSummary(s.srv.Stats())
		return nil
	}()
	if runErr != nil {
		total.fail(runErr.Error())
	}
	if total.Failed {
		total.Logs = s.logs.last(8)
	}
	closeErr := s.close()
	close(stopReport)
	wg.Wait()
	if closeErr != nil {
		total.fail(closeErr.Error())
	}
	n, detail := settleGoroutines(g0, ignore, 5*time.Second)
	total.Leaked = n
	if n > 0 {
		total.fail(fmt.Sprintf("%d goroutine(s) still running after stop: %s", n, detail))
	}
	res.FDsAfter = settleFDs(res.FDsBefore, 5*time.Second)
	if res.FDsAfter > res.FDsBefore {
		total.fail(fmt.Sprintf("%d file descriptor(s) still open after stop", res.FDsAfter-res.FDsBefore))
	}
	record()
	for _, name := range order {
		r := rows[name]
		res.Faults += r.Injected
		res.Recovered += r.Survived
		total.Injected += r.Injected
		total.Survived += r.Survived
		total.Recovery = append(total.Recovery, r.Recovery...)
		res.Rows = append(res.Rows, *r)
	}
	total.Elapsed = time.Since(start)
	res.Rows = append(res.Rows, total)
	res.Missing, res.Duplicates, res.Mismatches, res.Leaked = total.Missing, total.Duplicates, total.Mismatches, total.Leaked
	if err := WriteTable(o.Out, res.Rows); err != nil {
		return res, fmt.Errorf("chaos: soak: write table: %w", err)
	}
	if runErr != nil && res.Faults == 0 {
		return res, fmt.Errorf("chaos: soak: %w", runErr)
	}
	return res, nil
}
