package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/bench"
)

func init() {
	register(command{name: "bench", summary: "measure the pipeline on real recordings: throughput, allocations, baseline, latency, scale", run: runBench})
}

// benchFlags are the flags of orderflow bench.
type benchFlags struct {
	files       string
	cpus        int
	duration    time.Duration
	baseline    bool
	baselineDir string
	decoder     string
	withAPI     bool
	latency     bool
	rate        int
	rounds      int
	scale       bool
	scaleN      string
	scaleTime   time.Duration
	scaleSearch bool
	scaleSync   time.Duration
	pace        string
	push        bool
	writer      string
	pin         bool
	busyPoll    time.Duration
	progress    bool
	trace       string
	cpuprofile  string
	// The frame writer child process of --latency.
	writerChild bool
	writerCPUs  string
	// The simulator child process of --scale.
	simChild  bool
	simFanout int
	simSpeed  float64
}

func runBench(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "bench", "[--files A,B] [--cpus 1] [--duration 5s] [--baseline] [--with-api] [--latency [--rate 20000]] [--scale [--scale-n 1,10,100,1000]] [FILE...]")
	var f benchFlags
	fs.StringVar(&f.files, "files", "", "comma-separated recordings (default: the spot BTCUSDT recordings in testdata/binance)")
	fs.IntVar(&f.cpus, "cpus", 0, "GOMAXPROCS for the measurement (default: 1 for the pipeline, whose figures are per core; every CPU for --latency and --scale, where the writer or simulator needs its own)")
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "how long to replay the recordings (fresh state each round)")
	fs.BoolVar(&f.baseline, "baseline", false, "also run the go-binance baseline (module in --baseline-dir) on the same files and print the ratio")
	fs.StringVar(&f.baselineDir, "baseline-dir", "bench/gobinance", "directory of the go-binance baseline module (needs the go tool)")
	fs.StringVar(&f.decoder, "baseline-decoder", "stdjson", "baseline depth decoding: stdjson, or simplejson as go-binance's own handler does")
	fs.BoolVar(&f.withAPI, "with-api", false, "attach push subscribers (one JSON encoder per subscriber behind a bounded queue) to every trade and bar")
	fs.BoolVar(&f.latency, "latency", false, "measure frame-to-metric latency over loopback WebSocket through the service")
	fs.IntVar(&f.rate, "rate", 20000, "latency: frames per second written")
	fs.IntVar(&f.rounds, "rounds", 3, "latency: rounds of the recording (a fresh service each)")
	fs.StringVar(&f.pace, "pace", "spin", "latency: writer pacing: spin (writes each frame at its due time, keeps one CPU busy) or timer (sleeps, then writes what is due in a burst)")
	fs.BoolVar(&f.push, "push", true, "latency: also measure through the HTTP push endpoint (/v1/ws)")
	fs.StringVar(&f.writer, "writer", "child", "latency: where the frame writer runs: child (another process, so it does not share Go's scheduler with the service) or inproc")
	fs.BoolVar(&f.pin, "pin", false, "latency: pin the writer child to the last CPU and this process (the service) to the others, with GOMAXPROCS = the CPUs left unless --cpus says otherwise (Linux)")
	fs.DurationVar(&f.busyPoll, "busy-poll", 0, "latency: the service's stream reads spin on the socket this long before sleeping (run --busy-poll); 0: off")
	fs.BoolVar(&f.writerChild, "latency-writer-child", false, "internal: run the frame writer of --latency in this process and print where it listens")
	fs.StringVar(&f.writerCPUs, "latency-writer-cpus", "", "internal: comma-separated CPUs the --latency-writer-child process is pinned to")
	fs.BoolVar(&f.scale, "scale", false, "measure CPU and memory per symbol against the simulator fanning the recording out to N symbols")
	fs.StringVar(&f.scaleN, "scale-n", "1,10,100,1000", "scale: comma-separated symbol counts")
	fs.DurationVar(&f.scaleTime, "scale-time", 15*time.Second, "scale: measured time per symbol count (after warm-up)")
	fs.BoolVar(&f.scaleSearch, "scale-search", false, "scale: also double the speed until the service falls behind (6 steps at most, 5 s each)")
	fs.DurationVar(&f.scaleSync, "scale-sync-timeout", 10*time.Minute, "scale: longest wait for every book to sync (the REST weight limit paces snapshots: about 4 symbols/s)")
	fs.BoolVar(&f.simChild, "sim-child", false, "internal: run the simulator for --scale in this process and print where it listens")
	fs.IntVar(&f.simFanout, "sim-fanout", 1, "internal: --sim-child fanout")
	fs.Float64Var(&f.simSpeed, "sim-speed", 1, "internal: --sim-child speed")
	fs.StringVar(&f.trace, "trace", "", "latency: write a runtime/trace of this process (the service side) during the rounds to this file")
	fs.StringVar(&f.cpuprofile, "cpuprofile", "", "latency: write a CPU profile of this process (the service side) during the rounds to this file")
	fs.BoolVar(&f.progress, "progress", isTerminal(os.Stderr), "show progress on stderr")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	files := fs.Args()
	if f.files != "" {
		files = append(files, strings.Split(f.files, ",")...)
	}
	if len(files) == 0 {
		files = bench.DefaultFiles
	}
	if f.cpus == 0 {
		f.cpus = 1
		if f.latency || f.scale {
			f.cpus = runtime.NumCPU()
		}
		if f.latency && f.pin {
			f.cpus = max(1, runtime.NumCPU()-1) // one CPU is the writer's
		}
	}
	if f.cpus < 1 || f.cpus > 1024 {
		return fmt.Errorf("%w: --cpus %d: want 1..1024", errUsage, f.cpus)
	}
	if f.duration < 0 {
		return fmt.Errorf("%w: --duration %v: want >= 0", errUsage, f.duration)
	}
	if f.busyPoll < 0 || f.busyPoll > time.Second {
		return fmt.Errorf("%w: --busy-poll %v: want 0..1s", errUsage, f.busyPoll)
	}
	if f.rate < 1 || f.rate > 1_000_000 {
		return fmt.Errorf("%w: --rate %d: want 1..1000000", errUsage, f.rate)
	}
	if f.simChild {
		return runSimChild(ctx, env, f.simFanout, f.simSpeed, files)
	}
	if f.writerChild {
		cpus, err := parseCPUs(f.writerCPUs)
		if err != nil {
			return err
		}
		return bench.ServeLatencyWriter(ctx, bench.WriterSpec{Files: files, Rate: f.rate, Pace: bench.Pace(f.pace), CPUs: cpus}, env.stdout)
	}
	prev := runtime.GOMAXPROCS(f.cpus)
	defer runtime.GOMAXPROCS(prev)
	out := env.stdout
	fmt.Fprintf(out, "orderflow bench: GOMAXPROCS=%d, %s, %d CPUs on this machine (shared machines give noisy absolute numbers; compare ratios within one run)\n",
		f.cpus, runtime.Version(), runtime.NumCPU())

	switch {
	case f.latency:
		return benchLatency(ctx, env, &f, files)
	case f.scale:
		return benchScale(ctx, env, &f, files)
	}

	c, err := bench.Load(files)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nload (gzip + line split, measured apart): %d records (%d frames, %d snapshots), %.1f MB JSON from %.1f MB on disk in %v (%.0f MB/s of JSON)\n",
		len(c.Records), c.Frames, c.Snapshots, float64(c.Bytes)/1e6, float64(c.FileBytes)/1e6,
		c.LoadTime.Round(time.Millisecond), float64(c.Bytes)/1e6/c.LoadTime.Seconds())

	opts := bench.PipelineOptions{Duration: f.duration}
	var pr *progressLine
	if f.progress {
		pr = &progressLine{w: env.stderr, label: "pipeline", total: f.duration}
		opts.Progress = pr.update
	}
	var push *bench.PushFanout
	if f.withAPI {
		push = bench.NewPushFanout(bench.PushOptions{})
		opts.Configure = push.Configure
	}
	res, err := bench.RunPipeline(ctx, c, opts)
	pr.finish()
	if push != nil {
		push.Close()
	}
	if err != nil {
		return err
	}
	printPipeline(out, res)
	if push != nil {
		ps := push.Stats()
		fmt.Fprintf(out, "  push fan-out: %d subscribers, %d events delivered, %d skipped (queue full), %.1f MB JSON encoded\n",
			ps.Subscribers, ps.Delivered, ps.Skipped, float64(ps.Bytes)/1e6)
	}

	if f.baseline {
		var stderr bytes.Buffer
		if f.progress {
			fmt.Fprintf(env.stderr, "baseline: building and running %s for %v...\n", f.baselineDir, f.duration)
		}
		bres, err := bench.RunBaseline(ctx, bench.BaselineOptions{Dir: f.baselineDir, Files: files, Duration: f.duration,
			CPUs: f.cpus, Decoder: f.decoder, Stderr: &stderr})
		if err != nil {
			return err
		}
		printBaseline(out, res, bres)
	}
	return nil
}

