package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/feed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// Options configure a Harness. Zero fields take the documented defaults.
type Options struct {
	// DataDir holds the recordings (testdata/binance of the repository).
	// Required.
	DataDir string
	// Speed is the replay speed: recorded time divided by Speed. Default 20:
	// fast enough for a scenario to take seconds, slow enough that the
	// simulator never drops the service as a slow consumer on two cores
	// under the race detector.
	Speed float64
	// Injections is how many times each fault is injected. Default 3.
	Injections int
	// StaleTimeout is the service's stale-feed watchdog. Default 1 s.
	StaleTimeout time.Duration
	// PingInterval is the simulator's ping interval. Default 300 ms: pongs
	// count against Binance's 5 control messages per second, so a faster
	// ping would get the service disconnected for its pongs.
	PingInterval time.Duration
	// RecoveryBound is how long one recovery may take before the injection
	// counts as not survived. Default 20 s.
	RecoveryBound time.Duration
	// Gap is the pause between a recovery and the next injection. Default
	// 300 ms.
	Gap time.Duration
	// BookLevels is how many levels a side, from the touch, are compared
	// with the simulator's book. Default 50. Within them, only the book's
	// known range (book.KnownRange: what its last snapshot covered) is
	// compared both ways; beyond it a level unchanged since that snapshot
	// is legitimately absent (BINANCE.md), so there the book's levels are
	// only checked to be the simulator's (see compareBook).
	BookLevels int
	// Logger receives the harness's progress. Default: discard.
	Logger *slog.Logger
	// ServiceLog, if set, also receives the service's own logs (warnings
	// and errors are always kept for the table's reasons).
	ServiceLog slog.Handler
}

