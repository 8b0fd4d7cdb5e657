package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

func init() {
	register(command{name: "demo", summary: "offline demo: the simulator replays real BTCUSDT data and the service runs against it", run: runDemo})
}

// demoFiles are the bundled real recordings the demo replays: Binance spot
// BTCUSDT, 2024-08-08 23:54 to 2024-08-09 00:05 UTC (testdata/binance/SOURCES.md).
var demoFiles = []string{"hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz"}

// findDemoData looks for the bundled recordings in dir if given, else in
// testdata/binance under the working directory, the executable's
// directory, and their parents (a fresh clone run with `go run`, or a
// binary built into bin/).
func findDemoData(dir string) ([]string, error) {
	var cands []string
	if dir != "" {
		cands = append(cands, dir)
	} else {
		var roots []string
		if wd, err := os.Getwd(); err == nil {
			roots = append(roots, wd)
		}
		if exe, err := os.Executable(); err == nil {
			roots = append(roots, filepath.Dir(exe))
		}
		for _, r := range roots {
			for i := 0; i < 4; i++ {
				cands = append(cands, filepath.Join(r, "testdata", "binance"))
				r = filepath.Dir(r)
			}
		}
	}
	for _, c := range cands {
		var files []string
		for _, f := range demoFiles {
			p := filepath.Join(c, f)
			if _, err := os.Stat(p); err == nil {
				files = append(files, p)
			}
		}
		if len(files) == len(demoFiles) {
			return files, nil
		}
	}
	return nil, fmt.Errorf("demo recordings %v not found in %s: run from the repository, or pass --data DIR", demoFiles, strings.Join(cands, ", "))
}

