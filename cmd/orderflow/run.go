package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/dashboard"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

func init() {
	register(command{name: "run", summary: "stream symbols from Binance and serve the order-flow API", run: runRun})
}

// serviceFlags are the flags of the commands that run the service.
type serviceFlags struct {
	symbols       string
	market        string
	wsURL         string
	restURL       string
	tradeStream   string
	depthStream   string
	dialTimeout   time.Duration
	busyPoll      time.Duration
	stopTimeout   time.Duration
	staleTimeout  time.Duration
	snapshotLimit int
	auditInterval time.Duration
	bookTicker    bool
	bookMetrics   bool
	backfill      int
	barLateness   time.Duration
	logTrades     int
	listen        string
	token         string
	dataDir       string
	captureDir    string
	captureFileMB int64
	captureAge    time.Duration
	thresholds    thresholdFlags
	historyDepth  int
}

func defaultDataDir() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".orderflow")
	}
	return ".orderflow"
}

func (f *serviceFlags) register(fs *flag.FlagSet, withEndpoints bool) {
	fs.StringVar(&f.symbols, "symbols", "BTCUSDT", "comma-separated symbols, e.g. BTCUSDT,ETHUSDT")
	fs.StringVar(&f.market, "market", "spot", "market: spot or usdm")
	if withEndpoints {
		fs.StringVar(&f.wsURL, "ws-url", "", "WebSocket base URL (default: Binance's live endpoint for the market)")
		fs.StringVar(&f.restURL, "rest-url", "", "REST base URL (default: Binance's live endpoint for the market)")
	}
	fs.StringVar(&f.tradeStream, "trade-stream", binance.ChannelAggTrade, "trade stream: aggTrade or trade")
	fs.StringVar(&f.depthStream, "depth-stream", binance.ChannelDepth100ms, "diff-depth stream: depth@100ms or depth")
	fs.DurationVar(&f.dialTimeout, "dial-timeout", 10*time.Second, "WebSocket dial timeout")
	fs.DurationVar(&f.busyPoll, "busy-poll", 0, "stream reads spin on the socket this long (e.g. 100us) before sleeping: lower, steadier latency for a busy CPU; for a service with a core of its own (Linux; 0: off)")
	fs.DurationVar(&f.stopTimeout, "stop-timeout", 5*time.Second, "how long a graceful stop waits for every task")
	fs.DurationVar(&f.staleTimeout, "stale-timeout", 0, "reconnect when no frame arrives for this long (default 60s)")
	fs.IntVar(&f.snapshotLimit, "snapshot-limit", 1000, "depth snapshot levels (spot up to 5000, usdm up to 1000)")
	fs.BoolVar(&f.bookMetrics, "book-metrics", true, "compute book metrics and signals: walls, liquidity added/pulled, band imbalance, absorption")
	fs.BoolVar(&f.bookTicker, "book-ticker", false, "also stream bookTicker and check the book against it at every equal update id")
	fs.DurationVar(&f.auditInterval, "audit-interval", 0, "compare each book with a fresh REST snapshot this often (0: off; costs request weight)")
	fs.IntVar(&f.backfill, "backfill", 1000, "recent aggregate trades to fetch at start (warm start), 0 disables")
	fs.DurationVar(&f.barLateness, "bar-lateness", service.DefaultBarLateness, "close a bar once the symbol's exchange time (any stream) is this far past its end, without waiting for the next trade; a later trade amends the bar (sent again as revised); 0 closes bars only at the next bar's first trade")
	fs.IntVar(&f.logTrades, "log-trades", 10, "trades per symbol logged at info before switching to debug")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "HTTP API address (loopback by default; other addresses need --token)")
	fs.StringVar(&f.token, "token", "", "bearer token required by the HTTP API (required off loopback)")
	fs.StringVar(&f.dataDir, "data-dir", defaultDataDir(), "data directory, locked by one instance at a time")
	fs.StringVar(&f.captureDir, "capture", "", "write every frame received and every REST snapshot and trade backfill used to capture files in this directory (one set per run, replayable with orderflow replay); off by default")
	fs.Int64Var(&f.captureFileMB, "capture-file-mb", service.DefaultCaptureFileBytes>>20, "start the next capture file at this size, MiB")
	fs.DurationVar(&f.captureAge, "capture-file-age", service.DefaultCaptureFileAge, "start the next capture file after this long")
	fs.IntVar(&f.historyDepth, "book-history-depth", service.DefaultBookHistoryDepth, fmt.Sprintf("levels per side kept by each symbol's book history (GET .../book/history, the dashboard's heatmap), 1..%d; about 19 KB per level per symbol (4.8 MB at 250)", service.MaxBookHistoryDepth))
	f.thresholds.register(fs)
}