func (o *Options) withDefaults() {
	if o.Speed == 0 {
		o.Speed = 20
	}
	if o.Injections <= 0 {
		o.Injections = 3
	}
	if o.StaleTimeout <= 0 {
		o.StaleTimeout = time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 300 * time.Millisecond
	}
	if o.RecoveryBound <= 0 {
		o.RecoveryBound = 20 * time.Second
	}
	if o.Gap <= 0 {
		o.Gap = 300 * time.Millisecond
	}
	if o.BookLevels <= 0 {
		o.BookLevels = 50
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Harness runs faults against the service and the simulator. Create it
// with New; it loads each recording once and shares it between scenarios.
type Harness struct {
	opts Options
	log  *slog.Logger
	recs *recordings
}

// recordings caches loaded recordings (immutable once loaded, so
// simulators and harnesses may share them).
type recordings struct {
	mu  sync.Mutex
	dir string
	rec [numSetups]*sim.Recording
}

// New returns a Harness.
func New(opts Options) *Harness {
	opts.withDefaults()
	return &Harness{opts: opts, log: opts.Logger, recs: &recordings{dir: opts.DataDir}}
}

// Options returns the options in force, defaults filled in.
func (h *Harness) Options() Options { return h.opts }

// setupSpec describes a Setup.
type setupSpec struct {
	files         []string
	market        market.Kind
	symbols       []string // streamed from the start
	spare         []string // in the recording, added at run time by faults
	snapshotLimit int
	historySize   int
}

var specs = [numSetups]setupSpec{
	SpotBTC: {files: []string{"hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz"}, market: market.Spot,
		symbols: []string{"BTCUSDT"}, snapshotLimit: 1000, historySize: 200_000},
	// The 8 symbols of the recording with aggTrades (SOURCES.md); the two
	// without are left out, since a stream the simulator does not serve
	// fails the whole connection, as on Binance.
	SpotMulti: {files: []string{"cryptofeed-spot-10sym-20210405.txt.gz"}, market: market.Spot,
		symbols: []string{"DENTUSDT", "ZILUSDT", "MANAUSDT", "BTCSTUSDT"},
		spare:   []string{"BTCAUD", "ETHBRL", "AXSBNB", "QTUMETH"}, snapshotLimit: 100, historySize: 20_000},
	USDMMulti: {files: []string{"cryptofeed-usdm-5sym-20210405.txt.gz"}, market: market.USDM,
		symbols: []string{"NEOUSDT", "SANDUSDT", "CTKUSDT", "BATUSDT", "CHRUSDT"}, snapshotLimit: 100, historySize: 20_000},
}

// Recording loads a setup's recording once.
func (h *Harness) Recording(s Setup) (*sim.Recording, error) {
	c := h.recs
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rec[s]; r != nil {
		return r, nil
	}
	sp := specs[s]
	paths := make([]string, len(sp.files))
	for i, f := range sp.files {
		paths[i] = filepath.Join(c.dir, f)
	}
	r, err := sim.LoadRecording(sp.market.String(), paths...)
	if err != nil {
		return nil, fmt.Errorf("chaos: load %s recording: %w", s, err)
	}
	c.rec[s] = r
	return r, nil
}

// flowConfig is the metrics configuration of the service and of the
// reference tracker: a history ring that holds a whole scenario and no age
// limit (the replay's exchange clock runs Speed times faster than ours).
func flowConfig(history int) flow.Config {
	return flow.Config{HistorySize: history, HistoryMaxAge: 10_000 * time.Hour}
}

// scenario is one simulator and one service.
type scenario struct {
	h       *Harness
	setup   Setup
	spec    setupSpec
	srv     *sim.Server
	svc     *service.Service
	t       *Target
	ref     *refClient
	logs    *logRing
	wsURL   string
	restURL string
	started bool // the simulator listens
}

// open creates the simulator (started unless closedPort) and the service
// (not started).
func (h *Harness) open(ctx context.Context, setup Setup, closedPort bool) (*scenario, error) {
	rec, err := h.Recording(setup)
	if err != nil {
		return nil, err
	}
	sp := specs[setup]
	addr := "127.0.0.1:0"
	if closedPort {
		if addr, err = freePort(ctx); err != nil {
			return nil, err
		}
	}
	srv, err := sim.New(sim.Config{Recording: rec, Speed: h.opts.Speed, Loop: true, Paused: true, Addr: addr,
		PingInterval: h.opts.PingInterval, WeightLimit: 1 << 30, Logger: h.log.With("component", "sim")})
	if err != nil {
		return nil, fmt.Errorf("chaos: simulator: %w", err)
	}
	s := &scenario{h: h, setup: setup, spec: sp, srv: srv}
	if !closedPort {
		if err := srv.Start(ctx); err != nil {
			return nil, fmt.Errorf("chaos: simulator: %w", err)
		}
		s.started = true
		addr = srv.Addr().String()
	}
	s.wsURL, s.restURL = "ws://"+addr, "http://"+addr
	dd := &dnsDialer{}
	tr := &http.Transport{DialContext: dd.DialContext, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}
	s.logs = newLogRing(h.opts.ServiceLog, 30)
	svc, err := service.New(service.Config{Symbols: sp.symbols, Market: sp.market, WSURL: s.wsURL, RESTURL: s.restURL,
		DialTimeout: 2 * time.Second, StaleTimeout: h.opts.StaleTimeout, StopTimeout: 5 * time.Second,
		SnapshotLimit: sp.snapshotLimit, LogTrades: -1, Flow: flowConfig(sp.historySize),
		HTTPClient: &http.Client{Transport: tr}, Logger: slog.New(s.logs),
		// A limiter per scenario: each stands for one machine's IP, and
		// scenarios must not throttle each other.
		DialLimiter: feed.NewDialLimiter(300, 5*time.Minute)})
	if err != nil {
		s.closeSim()
		return nil, fmt.Errorf("chaos: service: %w", err)
	}
	s.svc = svc
	s.t = &Target{Sim: srv, Service: svc, Symbols: slices.Clone(sp.symbols), dns: dd, transport: tr,
		late: map[string]int64{}, spare: slices.Clone(sp.spare)}
	s.ref = newRefClient(s.restURL, sp.market)
	s.t.ref = s.ref
	return s, nil
}

// freePort returns a loopback address nobody listens on (it listened a
// moment ago, so the simulator can take it later).
func freePort(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("chaos: reserve a port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("chaos: reserve a port: %w", err)
	}
	return addr, nil
}

func (s *scenario) closeSim() error {
	if err := s.srv.Close(); err != nil {
		return fmt.Errorf("chaos: simulator close: %w", err)
	}
	return nil
}

// close stops the service, then the simulator, and releases every
// connection the scenario opened.
func (s *scenario) close() error {
	s.t.finish()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if err := s.svc.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("chaos: service stop: %w", err))
	}
	if err := s.closeSim(); err != nil {
		errs = append(errs, err)
	}
	s.t.transport.CloseIdleConnections()
	s.ref.close()
	return errors.Join(errs...)
}

