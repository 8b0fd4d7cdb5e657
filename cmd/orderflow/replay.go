package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/replay"
)

func init() {
	register(command{name: "replay", summary: "run recordings through the pipeline and print bars and summaries", run: runReplay})
}

func runReplay(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "replay", "[--json] [--market spot|usdm] [--bars 1m] [--footprint] [--price-group P] [--depth 20] FILE...")
	jsonOut := fs.Bool("json", false, "print JSON lines (the stable output contract) instead of a table")
	marketFlag := fs.String("market", "", "market of the recordings: spot or usdm (default: detected from the frames, pu means usdm)")
	bars := fs.Duration("bars", 0, "emit one bar per symbol and interval of trade time, e.g. 1m (0: no bars)")
	footprint := fs.Bool("footprint", false, "add each bar's footprint [[price,buy_volume,sell_volume],...] and poc")
	priceGroup := fs.String("price-group", "", "group footprint prices into buckets of this size, e.g. 0.5 (default: raw trade price)")
	depth := fs.Int("depth", 20, "book levels per side in the summary")
	symbol := fs.String("symbol", "", "symbol of a CSV recording whose file name does not name it")
	progress := fs.Bool("progress", isTerminal(os.Stderr), "show a progress bar on stderr")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no recording given", errUsage)
	}
	if *depth <= 0 || *depth > 5000 {
		return fmt.Errorf("%w: --depth %d: want 1..5000", errUsage, *depth)
	}
	if *bars < 0 || (*bars > 0 && *bars%time.Second != 0) {
		return fmt.Errorf("%w: --bars %v: want a whole number of seconds, e.g. 1m", errUsage, *bars)
	}
	log, err := lf.logger(env.stderr)
	if err != nil {
		return err
	}
	opts := replay.Options{Files: fs.Args(), Bars: *bars, Footprint: *footprint, Depth: *depth, Symbol: *symbol, Logger: log}
	if *footprint && *bars == 0 {
		return fmt.Errorf("%w: --footprint needs --bars", errUsage)
	}
	if *marketFlag != "" {
		k, err := market.ParseKind(*marketFlag)
		if err != nil {
			return fmt.Errorf("%w: --market: %v", errUsage, err)
		}
		opts.Market, opts.MarketKnown = k, true
	}
	if *priceGroup != "" {
		g, err := fixed.ParseString(*priceGroup)
		if err != nil || g <= 0 {
			return fmt.Errorf("%w: --price-group %q: want a positive decimal", errUsage, *priceGroup)
		}
		opts.PriceGroup = g
	}
	var bar *progressBar
	if *progress {
		bar = newProgressBar(env.stderr, "replay")
		opts.Progress = bar.update
	}
	start := time.Now()
	out := env.stdout
	var table strings.Builder
	if !*jsonOut {
		out = &table
	}
	res, err := replay.Run(ctx, opts, out)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	st := res.Stats
	log.Info("replay done", "records", res.Records, "trades", st.Trades, "depth_updates", st.DepthUpdates,
		"decode_errors", st.DecodeErrors, "rejected_trades", st.TradeRejected, "elapsed", time.Since(start).Round(time.Millisecond))
	if !*jsonOut {
		return printReplayTable(env, res, table.String())
	}
	return nil
}