func runDemo(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "demo", "[--speed N] [--duration D] [--listen ADDR]")
	speed := fs.Float64("speed", 1, "replay speed (1 = the recorded pace)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP API address (\"off\" to disable)")
	dataDir := fs.String("data", "", "directory holding the demo recordings (default: found in testdata/binance)")
	refresh := fs.Duration("refresh", 2*time.Second, "how often the terminal view is printed")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if *speed <= 0 {
		return fmt.Errorf("%w: --speed %v: want a positive factor", errUsage, *speed)
	}
	if err := checkListen(*listen, ""); err != nil {
		return err
	}
	log, err := lf.logger(env.stderr)
	if err != nil {
		return err
	}
	files, err := findDemoData(*dataDir)
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	simLog := log.With("component", "sim")
	if lf.level != "debug" {
		simLog = slog.New(slog.DiscardHandler) // the demo's view is the service's
	}
	srv, err := sim.New(sim.Config{Files: files, Speed: *speed, Loop: true, Logger: simLog})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	ws, rest := srv.URL()
	tmp, err := os.MkdirTemp("", "orderflow-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// The simulator's REST costs nothing, so the demo runs the book
	// self-audit that is off by default against Binance.
	svc, err := service.New(service.Config{Symbols: srv.Symbols(), Market: srv.Market(), WSURL: ws, RESTURL: rest,
		AuditInterval: 15 * time.Second, BookTicker: true, DepthFlow: &depthflow.Config{},
		DataDir: tmp, Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "orderflow demo: replaying real Binance spot BTCUSDT (2024-08-08 23:54 UTC) through a local simulator at %s (speed %gx)\n", ws, *speed)
	viewDone := make(chan struct{})
	viewCtx, stopView := context.WithCancel(ctx)
	defer func() { stopView(); <-viewDone }()
	err = serve(ctx, log, svc, *listen, "", func(apiURL string) {
		if apiURL != "" {
			fmt.Fprintf(env.stdout, "Dashboard: %s/  (open it in a browser)\n", apiURL)
			fmt.Fprintf(env.stdout, "HTTP API: %s/v1/status  (Ctrl-C stops everything)\n", apiURL)
		}
		go func() {
			defer close(viewDone)
			demoView(viewCtx, env.stdout, svc, *refresh)
		}()
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		ctx = context.Background() // --duration elapsed: a normal end
	}
	return err
}

// demoView prints the order flow of every symbol now and then.
func demoView(ctx context.Context, w io.Writer, svc *service.Service, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, sym := range svc.Symbols() {
			_ = svc.ViewSymbol(sym, func(s *engine.Symbol) error {
				printFlow(w, s)
				return nil
			})
		}
	}
}

// printFlow writes a compact multi-line view of one symbol's order flow.
func printFlow(w io.Writer, s *engine.Symbol) {
	tot := s.Flow.Totals()
	if tot.Trades == 0 {
		fmt.Fprintf(w, "%s: waiting for trades...\n", s.Name)
		return
	}
	fmt.Fprintf(w, "\n== %s %s  last %s  trades %d  CVD %s  VWAP %s  (exchange time %s)\n", s.Name, s.Market, tot.Last,
		tot.Trades, tot.Delta, tot.VWAP, time.UnixMilli(tot.LastTime).UTC().Format("15:04:05.000"))
	for _, d := range s.Flow.Windows() {
		ws, ok := s.Flow.Window(d)
		if !ok {
			continue
		}
		state := "complete"
		if !ws.Complete {
			state = "partial " + ws.Covered.Round(time.Second).String()
		}
		fmt.Fprintf(w, "   %-4s %5d trades  buy %-12s sell %-12s delta %-12s vwap %-14s %5.1f%% buy  [%s]\n",
			shortDur(d), ws.Trades, ws.BuyVolume, ws.SellVolume, ws.Delta, ws.VWAP, ws.BuyRatio*100, state)
	}
	if bk := s.Book(); bk != nil && s.Synced() {
		bid, okb := bk.BestBid()
		ask, oka := bk.BestAsk()
		if okb && oka {
			b10, a10, _ := bk.DepthWithin(10)
			fmt.Fprintf(w, "   book  bid %s @ %s | ask %s @ %s  spread %s  depth±10bps bid %s ask %s  (update %d)\n",
				bid.Qty, bid.Price, ask.Qty, ask.Price, ask.Price-bid.Price, b10.FormatScaled(8), a10.FormatScaled(8), bk.UpdateID())
		}
		audit := "no audit yet"
		if a := s.LastAudit; a.UpdateID != 0 {
			audit = fmt.Sprintf("last audit at update %d: %d mismatches", a.UpdateID, len(a.Mismatches))
			if !a.Compared {
				audit = fmt.Sprintf("last audit at update %d skipped", a.UpdateID)
			}
		}
		fmt.Fprintf(w, "   check bookTicker agreed %d/%d; %s\n", s.TickerChecks-s.TickerMismatches, s.TickerChecks, audit)
	} else {
		fmt.Fprintln(w, "   book  syncing...")
	}
	if s.Depth != nil {
		m := s.Depth.Metrics()
		line := "   bands"
		for _, b := range m.Bands {
			line += fmt.Sprintf("  ±%dbps %+.2f", b.Bps, b.Imbalance)
		}
		fmt.Fprintln(w, line, " (imbalance: +1 all bids, -1 all asks)")
		for _, side := range []market.Side{market.Buy, market.Sell} {
			walls := s.Depth.Walls(side, nil)
			if len(walls) == 0 {
				continue
			}
			big := walls[0]
			for _, wl := range walls[1:] {
				if wl.Qty > big.Qty {
					big = wl
				}
			}
			fmt.Fprintf(w, "   wall  %s %s @ %s (%.1fx its neighbours, standing %s)\n", side, big.Qty, big.Price, big.Ratio,
				time.Duration(big.Updated-big.Since)*time.Millisecond)
		}
		if sig := s.Depth.Signals(0, nil); len(sig) > 0 {
			last := sig[len(sig)-1]
			fmt.Fprintf(w, "   signal %d so far; last: %s %s @ %s (%s)\n", len(sig), last.Kind, last.Side, last.Price,
				time.UnixMilli(last.Time).UTC().Format("15:04:05.000"))
		}
	}
	large := s.Flow.LargeTrades(3, nil)
	for _, l := range large {
		fmt.Fprintf(w, "   large %s %s @ %s = %s (%s)\n", l.Side, l.Qty, l.Price, l.Notional,
			time.UnixMilli(l.Time).UTC().Format("15:04:05.000"))
	}
}

func shortDur(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
