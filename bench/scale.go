package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// SimSpec describes the simulator a scale step needs.
type SimSpec struct {
	Files  []string
	Fanout int
	Speed  float64
}

// SimInfo is what a started simulator tells: where it listens, the symbols
// it serves and where its replay clock can be read.
type SimInfo struct {
	WS       string   `json:"ws"`
	REST     string   `json:"rest"`
	ClockURL string   `json:"clock"`
	Market   string   `json:"market"`
	Symbols  []string `json:"symbols"`
}

// SimHandle is a running simulator.
type SimHandle interface {
	Info() SimInfo
	Close() error
}

// SimStarter starts a simulator. The scale measurement wants it in another
// process (so this process's CPU time is the service's alone);
// InProcessSim is the in-process variant for tests.
type SimStarter func(ctx context.Context, spec SimSpec) (SimHandle, error)

// newSim builds the simulator of a spec: looping (the measurement may
// outlast one round), with Binance's REST weight budget (6,000 a minute on
// spot), so a service that spent more would be answered 429 and be slower
// to sync, as against Binance, and its per-connection limits (1,024
// streams, 5 messages a second, the slow-consumer drop).
func newSim(spec SimSpec) (*sim.Server, error) {
	return sim.New(sim.Config{Files: spec.Files, Speed: spec.Speed, Loop: true, Fanout: max(spec.Fanout, 1),
		Logger: slog.New(slog.DiscardHandler)})
}

// clockServer serves a simulator's replay clock as Unix ms on /clock.
func clockServer(srv *sim.Server) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, strconv.FormatInt(srv.Now().UnixMilli(), 10))
	})}
	return hs, ln, nil
}

type inProcSim struct {
	srv  *sim.Server
	hs   *http.Server
	info SimInfo
	done chan struct{}
}

func (s *inProcSim) Info() SimInfo { return s.info }

func (s *inProcSim) Close() error {
	_ = s.hs.Close()
	<-s.done
	return s.srv.Close()
}