// probe is what the harness watches to judge an injection.
type probe struct {
	reconnects, resyncs uint64
	decodeErrors        int64
	unknown             int64
	duplicates          int64
	selfMissing         int64 // ids the service itself counts as lost (Backfill.Missing)
	lastSum             int64 // sum of every symbol's last trade id
	ready               bool
	connected           bool // every stream connected
	simFault            int64
	status              service.Status
}

func (s *scenario) probe(simKey string) probe {
	st := s.svc.Status()
	p := probe{ready: st.Ready(), status: st, connected: len(st.Streams) > 0,
		decodeErrors: st.Engine.DecodeErrors, unknown: st.Engine.Unknown, duplicates: st.Backfill.Duplicates,
		selfMissing: st.Backfill.Missing}
	for _, c := range st.Streams {
		p.reconnects += c.Reconnects + c.Rotations
		if c.State != feed.StateConnected.String() {
			p.connected = false
		}
	}
	for _, sy := range st.Symbols {
		p.resyncs += sy.Resyncs
		p.lastSum += sy.LastTrade
	}
	if simKey != "" && s.started {
		p.simFault = s.srv.Stats().Faults[simKey]
	}
	return p
}

// seen reports whether the fault's effect shows between pre and cur.
func seen(f *Fault, pre, cur *probe) bool {
	if f.SimKey != "" && cur.simFault <= pre.simFault {
		return false
	}
	switch f.Effect {
	case EffectReconnect:
		return cur.reconnects > pre.reconnects
	case EffectResync:
		return cur.resyncs > pre.resyncs
	case EffectDecodeError:
		return cur.decodeErrors > pre.decodeErrors
	case EffectUnknown:
		return cur.unknown > pre.unknown
	case EffectDuplicate:
		return cur.duplicates > pre.duplicates
	}
	return true
}

// statusLine summarizes a status for failure reasons.
func statusLine(st service.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state=%s", st.State)
	for _, c := range st.Streams {
		fmt.Fprintf(&b, " stream[%s reconnects=%d stale=%d]", c.State, c.Reconnects, c.Stale)
	}
	n := 0
	for _, sy := range st.Symbols {
		if !sy.BookSynced {
			if n < 3 {
				fmt.Fprintf(&b, " %s:book=%s", sy.Symbol, sy.BookState)
			}
			n++
		}
	}
	if n > 3 {
		fmt.Fprintf(&b, " (+%d books unsynced)", n-3)
	}
	fmt.Fprintf(&b, " backfill=%+v", st.Backfill)
	return b.String()
}