func printPipeline(w io.Writer, r *bench.PipelineResult) {
	fmt.Fprintf(w, "\npipeline (decode + book sync + metrics), %d rounds in %v:\n", r.Rounds, r.Wall.Round(time.Millisecond))
	fmt.Fprintf(w, "  %12.0f events/s per core (CPU time %v, wall %.0f events/s)\n", r.EventsPerCPUSec(), r.CPU.Round(time.Millisecond), r.EventsPerSec())
	fmt.Fprintf(w, "  %12.1f MB/s of JSON per core\n", r.MBPerCPUSec())
	fmt.Fprintf(w, "  %12.1f ns per event (CPU)\n", float64(r.CPU.Nanoseconds())/float64(r.Events))
	fmt.Fprintf(w, "  %12.4f allocs/event overall (each round builds a fresh engine), %.4f after warm-up; %d GCs\n",
		r.AllocsPerEvent(), r.SteadyAllocsPerEvent(), r.GCs)
	fmt.Fprintf(w, "  %12.1f MB peak HeapInuse of the pipeline (%.1f MB peak in all, %.1f MB of it the corpus and the rest of the process before the first round), %.1f MB Sys\n",
		float64(r.PeakHeapInuse-r.HeapBefore)/1e6, float64(r.PeakHeapInuse)/1e6, float64(r.HeapBefore)/1e6, float64(r.Sys)/1e6)
	st := r.Stats
	fmt.Fprintf(w, "  last round: %d trades, %d depth diffs, %d bookTickers, %d snapshots, %d decode errors, %d rejected\n",
		st.Trades, st.DepthUpdates, st.BookTickers, st.Snapshots, st.DecodeErrors, r.Rejected)
	for _, s := range r.Summaries {
		fmt.Fprintf(w, "  %s\n", s)
	}
}