// config checks the flags and builds the service configuration: every
// mistake is reported before anything starts.
func (f *serviceFlags) config(log *slog.Logger) (service.Config, error) {
	kind, err := market.ParseKind(f.market)
	if err != nil {
		return service.Config{}, fmt.Errorf("%w: --market: %v", errUsage, err)
	}
	var syms []string
	for _, s := range strings.Split(f.symbols, ",") {
		if s = strings.ToUpper(strings.TrimSpace(s)); s != "" {
			if err := service.ValidSymbol(s); err != nil {
				return service.Config{}, fmt.Errorf("%w: --symbols: %v", errUsage, err)
			}
			syms = append(syms, s)
		}
	}
	if len(syms) == 0 {
		return service.Config{}, fmt.Errorf("%w: --symbols: no symbol given", errUsage)
	}
	for _, u := range []struct{ name, v string }{{"--ws-url", f.wsURL}, {"--rest-url", f.restURL}} {
		if u.v != "" && !strings.Contains(u.v, "://") {
			return service.Config{}, fmt.Errorf("%w: %s %q: want a URL such as ws://127.0.0.1:9443", errUsage, u.name, u.v)
		}
	}
	if f.backfill < 0 || f.backfill > 1000 {
		return service.Config{}, fmt.Errorf("%w: --backfill %d: want 0..1000", errUsage, f.backfill)
	}
	if f.barLateness < 0 || f.barLateness > time.Hour || f.barLateness%time.Millisecond != 0 {
		return service.Config{}, fmt.Errorf("%w: --bar-lateness %v: want 0 (off) up to 1h, whole milliseconds", errUsage, f.barLateness)
	}
	if f.busyPoll < 0 || f.busyPoll > time.Second {
		return service.Config{}, fmt.Errorf("%w: --busy-poll %v: want 0..1s", errUsage, f.busyPoll)
	}
	if f.dialTimeout <= 0 {
		return service.Config{}, fmt.Errorf("%w: --dial-timeout %v: must be positive", errUsage, f.dialTimeout)
	}
	if f.stopTimeout <= 0 {
		return service.Config{}, fmt.Errorf("%w: --stop-timeout %v: must be positive", errUsage, f.stopTimeout)
	}
	if f.staleTimeout < 0 {
		return service.Config{}, fmt.Errorf("%w: --stale-timeout %v: must not be negative", errUsage, f.staleTimeout)
	}
	if f.auditInterval < 0 || (f.auditInterval > 0 && f.auditInterval < time.Second) {
		return service.Config{}, fmt.Errorf("%w: --audit-interval %v: want 0 (off) or at least 1s", errUsage, f.auditInterval)
	}
	if f.snapshotLimit < 1 || f.snapshotLimit > 5000 || kind == market.USDM && binance.ValidDepthLimit(kind, f.snapshotLimit) != f.snapshotLimit {
		return service.Config{}, fmt.Errorf("%w: --snapshot-limit %d: want 1..5000 on spot, one of 5, 10, 20, 50, 100, 500, 1000 on usdm", errUsage, f.snapshotLimit)
	}
	if f.tradeStream != binance.ChannelAggTrade && f.tradeStream != binance.ChannelTrade {
		return service.Config{}, fmt.Errorf("%w: --trade-stream %q: want aggTrade or trade", errUsage, f.tradeStream)
	}
	if err := checkListen(f.listen, f.token); err != nil {
		return service.Config{}, err
	}
	if f.captureFileMB < 1 || f.captureFileMB > 1<<20 {
		return service.Config{}, fmt.Errorf("%w: --capture-file-mb %d: want 1..1048576", errUsage, f.captureFileMB)
	}
	if f.captureAge < time.Second {
		return service.Config{}, fmt.Errorf("%w: --capture-file-age %v: want at least 1s", errUsage, f.captureAge)
	}
	fc, dc, err := f.thresholds.config()
	if err != nil {
		return service.Config{}, err
	}
	var depth *depthflow.Config
	if f.bookMetrics {
		depth = &dc
	} else if len(f.thresholds.wallPerSymbol) > 0 {
		return service.Config{}, fmt.Errorf("%w: --wall-min-notional: per-symbol floors need --book-metrics", errUsage)
	}
	if f.historyDepth < 1 || f.historyDepth > service.MaxBookHistoryDepth {
		return service.Config{}, fmt.Errorf("%w: --book-history-depth %d: want 1..%d levels", errUsage, f.historyDepth, service.MaxBookHistoryDepth)
	}
	backfill := f.backfill
	if backfill == 0 {
		backfill = -1
	}
	lateness := f.barLateness
	if lateness == 0 {
		lateness = -1
	}
	logTrades := f.logTrades
	if logTrades == 0 {
		logTrades = -1
	}
	return service.Config{Symbols: syms, Market: kind, WSURL: f.wsURL, RESTURL: f.restURL, TradeChannel: f.tradeStream,
		DepthChannel: f.depthStream, DialTimeout: f.dialTimeout, BusyPoll: f.busyPoll, StopTimeout: f.stopTimeout, StaleTimeout: f.staleTimeout,
		SnapshotLimit: f.snapshotLimit, AuditInterval: f.auditInterval, BookTicker: f.bookTicker, DepthFlow: depth, WallMinNotional: f.thresholds.wallPerSymbol, BookHistoryDepth: f.historyDepth, Flow: fc, BarLateness: lateness, Backfill: backfill, LogTrades: logTrades, DataDir: f.dataDir, Logger: log,
		Capture: service.CaptureConfig{Dir: f.captureDir, MaxFileBytes: f.captureFileMB << 20, MaxFileAge: f.captureAge}}, nil
}

