package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/service"
)

// thresholdFlags are the main metric thresholds of the commands that run
// the service (docs/metrics.md describes each metric). The defaults shown
// in the help are the packages' own, so an unset flag changes nothing.
type thresholdFlags struct {
	windows           string
	largeNotional     string
	largePercentile   float64
	imbalanceRatio    int64
	stackedImbalances int
	valueArea         int64
	wallMinNotional   string
	wallFactor        int64
	wallMinAge        time.Duration

	// wallPerSymbol is --wall-min-notional's per-symbol part, set by
	// config (no floor as -1, as depthflow takes it).
	wallPerSymbol map[string]fixed.Dec
}

func (f *thresholdFlags) register(fs *flag.FlagSet) {
	def := make([]string, len(flow.DefaultWindows))
	for i, d := range flow.DefaultWindows {
		def[i] = shortDuration(d)
	}
	fs.StringVar(&f.windows, "windows", strings.Join(def, ","), "rolling windows of the flow metrics, comma-separated, each at least 1s")
	fs.StringVar(&f.largeNotional, "large-notional", "0", "a trade is large when price x qty is at least this, in the quote asset (0: off)")
	fs.Float64Var(&f.largePercentile, "large-percentile", flow.DefaultLargePercentile, "a trade is large when its qty is above this percentile of the recent sizes (0 < p <= 100; negative: off)")
	fs.Int64Var(&f.imbalanceRatio, "imbalance-ratio", flow.DefaultImbalancePercent, "footprint diagonal imbalance threshold, percent (300: one side at least 3x the other; above 100)")
	fs.IntVar(&f.stackedImbalances, "stacked-imbalances", flow.DefaultStackedImbalanceMin, "consecutive imbalanced prices that make a stacked imbalance")
	fs.Int64Var(&f.valueArea, "value-area", flow.DefaultValueAreaPercent, "share of volume in the value area, percent (1..100)")
	fs.StringVar(&f.wallMinNotional, "wall-min-notional", depthflow.DefaultWallMinNotional.String(), "a book wall needs price x qty at least this, in the quote asset (0: no floor); per symbol: BTCUSDT=500000,ETHUSDT=100000, with a bare value for the others (e.g. 50000,BTCUSDT=500000)")
	fs.Int64Var(&f.wallFactor, "wall-factor", depthflow.DefaultWallFactor, fmt.Sprintf("a book wall is at least this many times its neighbours' mean quantity (1..%d)", depthflow.MaxWallFactor))
	fs.DurationVar(&f.wallMinAge, "wall-min-age", depthflow.DefaultWallMinAge, "a wall candidate is announced once it has stood this long (0: at once)")
}

// shortDuration formats d as the flags take it: 1m rather than 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.Replace(s, "m0s", "m", 1)
	return strings.Replace(s, "h0m", "h", 1)
}

