package flow

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/orderflow/orderflow/fixed"
)

// Defaults applied by NewTracker to zero fields of Config.
const (
	DefaultBarHistory          = 120
	DefaultImbalancePercent    = 300
	DefaultStackedImbalanceMin = 3
	DefaultValueAreaPercent    = 70
	DefaultProfileSession      = 24 * time.Hour
	DefaultHistorySize         = 10_000
	DefaultHistoryMaxAge       = time.Hour
	DefaultLargePercentile     = 99.0
	DefaultLargeSample         = 1000
	DefaultLargeRecompute      = 100
	DefaultLargeHistory        = 1000
	DefaultDivergenceLookback  = 20
	DefaultExhaustionPercent   = 20
	DefaultExhaustionMinLevels = 5
)

// DefaultWindows are the rolling windows used when Config.Windows is empty.
var DefaultWindows = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}

// DefaultBarIntervals are the bar intervals used when Config.BarIntervals is
// empty.
var DefaultBarIntervals = []time.Duration{time.Minute}

// Config tunes a Tracker. The zero value means the defaults documented on
// each field; NewTracker fills them in (Tracker.Config returns the result).
type Config struct {
	// Windows are the rolling windows (default 1m, 5m, 15m, 1h). Windows
	// are kept in one-second buckets, so each is rounded up to whole
	// seconds; non-positive and duplicate entries are dropped.
	Windows []time.Duration

	// BarIntervals are the bar lengths (default 1m). Bars are aligned to the
	// Unix epoch in exchange time: a 1m bar starts at a multiple of 60,000 ms.
	// Each is rounded up to whole milliseconds; non-positive and duplicate
	// entries are dropped.
	BarIntervals []time.Duration

	// BarHistory is how many closed bars are kept per interval (default
	// 120: two hours of 1m bars). Bars(interval, n) and Profile(from, to)
	// read from them. Memory grows with it: each kept bar holds a footprint
	// as long as the largest bar seen (48 bytes a price), e.g. about 60 KB
	// for a busy BTCUSDT minute at raw prices.
	BarHistory int

	// PriceGroup is the footprint and profile bucket size: a trade at price
	// p is counted at floor(p/PriceGroup)*PriceGroup, the bucket's lower
	// bound. Zero (the default) keeps the raw trade price.
	PriceGroup fixed.Dec

	// ImbalancePercent is the diagonal imbalance threshold in percent
	// (default 300: one side at least three times the other). An integer
	// keeps the comparison exact.
	ImbalancePercent int64

	// StackedImbalanceMin is the number of consecutive imbalanced prices
	// that make a stacked imbalance (default 3).
	StackedImbalanceMin int

	// ValueAreaPercent is the share of volume the value area holds
	// (default 70).
	ValueAreaPercent int64

	// ProfileSession is the length of the session volume profile, aligned
	// to the Unix epoch (default 24h: the UTC day). The session profile
	// restarts empty when a trade opens a new session.
	ProfileSession time.Duration

	// HistorySize is the number of recent trades kept (default 10,000).
	HistorySize int
	// HistoryMaxAge hides trades older than this from Trades queries,
	// measured back from the latest exchange time (default 1h).
	HistoryMaxAge time.Duration

	// LargeNotional flags a trade as large when price*qty is at least this
	// many quote units. Zero (the default) turns the absolute rule off.
	LargeNotional fixed.Dec
	// LargePercentile flags a trade as large when its qty is strictly above
	// this percentile (nearest-rank) of the last LargeSample trade sizes
	// (default 99; resolution 0.01). A negative value turns the adaptive
	// rule off.
	LargePercentile float64
	// LargeSample is the number of recent trade sizes the percentile is
	// taken over (default 1000).
	LargeSample int
	// LargeMinSample is how many trades must be seen before the adaptive
	// rule is active (default LargeSample): until then the threshold is
	// not ready and no trade is flagged by it.
	LargeMinSample int
	// LargeRecompute is how often, in trades, the percentile is recomputed
	// (default 100), so its cost per trade stays small.
	LargeRecompute int
	// LargeHistory is the number of large trades kept (default 1000).
	LargeHistory int

	// DivergenceLookback is the number of previous bars of the same
	// interval a bar is compared with for delta divergence (default 20;
	// negative: off; at most BarHistory). See Bar.Divergence.
	DivergenceLookback int
	// ExhaustionPercent: a bar extreme is exhausted when the volume at its
	// extreme price is at most this percent of the bar's average volume per
	// price (default 20; negative: off). See Bar.HighExhausted.
	ExhaustionPercent int64
	// ExhaustionMinLevels is the fewest footprint prices a bar needs before
	// exhaustion is judged (default 5), so thin bars do not trigger it.
	ExhaustionMinLevels int

	// OnBarClose, if set, is called synchronously with every bar that
	// closes, in order of close: when a trade (or Advance) reaches a later
	// bar, and from Flush. b is valid only during the call; keep b.Clone()
	// to retain it.
	OnBarClose func(interval time.Duration, b *Bar)
	// OnBarRevised, if set, is called synchronously with a closed bar that
	// late trades amended (b.LateTrades counts them), once per run of late
	// trades: at the next trade of a later bar, the next Advance or Flush.
	// The bar keeps its place (same Start); readers replace the copy they
	// had. b is valid only during the call.
	OnBarRevised func(interval time.Duration, b *Bar)
	// OnLarge, if set, is called synchronously with every large trade. The
	// callee fans out; it must not block.
	OnLarge func(LargeTrade)
}

