package bench

import (
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RuntimeStats is what this process (the service's side of a latency
// run) did while the writer wrote: the evidence for where the wire part
// of the latency goes. The counts are summed over the rounds, each from
// the service's start to the writer's last frame.
type RuntimeStats struct {
	// Frames written during the measured spans, the unit of the per-frame
	// figures.
	Frames int64
	// SchedLatency is the Go scheduler's latency over the spans (runtime
	// metric /sched/latencies:seconds: time a goroutine spent runnable
	// before it ran), every goroutine of the process. The quantiles are
	// bucket upper bounds.
	SchedLatency struct {
		Count          uint64
		P50, P99, P999 time.Duration
	}
	// GCCycles and GCPauses are the collections that ran and their
	// stop-the-world time in all (/sched/pauses/total/gc:seconds, bucket
	// midpoints); GCPauseMax is the upper bound of the longest pause's
	// bucket.
	GCCycles   uint64
	GCPauses   time.Duration
	GCPauseMax time.Duration
	// HeapAllocs are the heap objects allocated (every goroutine of the
	// process, the push client's JSON decoding included).
	HeapAllocs uint64
	// CPU is user+system time of every thread of the process.
	CPU time.Duration
	// VolSwitches counts the times a thread of the process gave up its
	// CPU to wait (for the network, a futex, a timer): each is a later
	// wake-up. InvolSwitches counts the times the kernel took a CPU from
	// a runnable thread.
	VolSwitches, InvolSwitches int64
	// Steal is the time the hypervisor ran something else while one of
	// the machine's virtual CPUs had work (Linux /proc/stat, every CPU; 10
	// ms ticks): a stall no code in the guest can see or avoid. StealKnown
	// is false where /proc/stat cannot be read.
	Steal      time.Duration
	StealKnown bool
}

// PerFrame divides n by the frames written.
func (s *RuntimeStats) PerFrame(n float64) float64 {
	if s.Frames == 0 {
		return 0
	}
	return n / float64(s.Frames)
}

var rtMetricNames = []string{
	"/sched/latencies:seconds",
	"/gc/cycles/total:gc-cycles",
	"/sched/pauses/total/gc:seconds",
	"/gc/heap/allocs:objects",
}

// rtSample is a reading of the runtime metrics and the process's usage.
type rtSample struct {
	m     []metrics.Sample
	ru    syscall.Rusage
	steal time.Duration
	ok    bool // steal was read
}

func takeRTSample() rtSample {
	s := rtSample{m: make([]metrics.Sample, len(rtMetricNames))}
	for i, n := range rtMetricNames {
		s.m[i].Name = n
	}
	metrics.Read(s.m)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s.ru)
	s.steal, s.ok = readSteal()
	return s
}

// readSteal reads the machine's total steal time from /proc/stat's first
// line ("cpu user nice system idle iowait irq softirq steal ..."), whose
// unit is USER_HZ: 100 per second on Linux.
func readSteal() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	ticks, err := strconv.ParseInt(f[8], 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(ticks) * 10 * time.Millisecond, true
}

// rtAccum sums the differences of sample pairs.
type rtAccum struct {
	frames          int64
	sched, gcPause  []uint64  // bucket counts
	schedB, pauseB  []float64 // bucket boundaries
	gcCycles, alloc uint64
	cpu             time.Duration
	vol, invol      int64
	steal           time.Duration
	stealKnown      bool
}

func (a *rtAccum) add(from, to rtSample, frames int64) {
	a.frames += frames
	hist := func(i int, counts *[]uint64, bounds *[]float64) {
		if from.m[i].Value.Kind() != metrics.KindFloat64Histogram || to.m[i].Value.Kind() != metrics.KindFloat64Histogram {
			return
		}
		f, t := from.m[i].Value.Float64Histogram(), to.m[i].Value.Float64Histogram()
		if len(f.Counts) != len(t.Counts) {
			return
		}
		if *counts == nil {
			*counts = make([]uint64, len(t.Counts))
			*bounds = t.Buckets
		}
		for k := range t.Counts {
			(*counts)[k] += t.Counts[k] - f.Counts[k]
		}
	}
	u64 := func(i int) uint64 {
		if to.m[i].Value.Kind() != metrics.KindUint64 || from.m[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return to.m[i].Value.Uint64() - from.m[i].Value.Uint64()
	}
	hist(0, &a.sched, &a.schedB)
	a.gcCycles += u64(1)
	hist(2, &a.gcPause, &a.pauseB)
	a.alloc += u64(3)
	cpu := func(ru *syscall.Rusage) time.Duration { return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()) }
	a.cpu += cpu(&to.ru) - cpu(&from.ru)
	a.vol += int64(to.ru.Nvcsw - from.ru.Nvcsw)
	a.invol += int64(to.ru.Nivcsw - from.ru.Nivcsw)
	if from.ok && to.ok {
		a.steal += to.steal - from.steal
		a.stealKnown = true
	}
}

func (a *rtAccum) stats() RuntimeStats {
	s := RuntimeStats{Frames: a.frames, GCCycles: a.gcCycles, HeapAllocs: a.alloc, CPU: a.cpu,
		VolSwitches: a.vol, InvolSwitches: a.invol, Steal: a.steal, StealKnown: a.stealKnown}
	for _, c := range a.sched {
		s.SchedLatency.Count += c
	}
	s.SchedLatency.P50 = histQuantile(a.sched, a.schedB, 0.50)
	s.SchedLatency.P99 = histQuantile(a.sched, a.schedB, 0.99)
	s.SchedLatency.P999 = histQuantile(a.sched, a.schedB, 0.999)
	for k, c := range a.gcPause {
		if c == 0 {
			continue
		}
		lo, hi := finite(a.pauseB[k]), finite(a.pauseB[k+1])
		s.GCPauses += time.Duration(float64(c) * (lo + hi) / 2 * 1e9)
		s.GCPauseMax = time.Duration(hi * 1e9)
	}
	return s
}

// histQuantile returns the upper bound of the bucket holding quantile q
// (a histogram of seconds; bucket k spans bounds[k] to bounds[k+1]).
func histQuantile(counts []uint64, bounds []float64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var cum uint64
	for k, c := range counts {
		cum += c
		if cum >= want {
			return time.Duration(finite(bounds[k+1]) * 1e9)
		}
	}
	return time.Duration(finite(bounds[len(bounds)-1]) * 1e9)
}

// finite maps the histograms' infinite end bounds to 0 and the largest
// finite second count, so that no conversion overflows.
func finite(x float64) float64 {
	switch {
	case math.IsInf(x, -1):
		return 0
	case math.IsInf(x, 1):
		return 3600
	}
	return x
}