func printBaseline(w io.Writer, ours *bench.PipelineResult, b *bench.BaselineResult) {
	fmt.Fprintf(w, "\ngo-binance baseline (%s decoding; encoding/json, map book, float64 metrics), %d rounds:\n", b.Decoder, b.Rounds)
	fmt.Fprintf(w, "  %12.0f events/s per core\n", b.EventsPerCPUSec())
	fmt.Fprintf(w, "  %12.1f MB/s of JSON per core\n", float64(b.Bytes)*float64(b.Rounds)/1e6/(float64(b.CPUNanos)/1e9))
	fmt.Fprintf(w, "  %12.2f allocs/event, %.1f MB peak HeapInuse, %d GCs, %d rejected\n",
		b.AllocsPerEvent(), float64(b.PeakHeapInuse)/1e6, b.GCs, b.Rejected)
	for _, s := range b.Summaries {
		fmt.Fprintf(w, "  %s\n", s)
	}
	if diffs := bench.CompareSummaries(ours.Summaries, b.Summaries); len(diffs) > 0 {
		fmt.Fprintf(w, "  WARNING: the two sides ended in different states, the ratio compares different work:\n")
		for _, d := range diffs {
			fmt.Fprintf(w, "    %s\n", d)
		}
	} else {
		fmt.Fprintf(w, "  same end state on both sides (trades, applied diffs, book size and top, volumes, VWAP)\n")
	}
	fmt.Fprintf(w, "\nratio: orderflow is %.1fx the go-binance baseline in events per CPU second (target >= 10x)\n",
		ours.EventsPerCPUSec()/b.EventsPerCPUSec())
}