// checkListen refuses a non-loopback listener without a token.
func checkListen(addr, token string) error {
	if addr == "" || addr == "off" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: --listen %q: %v", errUsage, addr, err)
	}
	if isLoopback(host) || token != "" {
		return nil
	}
	return fmt.Errorf("%w: --listen %q is not a loopback address: set --token (or ORDERFLOW_TOKEN) so the API is not open to the network", errUsage, addr)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runRun(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "run", "[--symbols BTCUSDT,ETHUSDT] [--market spot|usdm] [--ws-url URL --rest-url URL] [--listen ADDR] [--data-dir DIR] [--capture DIR] [--bus embedded|nats://...] [--source binance|bus]")
	var sf serviceFlags
	sf.register(fs, true)
	var bf busFlags
	bf.register(fs)
	var srcf sourceFlags
	srcf.register(fs)
	var shf shardFlags
	shf.register(fs)
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	log, err := lf.logger(env.stderr)
	if err != nil {
		return err
	}
	cfg, err := sf.config(log)
	if err != nil {
		return err
	}
	if err := bf.check(); err != nil {
		return err
	}
	if err := srcf.check(&bf); err != nil {
		return err
	}
	if err := shf.check(bf.url); err != nil {
		return err
	}
	if srcf.source == "bus" {
		if shf.on {
			return fmt.Errorf("%w: --shard is for feed instances, not --source bus", errUsage)
		}
		return runFromBus(ctx, log, &sf, &bf, &srcf, cfg)
	}
	var shared []string
	if shf.on {
		shared = shardConfig(&cfg)
	}
	svc, err := service.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if bf.url == "" {
		return serve(ctx, log, svc, sf.listen, sf.token, nil)
	}
	b, err := startBus(ctx, log, &bf, sf.dataDir, cfg.Market, svc)
	if err != nil {
		return err
	}
	var leave func() error
	if shf.on {
		if leave, err = startShard(ctx, log, shf, svc, b, shared); err != nil {
			return errors.Join(err, b.close())
		}
	}
	// serve returns once the service has stopped: the publisher then
	// drains what is queued before the connection (and an embedded
	// server) close. A shard member leaves (releases its leases) at the
	// same signal.
	err = serve(ctx, log, svc, sf.listen, sf.token, nil, b.pub)
	if leave != nil {
		err = errors.Join(err, leave())
	}
	return errors.Join(err, b.close())
}

// serve starts svc and its HTTP API, waits for ctx, then stops both
// within the service's stop budget.
// collectors are added to the API's /metrics.
func serve(ctx context.Context, log *slog.Logger, svc *service.Service, listen, token string, ready func(apiURL string), collectors ...prometheus.Collector) error {
	if err := svc.Start(ctx); err != nil {
		return err
	}
	var hs *http.Server
	errc := make(chan error, 1)
	if listen != "" && listen != "off" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), svc.Config().StopTimeout)
			defer cancel()
			return errors.Join(fmt.Errorf("listen %s: %w", listen, err), svc.Stop(stopCtx))
		}
		apiSrv := api.New(svc, api.Options{Token: token, Logger: log, Collectors: collectors})
		hs = &http.Server{Handler: dashboard.Mount(apiSrv), ReadHeaderTimeout: 10 * time.Second, // the dashboard at "/"
			MaxHeaderBytes: 64 << 10}
		hs.RegisterOnShutdown(apiSrv.Close) // ends push streams so Shutdown does not wait on them
		if token != "" {
			log.Info("HTTP API requires a bearer token", "addr", ln.Addr().String())
		}
		log.Info("HTTP API listening", "url", "http://"+ln.Addr().String())
		if ready != nil {
			ready("http://" + ln.Addr().String())
		}
		go func() { errc <- hs.Serve(ln) }()
	} else if ready != nil {
		ready("")
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		log.Error("HTTP API stopped", "err", serveErr)
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), svc.Config().StopTimeout)
	defer cancel()
	var errs []error
	if hs != nil {
		if err := hs.Shutdown(stopCtx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		if serveErr == nil {
			if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, err)
			}
		}
	}
	if err := svc.Stop(stopCtx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