// config checks the flags and maps them to the trackers' configurations.
// Every mistake is a usage error naming the flag.
func (f *thresholdFlags) config() (flow.Config, depthflow.Config, error) {
	var fc flow.Config
	var dc depthflow.Config
	usage := func(flagName, format string, args ...any) (flow.Config, depthflow.Config, error) {
		return flow.Config{}, depthflow.Config{}, fmt.Errorf("%w: --%s: %s", errUsage, flagName, fmt.Sprintf(format, args...))
	}
	for _, w := range strings.Split(f.windows, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		d, err := time.ParseDuration(w)
		if err != nil {
			return usage("windows", "%q: not a duration (e.g. 1m,5m,15m,1h)", w)
		}
		if d < time.Second || d%time.Second != 0 {
			return usage("windows", "%q: want whole seconds, at least 1s", w)
		}
		if slices.Contains(fc.Windows, d) {
			return usage("windows", "%q given twice", w)
		}
		fc.Windows = append(fc.Windows, d)
	}
	if len(fc.Windows) == 0 {
		return usage("windows", "no window given")
	}
	slices.Sort(fc.Windows)
	ln, err := fixed.ParseString(strings.TrimSpace(f.largeNotional))
	if err != nil || ln < 0 {
		return usage("large-notional", "%q: want a non-negative decimal", f.largeNotional)
	}
	fc.LargeNotional = ln
	switch p := f.largePercentile; {
	case math.IsNaN(p) || p == 0 || p > 100:
		return usage("large-percentile", "%v: want 0 < p <= 100, or negative for off", p)
	case p < 0:
		fc.LargePercentile = -1
	default:
		fc.LargePercentile = p
	}
	if f.imbalanceRatio <= 100 || f.imbalanceRatio > 1_000_000 {
		return usage("imbalance-ratio", "%d: want a percentage above 100 (300: one side at least 3x the other), at most 1000000", f.imbalanceRatio)
	}
	fc.ImbalancePercent = f.imbalanceRatio
	if f.stackedImbalances < 1 || f.stackedImbalances > 1000 {
		return usage("stacked-imbalances", "%d: want 1..1000", f.stackedImbalances)
	}
	fc.StackedImbalanceMin = f.stackedImbalances
	if f.valueArea < 1 || f.valueArea > 100 {
		return usage("value-area", "%d: want 1..100 percent", f.valueArea)
	}
	fc.ValueAreaPercent = f.valueArea
	wn, per, err := parseWallMinNotional(f.wallMinNotional)
	if err != nil {
		return usage("wall-min-notional", "%v", err)
	}
	dc.WallMinNotional = wn
	f.wallPerSymbol = per
	if f.wallFactor < 1 || f.wallFactor > depthflow.MaxWallFactor {
		return usage("wall-factor", "%d: want 1..%d", f.wallFactor, depthflow.MaxWallFactor)
	}
	dc.WallFactor = f.wallFactor
	if f.wallMinAge < 0 {
		return usage("wall-min-age", "%v: must not be negative", f.wallMinAge)
	}
	dc.WallMinAge = f.wallMinAge
	if f.wallMinAge == 0 {
		dc.WallMinAge = -1 // depthflow: negative is at once, zero the default
	}
	// The trackers' own checks as a backstop, so a flag the checks above
	// let through is still refused before anything starts.
	if err := errors.Join(fc.Validate(), dc.Validate()); err != nil {
		return flow.Config{}, depthflow.Config{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return fc, dc, nil
}

// parseWallMinNotional reads --wall-min-notional: a bare value (the
// default for every symbol), SYMBOL=value pairs, or both, comma-separated.
// 0 is no floor, returned as -1 (depthflow: negative is no floor, zero the
// default); without a bare value the default is depthflow's.
func parseWallMinNotional(s string) (fixed.Dec, map[string]fixed.Dec, error) {
	def, haveDef := depthflow.DefaultWallMinNotional, false
	var per map[string]fixed.Dec
	floor := func(v string) (fixed.Dec, error) {
		d, err := fixed.ParseString(strings.TrimSpace(v))
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q: want a non-negative decimal", v)
		}
		if d == 0 {
			return -1, nil
		}
		return d, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		sym, v, ok := strings.Cut(part, "=")
		if !ok {
			if haveDef {
				return 0, nil, fmt.Errorf("%q: two values without a symbol", s)
			}
			d, err := floor(part)
			if err != nil {
				return 0, nil, err
			}
			def, haveDef = d, true
			continue
		}
		sym = strings.ToUpper(strings.TrimSpace(sym))
		if err := service.ValidSymbol(sym); err != nil {
			return 0, nil, fmt.Errorf("%q: %v", part, err)
		}
		if _, dup := per[sym]; dup {
			return 0, nil, fmt.Errorf("%s given twice", sym)
		}
		d, err := floor(v)
		if err != nil {
			return 0, nil, fmt.Errorf("%s: %v", sym, err)
		}
		if per == nil {
			per = map[string]fixed.Dec{}
		}
		per[sym] = d
	}
	if !haveDef && per == nil {
		return 0, nil, fmt.Errorf("%q: no value", s)
	}
	return def, per, nil
}