// progressLine draws "label 1.2M events 3.1s/5s" on stderr, in place.
type progressLine struct {
	w     io.Writer
	label string
	total time.Duration
	drawn bool
}

func (p *progressLine) update(events int64, elapsed time.Duration) {
	p.drawn = true
	fmt.Fprintf(p.w, "\r%s: %s events, %.1fs/%.0fs   ", p.label, humanCount(events), elapsed.Seconds(), p.total.Seconds())
}

func (p *progressLine) finish() {
	if p != nil && p.drawn {
		fmt.Fprintln(p.w)
	}
}

func humanCount(n int64) string {
	switch {
	case n >= 1e6:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + "M"
	case n >= 1e3:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatInt(n, 10)
}

func benchLatency(ctx context.Context, env *environ, f *benchFlags, files []string) error {
	c, err := bench.Load(files)
	if err != nil {
		return err
	}
	opts := bench.LatencyOptions{Rate: f.rate, Rounds: f.rounds, Pace: bench.Pace(f.pace), Push: f.push, Files: files, BusyPoll: f.busyPoll}
	switch f.writer {
	case "child":
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: latency: %w", err)
		}
		opts.Writer = func(ctx context.Context, spec bench.WriterSpec) (bench.LatencyWriter, error) {
			return startChildWriter(ctx, exe, spec)
		}
	case "inproc":
		if f.pin {
			return fmt.Errorf("%w: --pin needs --writer child", errUsage)
		}
	default:
		return fmt.Errorf("%w: --writer %q: want child or inproc", errUsage, f.writer)
	}
	if f.pin {
		n := runtime.NumCPU()
		if n < 2 {
			return fmt.Errorf("%w: --pin needs at least 2 CPUs, this machine has %d", errUsage, n)
		}
		service := make([]int, n-1)
		for i := range service {
			service[i] = i
		}
		if err := bench.PinProcess(service); err != nil {
			return err
		}
		opts.WriterCPUs = []int{n - 1}
		fmt.Fprintf(env.stdout, "pinned: this process (the service) to CPUs %v, the writer child to CPU %d\n", service, n-1)
	}
	if f.progress {
		opts.Progress = func(r, n int) { fmt.Fprintf(env.stderr, "\rlatency: round %d/%d done", r, n) }
	}
	stopProfiles, err := startProfiles(f.trace, f.cpuprofile)
	if err != nil {
		return err
	}
	loadBefore := loadAverage()
	res, err := bench.Latency(ctx, c, opts)
	loadAfter := loadAverage()
	if perr := stopProfiles(); err == nil {
		err = perr
	}
	if f.progress {
		fmt.Fprintln(env.stderr)
	}
	if err != nil {
		return err
	}
	w := env.stdout
	where := "this process"
	if res.Child {
		where = "a child process"
	}
	fmt.Fprintf(w, "\nframe-to-metric latency over loopback WebSocket, %d rounds; writer in %s, pace %s:\n", res.RoundsCompleted, where, res.Pace)
	fmt.Fprintf(w, "  rate: %d frames/s asked, %.0f achieved; per round %d trades + %d depth diffs, first %d frames not timed\n",
		res.Rate, res.AchievedRate, res.TradesPerRound, res.DepthPerRound, res.WarmupFrames)
	if f.busyPoll > 0 {
		fmt.Fprintf(w, "  the service's stream reads busy-poll the socket for %v before sleeping\n", f.busyPoll)
	}
	fmt.Fprintf(w, "  book in sync at the end of every round: %v\n", res.BookSynced)
	fmt.Fprintf(w, "  machine load (1-minute load average) before: %s, after: %s, on %d CPUs: the figures below are only as quiet as that\n",
		loadBefore, loadAfter, runtime.NumCPU())
	t := newTable(w)
	fmt.Fprintln(t, "  \tsamples\tmissing\tp50\tp99\tp999\tmax\tmean")
	row := func(name string, p bench.Percentiles) {
		r := func(d time.Duration) time.Duration { return d.Round(100 * time.Nanosecond) }
		fmt.Fprintf(t, "  %s\t%d\t%d\t%v\t%v\t%v\t%v\t%v\n", name, p.Samples, p.Missing, r(p.P50), r(p.P99), r(p.P999), r(p.Max), r(p.Mean))
	}
	row("frame -> Go API (service event hook)", res.API)
	row("  of which: write -> service read (wire)", res.Wire)
	row("  of which: read -> metric (service)", res.Apply)
	if f.push {
		row("frame -> HTTP push client (/v1/ws)", res.Push)
	}
	row("writer lateness (send - due), every frame", res.WriterLag)
	t.Flush()
	if f.push {
		fmt.Fprintf(w, "  push hub: %d trades skipped or dropped\n", res.PushDropped)
	}
	printRuntime(w, &res.Runtime)
	fmt.Fprintf(w, "  target: p99 < 100µs (Go API)\n")
	return nil
}