// waitFor polls cond every 10 ms until it holds, ctx ends or bound passes.
func waitFor(ctx context.Context, bound time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(bound)
	for {
		if cond() {
			return true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// warmUp starts the service, lets it connect to the paused replay, plays,
// and waits until it is ready with trades flowing.
func (s *scenario) warmUp(ctx context.Context) error {
	if err := s.svc.Start(ctx); err != nil {
		return fmt.Errorf("chaos: service start: %w", err)
	}
	var p probe
	if !waitFor(ctx, 10*time.Second, func() bool { p = s.probe(""); return p.connected }) {
		return fmt.Errorf("chaos: streams not connected within 10 s: %s", statusLine(p.status))
	}
	s.srv.Play()
	if !waitFor(ctx, s.h.opts.RecoveryBound, func() bool { p = s.probe(""); return p.ready && p.lastSum > 0 }) {
		return fmt.Errorf("chaos: not ready with trades within %v after start: %s", s.h.opts.RecoveryBound, statusLine(p.status))
	}
	return nil
}

// inject injects f once and waits for the service to recover. It returns
// the recovery time, or an error saying what did not happen, and how many
// ids the service itself counted as lost meanwhile (Backfill.Missing).
func (s *scenario) inject(ctx context.Context, f *Fault) (time.Duration, int64, error) {
	pre := s.probe(f.SimKey)
	d, err := s.injectOnce(ctx, f, pre)
	return d, s.probe("").selfMissing - pre.selfMissing, err
}

func (s *scenario) injectOnce(ctx context.Context, f *Fault, pre probe) (time.Duration, error) {
	if err := f.Inject(ctx, s.t); err != nil {
		return 0, fmt.Errorf("inject: %w", err)
	}
	t0 := time.Now()
	var at *probe
	var cur probe
	ok := waitFor(ctx, s.h.opts.RecoveryBound, func() bool {
		cur = s.probe(f.SimKey)
		if at == nil && seen(f, &pre, &cur) {
			c := cur
			at = &c
		}
		return at != nil && cur.ready && cur.lastSum > at.lastSum
	})
	if ok {
		return time.Since(t0), nil
	}
	if at == nil {
		return 0, fmt.Errorf("no %s seen within %v (simulator count %s %d -> %d): %s",
			f.Effect, s.h.opts.RecoveryBound, f.SimKey, pre.simFault, cur.simFault, statusLine(cur.status))
	}
	return 0, fmt.Errorf("not ready with trades flowing within %v: %s", s.h.opts.RecoveryBound, statusLine(cur.status))
}

// coldStart is the ClosedPort injection: the service starts against a
// port nobody listens on, the simulator starts there a second later. The
// recovery time runs from the simulator's start to every stream connected;
// then the replay plays and the service must get ready with trades.
func (s *scenario) coldStart(ctx context.Context) (time.Duration, error) {
	if err := s.svc.Start(ctx); err != nil {
		return 0, fmt.Errorf("service start: %w", err)
	}
	if err := sleepCtx(ctx, time.Second); err != nil {
		return 0, err
	}
	if n := s.logs.count("Binance stream dial failed"); n == 0 {
		return 0, errors.New("no failed dial logged while the port was closed")
	}
	if err := s.srv.Start(ctx); err != nil {
		return 0, fmt.Errorf("simulator start on the reserved port: %w", err)
	}
	s.started = true
	t0 := time.Now()
	var p probe
	if !waitFor(ctx, s.h.opts.RecoveryBound, func() bool { p = s.probe(""); return p.connected }) {
		return 0, fmt.Errorf("streams not connected within %v of the simulator's start: %s", s.h.opts.RecoveryBound, statusLine(p.status))
	}
	d := time.Since(t0)
	s.srv.Play()
	if !waitFor(ctx, s.h.opts.RecoveryBound, func() bool { p = s.probe(""); return p.ready && p.lastSum > 0 }) {
		return 0, fmt.Errorf("not ready with trades within %v: %s", s.h.opts.RecoveryBound, statusLine(p.status))
	}
	return d, nil
}

// settleGoroutines waits for the goroutine count to fall back to g0 and
// reports how many are left, naming them with goleak.
func settleGoroutines(g0 int, ignore goleak.Option, bound time.Duration) (int, string) {
	deadline := time.Now().Add(bound)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	n := runtime.NumGoroutine() - g0
	if n <= 0 {
		return 0, ""
	}
	detail := "goleak found none by stack"
	if err := goleak.Find(ignore); err != nil {
		detail = err.Error()
		if len(detail) > 2000 {
			detail = detail[:2000] + "..."
		}
	}
	return n, detail
}

// Run runs one fault: a fresh simulator and service, Options.Injections
// injections (one for a ClosedPort fault), then the replay is paused and
// the service's trades, totals and books are compared with the simulator's.
func (h *Harness) Run(ctx context.Context, f Fault) Row {
	row := Row{Fault: f.Name, Setup: f.Setup.String(), What: f.What, Note: f.Note}
	start := time.Now()
	g0 := runtime.NumGoroutine()
	ignore := goleak.IgnoreCurrent()
	h.log.Info("fault starting", "fault", f.Name, "setup", f.Setup.String())
	s, err := h.open(ctx, f.Setup, f.ClosedPort)
	if err != nil {
		row.fail(err.Error())
	} else {
		h.scenario(ctx, s, &f, &row)
		if err := s.close(); err != nil {
			row.fail(err.Error())
		}
		if !row.Failed && s.logs != nil {
			row.Logs = nil
		}
	}
	n, detail := settleGoroutines(g0, ignore, 5*time.Second)
	row.Leaked = n
	if n > 0 {
		row.fail(fmt.Sprintf("%d goroutine(s) still running after stop: %s", n, detail))
	}
	row.Elapsed = time.Since(start)
	h.log.Info("fault done", "fault", f.Name, "failed", row.Failed, "elapsed", row.Elapsed.Round(time.Millisecond))
	return row
}

func (h *Harness) scenario(ctx context.Context, s *scenario, f *Fault, row *Row) {
	defer func() {
		if row.Failed {
			row.Logs = s.logs.last(8)
		}
	}()
	if f.ClosedPort {
		row.Injected = 1
		d, err := s.coldStart(ctx)
		if err != nil {
			row.fail("cold start: " + err.Error())
			return
		}
		row.Survived, row.Recovery = 1, []time.Duration{d}
	} else {
		if err := s.warmUp(ctx); err != nil {
			row.fail(err.Error())
			return
		}
		for i := range h.opts.Injections {
			if ctx.Err() != nil {
				row.fail(ctx.Err().Error())
				return
			}
			row.Injected++
			d, _, err := s.inject(ctx, f)
			if err != nil {
				row.fail(fmt.Sprintf("injection %d: %v", i+1, err))
				break // the service is not in a state worth injecting into
			}
			row.Survived++
			row.Recovery = append(row.Recovery, d)
			if err := sleepCtx(ctx, h.opts.Gap); err != nil {
				row.fail(err.Error())
				return
			}
		}
	}
	v, err := s.verify(ctx)
	if err != nil {
		row.fail(err.Error())
		return
	}
	row.Missing, row.Duplicates, row.Mismatches = v.missing, v.duplicates, v.mismatches
	for _, r := range v.reasons {
		row.fail(r)
	}
	row.SimStats = simSummary(s.srv.Stats())
}

// simSummary notes what the simulator did beyond the injected faults
// (connections it dropped as too slow would be extra faults).
func simSummary(st sim.Stats) string {
	var parts []string
	if n := st.ServerClosed["slow-consumer"]; n > 0 {
		parts = append(parts, fmt.Sprintf("slow-consumer drops=%d", n))
	}
	if n := st.ServerClosed["control-rate"]; n > 0 {
		parts = append(parts, fmt.Sprintf("control-rate drops=%d", n))
	}
	if n := st.ServerClosed["pong-timeout"]; n > 0 {
		parts = append(parts, fmt.Sprintf("pong-timeout drops=%d", n))
	}
	return strings.Join(parts, " ")
}