func startSim(ctx context.Context, spec SimSpec) (*inProcSim, error) {
	srv, err := newSim(spec)
	if err != nil {
		return nil, fmt.Errorf("bench: sim: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("bench: sim: %w", err)
	}
	hs, ln, err := clockServer(srv)
	if err != nil {
		_ = srv.Close()
		return nil, err
	}
	s := &inProcSim{srv: srv, hs: hs, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = hs.Serve(ln)
	}()
	ws, rest := srv.URL()
	s.info = SimInfo{WS: ws, REST: rest, ClockURL: "http://" + ln.Addr().String() + "/clock", Market: srv.Market().String(),
		Symbols: srv.Symbols()}
	return s, nil
}

// InProcessSim starts the simulator in this process.
func InProcessSim(ctx context.Context, spec SimSpec) (SimHandle, error) { return startSim(ctx, spec) }

// ServeSim runs a simulator until ctx ends, writing its SimInfo as one
// JSON line to w first: the child side of a SimStarter that runs the
// simulator in another process.
func ServeSim(ctx context.Context, spec SimSpec, w io.Writer) error {
	s, err := startSim(ctx, spec)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(w).Encode(s.info); err != nil {
		_ = s.Close()
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// ScaleOptions configures Scale.
type ScaleOptions struct {
	Files []string
	// Ns are the symbol counts (default 1, 10, 100, 1000).
	Ns []int
	// Speed gives the replay speed for n symbols (default DefaultScaleSpeed).
	Speed func(n int) float64
	// Measure is the measured time per step, after every book is synced
	// (default 15 s).
	Measure time.Duration
	// SyncTimeout bounds the wait for every book to sync (default 3 min).
	SyncTimeout time.Duration
	// SnapshotLimit is the service's REST depth snapshot size (default
	// 100: weight 5, so 1,000 symbols sync within Binance's 6,000 weight
	// per minute; 1000 levels would take over 8 minutes to sync).
	SnapshotLimit int
	// Search, when set, also looks for the highest speed each n holds:
	// the speed doubles from Speed(n) until the service falls behind, with
	// at most SearchSteps steps of SearchMeasure each.
	Search        bool
	SearchSteps   int
	SearchMeasure time.Duration
	// StartSim starts the simulator (default InProcessSim).
	StartSim SimStarter
	// Progress, if set, receives one line per phase.
	Progress func(msg string)
}

// DefaultScaleSpeed keeps the total event rate within reach of two cores
// while each step still runs long enough to measure: 50x for one symbol
// down to the recorded pace for 1,000.
func DefaultScaleSpeed(n int) float64 {
	switch {
	case n <= 1:
		return 50
	case n <= 10:
		return 20
	case n <= 100:
		return 5
	}
	return 1
}

// ScaleStep is one measured symbol count.
type ScaleStep struct {
	N     int
	Speed float64
	// Synced is how many books were in sync when the measurement began;
	// SyncTime how long it took to get there.
	Synced   int
	SyncTime time.Duration
	// CPU is the process CPU time over Wall; CPUCores = CPU/Wall.
	Wall, CPU time.Duration
	CPUCores  float64
	// CPUPerSymbolAtRecorded is the cores one symbol needs at the
	// recorded rate: CPUCores / (N * Speed).
	CPUPerSymbolAtRecorded float64
	// Frames and Trades are the service's counts over the window.
	Frames, Trades int64
	// HeapInuse and RSS are the peaks over the window, less the process's
	// before the service started; per symbol divided by N.
	HeapInuse, RSS               uint64
	HeapPerSymbol, RSSPerSymbol  float64
	LagStart, LagEnd, LagMax     time.Duration // sim clock minus the slowest symbol's last trade time
	Reconnects                   uint64
	Behind                       bool
	MaxHeldSpeed, FirstBehindSpd float64 // from the search; 0 when not searched
}

// Scale measures the service against the simulator for each symbol count.
func Scale(ctx context.Context, opts ScaleOptions) ([]ScaleStep, error) {
	if len(opts.Ns) == 0 {
		opts.Ns = []int{1, 10, 100, 1000}
	}
	if opts.Speed == nil {
		opts.Speed = DefaultScaleSpeed
	}
	if opts.Measure <= 0 {
		opts.Measure = 15 * time.Second
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = 3 * time.Minute
	}
	if opts.SnapshotLimit <= 0 {
		opts.SnapshotLimit = 100
	}
	if opts.StartSim == nil {
		opts.StartSim = InProcessSim
	}
	if opts.SearchSteps <= 0 {
		opts.SearchSteps = 6
	}
	if opts.SearchMeasure <= 0 {
		opts.SearchMeasure = 5 * time.Second
	}
	say := func(format string, a ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(format, a...))
		}
	}
	var steps []ScaleStep
	for _, n := range opts.Ns {
		sp := opts.Speed(n)
		say("scale: %d symbols at %gx: starting", n, sp)
		st, err := scaleStep(ctx, opts, n, sp, opts.Measure, say)
		if err != nil {
			return steps, fmt.Errorf("bench: scale %d symbols: %w", n, err)
		}
		if opts.Search {
			held := 0.0
			if !st.Behind {
				held = sp
			}
			for i, s := 0, sp*2; i < opts.SearchSteps && !st.Behind; i, s = i+1, s*2 {
				say("scale: %d symbols: trying %gx", n, s)
				t, err := scaleStep(ctx, opts, n, s, opts.SearchMeasure, say)
				if err != nil {
					return steps, fmt.Errorf("bench: scale %d symbols at %gx: %w", n, s, err)
				}
				if t.Behind {
					st.FirstBehindSpd = s
					break
				}
				held = s
			}
			st.MaxHeldSpeed = held
		}
		steps = append(steps, *st)
	}
	return steps, nil
}

func scaleStep(ctx context.Context, opts ScaleOptions, n int, speed float64, measure time.Duration, say func(string, ...any)) (*ScaleStep, error) {
	runtime.GC()
	heap0, rss0 := memNow()
	h, err := opts.StartSim(ctx, SimSpec{Files: opts.Files, Fanout: n, Speed: speed})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	info := h.Info()
	kind, err := market.ParseKind(info.Market)
	if err != nil {
		return nil, err
	}
	syms := info.Symbols
	if len(syms) == 0 {
		return nil, errors.New("simulator serves no symbol")
	}
	svc, err := service.New(service.Config{Symbols: syms, Market: kind, WSURL: info.WS, RESTURL: info.REST,
		TradeChannel: binance.ChannelAggTrade, DepthChannel: binance.ChannelDepth100ms, Backfill: -1,
		SnapshotLimit: opts.SnapshotLimit, LogTrades: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = svc.Stop(sctx)
	}()
	st := &ScaleStep{N: len(syms), Speed: speed}
	// Wait for every book; the measured window starts synced.
	for {
		s := svc.Status()
		st.Synced = 0
		for _, ss := range s.Symbols {
			if ss.BookSynced {
				st.Synced++
			}
		}
		if st.Synced == len(syms) {
			break
		}
		if time.Since(start) > opts.SyncTimeout {
			states := map[string]int{}
			for _, ss := range s.Symbols {
				states[ss.BookState]++
			}
			var rec, frames uint64
			for _, c := range s.Streams {
				rec += c.Reconnects
				frames += c.Frames
			}
			return nil, fmt.Errorf("only %d of %d books synced after %v (book states %v; %d frames, %d reconnects, %d snapshots applied)",
				st.Synced, len(syms), opts.SyncTimeout, states, frames, rec, s.Engine.Snapshots)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	st.SyncTime = time.Since(start)
	say("scale: %d symbols at %gx: %d books synced in %v, measuring %v", len(syms), speed, st.Synced, st.SyncTime.Round(time.Millisecond), measure)

	client := &http.Client{Timeout: 2 * time.Second}
	lag := func() (time.Duration, error) {
		now, err := readClock(client, info.ClockURL)
		if err != nil {
			return 0, err
		}
		slowest := int64(-1)
		for _, ss := range svc.Status().Symbols {
			if slowest < 0 || ss.LastTime < slowest {
				slowest = ss.LastTime
			}
		}
		return time.Duration(now-slowest) * time.Millisecond, nil
	}
	status0 := svc.Status()
	if st.LagStart, err = lag(); err != nil {
		return nil, err
	}
	cpu0, t0 := CPUTime(), time.Now()
	var heapMax, rssMax uint64
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for time.Since(t0) < measure {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		hp, rs := memNow()
		heapMax, rssMax = max(heapMax, hp), max(rssMax, rs)
		if l, err := lag(); err == nil {
			st.LagMax = max(st.LagMax, l)
		}
	}
	st.CPU, st.Wall = CPUTime()-cpu0, time.Since(t0)
	if st.LagEnd, err = lag(); err != nil {
		return nil, err
	}
	st.LagMax = max(st.LagMax, st.LagEnd)
	status1 := svc.Status()
	st.Frames = int64(status1.Engine.Frames - status0.Engine.Frames)
	st.Trades = status1.Engine.Trades - status0.Engine.Trades
	for _, s := range status1.Streams {
		st.Reconnects += s.Reconnects
	}
	st.CPUCores = st.CPU.Seconds() / st.Wall.Seconds()
	st.CPUPerSymbolAtRecorded = st.CPUCores / (float64(st.N) * speed)
	st.HeapInuse, st.RSS = sub0(heapMax, heap0), sub0(rssMax, rss0)
	st.HeapPerSymbol, st.RSSPerSymbol = float64(st.HeapInuse)/float64(st.N), float64(st.RSS)/float64(st.N)
	// Behind: the slowest symbol's trades trail the simulator's clock by
	// more than a quiet spell of the recording explains (5 s of exchange
	// time, or half a second of wall time at high speed), or a connection
	// was dropped (the simulator drops clients that do not keep up).
	limit := max(5*time.Second, time.Duration(float64(500*time.Millisecond)*speed))
	st.Behind = st.LagEnd > limit || st.Reconnects > 0
	return st, nil
}

func sub0(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func readClock(c *http.Client, url string) (int64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// memNow returns HeapInuse and the resident set size (from
// /proc/self/statm; 0 where it does not exist).
func memNow() (heap, rss uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, err := os.ReadFile("/proc/self/statm")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) >= 2 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				rss = pages * uint64(os.Getpagesize())
			}
		}
	}
	return ms.HeapInuse, rss
}