// printRuntime prints what the service's process did while the writer
// wrote: where the wire part of the latency can go inside the process.
func printRuntime(w io.Writer, rt *bench.RuntimeStats) {
	fmt.Fprintf(w, "  this process while the writer wrote (%d frames):\n", rt.Frames)
	fmt.Fprintf(w, "    Go scheduler latency (runnable -> running, every goroutine): %d waits, p50 <= %v, p99 <= %v, p999 <= %v\n",
		rt.SchedLatency.Count, rt.SchedLatency.P50, rt.SchedLatency.P99, rt.SchedLatency.P999)
	fmt.Fprintf(w, "    GC: %d cycles, %v stop-the-world in all (longest <= %v); %.2f heap allocations per frame\n",
		rt.GCCycles, rt.GCPauses.Round(time.Microsecond), rt.GCPauseMax, rt.PerFrame(float64(rt.HeapAllocs)))
	fmt.Fprintf(w, "    CPU %.1f µs per frame; threads slept (voluntary switches) %.2f and were preempted %.3f times per frame\n",
		rt.PerFrame(float64(rt.CPU.Microseconds())), rt.PerFrame(float64(rt.VolSwitches)), rt.PerFrame(float64(rt.InvolSwitches)))
	if rt.StealKnown {
		fmt.Fprintf(w, "    hypervisor steal (every CPU of the machine, 10 ms ticks): %v\n", rt.Steal)
	}
}

// loadAverage returns the 1-minute load average of the machine (Linux's
// /proc/loadavg), or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// parseCPUs reads a comma-separated list of CPU numbers; empty is none.
func parseCPUs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || c < 0 || c > 1023 {
			return nil, fmt.Errorf("%w: CPU list %q: want comma-separated numbers 0..1023", errUsage, s)
		}
		cpus = append(cpus, c)
	}
	return cpus, nil
}

