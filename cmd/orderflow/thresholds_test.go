package main

import (
	"context"
	"flag"
	"io"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
)

// TestThresholdFlagsConfig: every threshold flag lands in its field of the
// service configuration, in the field's unit; "off" values map to what the
// packages document as off; no flag at all gives the packages' defaults.
func TestThresholdFlagsConfig(t *testing.T) {
	parse := func(t *testing.T, args []string, env map[string]string) (flow.Config, *depthflow.Config) {
		t.Helper()
		e, _, _ := runTestEnv(env)
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var sf serviceFlags
		sf.register(fs, true)
		if err := parseFlags(e, fs, args); err != nil {
			t.Fatal(err)
		}
		cfg, err := sf.config(nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Flow, cfg.DepthFlow
	}
	t.Run("Defaults", func(t *testing.T) {
		fc, dc := parse(t, nil, nil)
		if !slices.Equal(fc.Windows, flow.DefaultWindows) || fc.LargeNotional != 0 || fc.LargePercentile != flow.DefaultLargePercentile ||
			fc.ImbalancePercent != flow.DefaultImbalancePercent || fc.StackedImbalanceMin != flow.DefaultStackedImbalanceMin ||
			fc.ValueAreaPercent != flow.DefaultValueAreaPercent {
			t.Fatalf("flow config %+v: want the defaults", fc)
		}
		if dc == nil || dc.WallMinNotional != depthflow.DefaultWallMinNotional || dc.WallFactor != depthflow.DefaultWallFactor ||
			dc.WallMinAge != depthflow.DefaultWallMinAge {
			t.Fatalf("depthflow config %+v: want the defaults", dc)
		}
	})
	t.Run("Set", func(t *testing.T) {
		fc, dc := parse(t, []string{"--windows", "2m, 30s", "--large-notional", "250000.5", "--large-percentile", "99.5",
			"--imbalance-ratio", "250", "--stacked-imbalances", "4", "--value-area", "68", "--wall-factor", "8", "--wall-min-age", "5s"},
			map[string]string{"ORDERFLOW_WALL_MIN_NOTIONAL": "1000000"})
		if !slices.Equal(fc.Windows, []time.Duration{30 * time.Second, 2 * time.Minute}) || fc.LargeNotional != fixed.Dec(25_000_050_000_000) ||
			fc.LargePercentile != 99.5 || fc.ImbalancePercent != 250 || fc.StackedImbalanceMin != 4 || fc.ValueAreaPercent != 68 {
			t.Fatalf("flow config %+v", fc)
		}
		if dc.WallMinNotional != fixed.Dec(100_000_000_000_000) || dc.WallFactor != 8 || dc.WallMinAge != 5*time.Second {
			t.Fatalf("depthflow config %+v", dc)
		}
	})
	t.Run("Off", func(t *testing.T) {
		fc, dc := parse(t, []string{"--large-percentile=-1", "--wall-min-notional", "0", "--wall-min-age", "0s"}, nil)
		if fc.LargePercentile >= 0 || dc.WallMinNotional >= 0 || dc.WallMinAge >= 0 {
			t.Fatalf("flow %+v depthflow %+v: want the off values (negative)", fc, dc)
		}
	})
	t.Run("BookMetricsOff", func(t *testing.T) {
		if _, dc := parse(t, []string{"--book-metrics=false", "--wall-factor", "9"}, nil); dc != nil {
			t.Fatalf("depthflow config %+v with --book-metrics=false", dc)
		}
	})
}

// TestRunThresholdFlagsReachService: `orderflow run` against the simulator
// with --windows, --large-notional and the adaptive rule off answers with
// exactly those windows and that threshold, and the large trades it lists
// are exactly the recording's trades (as served by /trades) whose notional
// is at least the threshold.
func TestRunThresholdFlagsReachService(t *testing.T) {
	runTestNoLeaks(t)
	ws, rest := runTestSim(t)
	const sym, threshold = "ZILUSDT", "100"
	args := []string{"run", "--symbols", sym, "--ws-url", ws, "--rest-url", rest, "--listen", "127.0.0.1:0",
		"--data-dir", t.TempDir(), "--stop-timeout", "5s", "--book-metrics=false", "--backfill", "0",
		"--windows", "30s,2m", "--large-percentile=-1"}
	g := runTestGroup(t)
	stderr := g.start("run", map[string]string{"ORDERFLOW_LARGE_NOTIONAL": threshold}, args).stderr
	ctx := context.Background()
	defer g.interrupt() // runMain stops gracefully on SIGINT (it catches it)
	re := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)`)
	var base string
	runTestWait(t, "the API to listen", 10*time.Second, func() bool {
		m := re.FindStringSubmatch(stderr.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	c, err := client.New(base, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var large client.LargeTrades
	runTestWait(t, "large trades", 20*time.Second, func() bool {
		large, err = c.LargeTrades(ctx, sym, client.LargeTradesQuery{Limit: 1000})
		return err == nil && len(large.Trades) >= 3
	})
	m, err := c.Metrics(ctx, sym, client.MetricsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var wins []string
	for _, w := range m.Windows {
		wins = append(wins, w.Window)
	}
	if !slices.Equal(wins, []string{"30s", "2m"}) || m.Large.Enabled {
		t.Fatalf("windows %v, adaptive rule enabled %v: want [30s 2m] and off", wins, m.Large.Enabled)
	}
	thr := fixed.MustParse(threshold)
	if got := fixed.MustParse(string(m.Large.Notional)); got != thr {
		t.Fatalf("large notional threshold %s, want %s", m.Large.Notional, threshold)
	}
	trades, err := c.Trades(ctx, sym, client.TradesQuery{Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := large.Trades[0].ID, large.Trades[0].ID
	got := map[int64]bool{}
	for _, lt := range large.Trades {
		lo, hi = min(lo, lt.ID), max(hi, lt.ID)
		got[lt.ID] = true
	}
	checked := 0
	for _, tr := range trades.Trades {
		if tr.ID < lo || tr.ID > hi {
			continue
		}
		// price x qty from the trade's own price and qty, not the served
		// notional: strings to exact decimals, compared at 16 decimals.
		n := fixed.MulDec(fixed.MustParse(string(tr.Price)), fixed.MustParse(string(tr.Qty)))
		isLarge := n.Cmp(fixed.MulDec(thr, fixed.One)) >= 0
		if isLarge != got[tr.ID] {
			t.Fatalf("trade %d notional %s: listed as large %v, want %v", tr.ID, tr.Notional, got[tr.ID], isLarge)
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("no trade of /trades within the large trades' ids %d..%d", lo, hi)
	}
	t.Logf("%d large trades, %d trades checked against --large-notional %s", len(large.Trades), checked, threshold)
}