// Validate reports the fields that NewTracker would have to correct: a
// negative size, a percentage out of range, a window shorter than one
// second. A nil error means every field is used as given (or defaulted).
func (c Config) Validate() error {
	var errs []error
	for i, w := range c.Windows {
		if w < time.Second {
			errs = append(errs, fmt.Errorf("field Windows[%d]=%v: shorter than 1s", i, w))
		}
	}
	for i, w := range c.BarIntervals {
		if w < time.Millisecond {
			errs = append(errs, fmt.Errorf("field BarIntervals[%d]=%v: shorter than 1ms", i, w))
		}
	}
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("field %s=%d: negative", name, v))
		}
	}
	neg("BarHistory", int64(c.BarHistory))
	neg("PriceGroup", int64(c.PriceGroup))
	neg("ImbalancePercent", c.ImbalancePercent)
	neg("StackedImbalanceMin", int64(c.StackedImbalanceMin))
	neg("HistorySize", int64(c.HistorySize))
	neg("HistoryMaxAge", int64(c.HistoryMaxAge))
	neg("ProfileSession", int64(c.ProfileSession))
	neg("LargeNotional", int64(c.LargeNotional))
	neg("LargeSample", int64(c.LargeSample))
	neg("LargeMinSample", int64(c.LargeMinSample))
	neg("LargeRecompute", int64(c.LargeRecompute))
	neg("LargeHistory", int64(c.LargeHistory))
	if c.ValueAreaPercent < 0 || c.ValueAreaPercent > 100 {
		errs = append(errs, fmt.Errorf("field ValueAreaPercent=%d: outside 0..100", c.ValueAreaPercent))
	}
	if math.IsNaN(c.LargePercentile) || c.LargePercentile > 100 {
		errs = append(errs, fmt.Errorf("field LargePercentile=%v: above 100", c.LargePercentile))
	}
	if look, hist := c.DivergenceLookback, max(c.BarHistory, 0); look > 0 && look > cmp.Or(hist, DefaultBarHistory) {
		errs = append(errs, fmt.Errorf("field DivergenceLookback=%d: above BarHistory=%d", look, cmp.Or(hist, DefaultBarHistory)))
	}
	if c.LargeMinSample > 0 && c.LargeSample > 0 && c.LargeMinSample > c.LargeSample {
		errs = append(errs, fmt.Errorf("field LargeMinSample=%d: above LargeSample=%d", c.LargeMinSample, c.LargeSample))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flow: config: %w", err)
	}
	return nil
}

// withDefaults returns c with defaults filled in and invalid values
// corrected as documented on each field.
func (c Config) withDefaults() Config {
	c.Windows = normDurations(c.Windows, time.Second, DefaultWindows)
	c.BarIntervals = normDurations(c.BarIntervals, time.Millisecond, DefaultBarIntervals)
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.BarHistory, DefaultBarHistory)
	def(&c.StackedImbalanceMin, DefaultStackedImbalanceMin)
	def(&c.HistorySize, DefaultHistorySize)
	def(&c.LargeSample, DefaultLargeSample)
	def(&c.LargeRecompute, DefaultLargeRecompute)
	def(&c.LargeHistory, DefaultLargeHistory)
	if c.DivergenceLookback == 0 {
		c.DivergenceLookback = DefaultDivergenceLookback
	}
	if c.ExhaustionPercent == 0 {
		c.ExhaustionPercent = DefaultExhaustionPercent
	}
	c.DivergenceLookback = min(c.DivergenceLookback, c.BarHistory)
	def(&c.ExhaustionMinLevels, DefaultExhaustionMinLevels)
	if c.LargeMinSample <= 0 || c.LargeMinSample > c.LargeSample {
		c.LargeMinSample = c.LargeSample
	}
	if c.PriceGroup < 0 {
		c.PriceGroup = 0
	}
	if c.ImbalancePercent <= 0 {
		c.ImbalancePercent = DefaultImbalancePercent
	}
	if c.ValueAreaPercent <= 0 || c.ValueAreaPercent > 100 {
		c.ValueAreaPercent = DefaultValueAreaPercent
	}
	if c.ProfileSession <= 0 {
		c.ProfileSession = DefaultProfileSession
	}
	if c.ProfileSession < time.Millisecond {
		c.ProfileSession = time.Millisecond
	}
	if c.HistoryMaxAge <= 0 {
		c.HistoryMaxAge = DefaultHistoryMaxAge
	}
	switch {
	case math.IsNaN(c.LargePercentile) || c.LargePercentile == 0:
		c.LargePercentile = DefaultLargePercentile
	case c.LargePercentile > 100:
		c.LargePercentile = 100
	}
	if c.LargeNotional < 0 {
		c.LargeNotional = 0
	}
	return c
}

// normDurations rounds each entry up to a multiple of unit, drops
// non-positive ones and duplicates, and sorts; empty input gives def.
func normDurations(in []time.Duration, unit time.Duration, def []time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(in))
	for _, d := range in {
		if d <= 0 {
			continue
		}
		if r := d % unit; r != 0 {
			d += unit - r
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return slices.Clone(def)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