// startProfiles starts a runtime/trace and a CPU profile of this process
// (each only if its file is named) and returns the function that stops
// both and closes their files.
func startProfiles(tracePath, cpuPath string) (stop func() error, err error) {
	var closers []func() error
	stop = func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	open := func(path string, start func(io.Writer) error, end func()) error {
		if path == "" {
			return nil
		}
		fh, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := start(fh); err != nil {
			_ = fh.Close()
			return fmt.Errorf("bench: %s: %w", path, err)
		}
		closers = append(closers, func() error { end(); return fh.Close() })
		return nil
	}
	if err := open(tracePath, trace.Start, trace.Stop); err != nil {
		return nil, errors.Join(err, stop())
	}
	if err := open(cpuPath, pprof.StartCPUProfile, pprof.StopCPUProfile); err != nil {
		return nil, errors.Join(err, stop())
	}
	return stop, nil
}

// childWriter is a latency frame writer in a child process (orderflow
// bench --latency-writer-child).
type childWriter struct {
	cmd    *exec.Cmd
	info   bench.WriterInfo
	report func() (*bench.WriterReport, error)
	cancel context.CancelFunc
	waited chan error
}

func (c *childWriter) Info() bench.WriterInfo { return c.info }

func (c *childWriter) Report(ctx context.Context) (*bench.WriterReport, error) {
	type res struct {
		r   *bench.WriterReport
		err error
	}
	ch := make(chan res, 1)
	go func() {
		r, err := c.report()
		ch <- res{r, err}
	}()
	select {
	case r := <-ch:
		return r.r, r.err
	case <-ctx.Done():
		c.cancel() // kills the child, which ends the read
		<-ch
		return nil, ctx.Err()
	}
}

func (c *childWriter) Close() error {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.waited:
	case <-time.After(10 * time.Second):
		c.cancel()
		<-c.waited
	}
	c.cancel()
	return nil
}

// startChild starts exe with args (then files) as a child process that
// ends with cancel, its stderr on ours; what names it in errors.
func startChild(ctx context.Context, what, exe string, args, files []string) (*exec.Cmd, io.ReadCloser, context.CancelFunc, error) {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cmd := exec.CommandContext(cctx, exe, append(append(args, "--progress=false"), files...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("bench: %s process: %w", what, err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("bench: start %s process: %w", what, err)
	}
	return cmd, out, cancel, nil
}

func startChildWriter(ctx context.Context, exe string, spec bench.WriterSpec) (*childWriter, error) {
	args := []string{"bench", "--latency-writer-child", "--rate", strconv.Itoa(spec.Rate), "--pace", string(spec.Pace)}
	if len(spec.CPUs) > 0 {
		cpus := make([]string, len(spec.CPUs))
		for i, c := range spec.CPUs {
			cpus[i] = strconv.Itoa(c)
		}
		args = append(args, "--latency-writer-cpus", strings.Join(cpus, ","))
	}
	cmd, out, cancel, err := startChild(ctx, "writer", exe, args, spec.Files)
	if err != nil {
		return nil, err
	}
	c := &childWriter{cmd: cmd, cancel: cancel, waited: make(chan error, 1)}
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, out)
		pw.CloseWithError(err)
		c.waited <- cmd.Wait()
	}()
	info, report, err := bench.ReadWriterLines(pr)
	if err != nil {
		cancel()
		_ = pr.Close()
		<-c.waited
		return nil, err
	}
	c.info, c.report = info, report
	return c, nil
}

func benchScale(ctx context.Context, env *environ, f *benchFlags, files []string) error {
	var ns []int
	for _, s := range strings.Split(f.scaleN, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 10_000 {
			return fmt.Errorf("%w: --scale-n %q: want comma-separated counts 1..10000", errUsage, f.scaleN)
		}
		ns = append(ns, n)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: scale: %w", err)
	}
	opts := bench.ScaleOptions{Files: files, Ns: ns, Measure: f.scaleTime, Search: f.scaleSearch, SyncTimeout: f.scaleSync,
		StartSim: func(ctx context.Context, spec bench.SimSpec) (bench.SimHandle, error) {
			return startChildSim(ctx, exe, spec)
		}}
	if f.progress {
		opts.Progress = func(msg string) { fmt.Fprintln(env.stderr, msg) }
	}
	steps, err := bench.Scale(ctx, opts)
	w := env.stdout
	fmt.Fprintf(w, "\nscale: the service (this process) against the simulator (a child process) fanning the recording out to N symbols\n")
	t := newTable(w)
	fmt.Fprintln(t, "symbols\tspeed\tsync\tCPU cores\tcores/symbol at 1x\tframes/s\tHeapInuse/symbol\tRSS/symbol\tlag start/end/max\treconnects\tbehind\tmax speed held")
	for _, s := range steps {
		held := "-"
		if s.MaxHeldSpeed > 0 || s.FirstBehindSpd > 0 {
			held = fmt.Sprintf("%gx", s.MaxHeldSpeed)
			if s.FirstBehindSpd > 0 {
				held += fmt.Sprintf(" (behind at %gx)", s.FirstBehindSpd)
			}
		}
		fmt.Fprintf(t, "%d\t%gx\t%v\t%.3f\t%.6f\t%.0f\t%.2f MB\t%.2f MB\t%v/%v/%v\t%d\t%v\t%s\n", s.N, s.Speed, s.SyncTime.Round(time.Second),
			s.CPUCores, s.CPUPerSymbolAtRecorded, float64(s.Frames)/s.Wall.Seconds(), s.HeapPerSymbol/1e6, s.RSSPerSymbol/1e6,
			s.LagStart.Round(time.Millisecond), s.LagEnd.Round(time.Millisecond), s.LagMax.Round(time.Millisecond), s.Reconnects, s.Behind, held)
	}
	t.Flush()
	if n := len(steps); n > 0 {
		last := steps[n-1]
		fmt.Fprintf(w, "projection: %d symbols at the recorded rate need %.3f cores (target < 1), %.2f MB heap per symbol (target < 10 MB)\n",
			last.N, last.CPUPerSymbolAtRecorded*float64(last.N), last.HeapPerSymbol/1e6)
	}
	return err
}

// childSim is a simulator running in a child process (orderflow bench
// --sim-child), so the parent's CPU time is the service's alone.
type childSim struct {
	cmd    *exec.Cmd
	info   bench.SimInfo
	cancel context.CancelFunc
	waited chan error
}

func (c *childSim) Info() bench.SimInfo { return c.info }

func (c *childSim) Close() error {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-c.waited:
		c.cancel()
		return err
	case <-time.After(10 * time.Second):
		c.cancel() // kills the child
		return <-c.waited
	}
}

func startChildSim(ctx context.Context, exe string, spec bench.SimSpec) (*childSim, error) {
	cmd, out, cancel, err := startChild(ctx, "simulator", exe, []string{"bench", "--sim-child", "--sim-fanout", strconv.Itoa(spec.Fanout),
		"--sim-speed", strconv.FormatFloat(spec.Speed, 'g', -1, 64)}, spec.Files)
	if err != nil {
		return nil, err
	}
	c := &childSim{cmd: cmd, cancel: cancel, waited: make(chan error, 1)}
	line, rerr := bufio.NewReader(out).ReadBytes('\n')
	go func() {
		_, _ = io.Copy(io.Discard, out)
		c.waited <- cmd.Wait()
	}()
	if rerr == nil {
		rerr = json.Unmarshal(line, &c.info)
	}
	if rerr != nil {
		cancel()
		<-c.waited
		return nil, fmt.Errorf("bench: simulator process: %w", rerr)
	}
	return c, nil
}

func runSimChild(ctx context.Context, env *environ, fanout int, speed float64, files []string) error {
	return bench.ServeSim(ctx, bench.SimSpec{Files: files, Fanout: fanout, Speed: speed}, env.stdout)
}
