package depthflow

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orderflow/orderflow/fixed"
)

// Defaults applied by New to zero fields of Config.
const (
	DefaultWallFactor          = 5
	DefaultWallNeighbors       = 20
	DefaultWallMaxBps          = 100
	DefaultMaxWalls            = 256
	DefaultTouchBps            = 10
	DefaultAbsorptionWindow    = 10 * time.Second
	DefaultAbsorptionPercent   = 300
	DefaultReplenishPercent    = 50
	DefaultAbsorptionBar       = time.Minute
	DefaultMaxPendingTrades    = 8192
	DefaultMaxAbsorptionEvents = 1 << 16
	DefaultSignalHistory       = 1000
	DefaultEndedWallHistory    = 256
	DefaultWallHoldPercent     = 60
	DefaultWallMinAge          = 20 * time.Second
	// MaxWallNeighbors and MaxWallFactor bound WallNeighbors and
	// WallFactor so that exact products stay in 64 bits.
	MaxWallNeighbors = 1000
	MaxWallFactor    = 1_000_000
)

// DefaultWallMinNotional is the default Config.WallMinNotional: 500,000
// units of the quote asset (USDT for the bundled recordings).
var DefaultWallMinNotional = fixed.Dec(500_000 * 100_000_000)

// DefaultBands are the imbalance bands, in basis points of the mid, used
// when Config.Bands is empty.
var DefaultBands = []int{10, 25, 50, 100}

// DefaultLiquidityWindows are the rolling windows of liquidity added and
// pulled used when Config.LiquidityWindows is empty.
var DefaultLiquidityWindows = []time.Duration{time.Minute}

// Config tunes a Tracker. The zero value means the defaults documented on
// each field; New fills them in (Tracker.Config returns the result).
type Config struct {
	// Bands are the distances from the mid, in basis points, within which
	// depth imbalance is measured (default 10, 25, 50, 100). Negative and
	// duplicate entries are dropped.
	Bands []int

	// WallFactor (K) and WallNeighbors (N): a level becomes a wall
	// candidate when its quantity is at least K times the mean quantity of
	// its N neighbours on the same side (defaults 5 and 20; at most
	// MaxWallFactor and MaxWallNeighbors). See Wall for the exact rule.
	WallFactor    int64
	WallNeighbors int
	// WallMinNotional: a candidate also needs price x quantity at least
	// this, in the quote asset (default DefaultWallMinNotional, 500,000:
	// sized for USDT-quoted majors; set it per deployment for other quote
	// assets or thin symbols; negative: no floor).
	WallMinNotional fixed.Dec
	// WallHoldPercent (H, 1..100, default 60): hysteresis. A level that is
	// already a wall (or candidate) stays one while its quantity is at
	// least H% of K times the neighbours' mean and its notional at least
	// H% of WallMinNotional, so a level flickering around the entry
	// threshold is not ended and re-announced.
	WallHoldPercent int64
	// WallMinAge: a candidate is announced as a wall (listed by Walls,
	// kept in EndedWalls when it ends, and signalled when it is pulled or
	// filled) only once it has stood this long (default 20s; negative: at
	// once). Shorter-lived candidates are counted in
	// Stats.WallsUnannounced.
	WallMinAge time.Duration
	// WallMaxBps is how far from the mid, in basis points, walls are looked
	// for (default 100).
	WallMaxBps int
	// MaxWalls bounds the walls (and candidates) tracked per side (default
	// 256); levels that qualify beyond it, farthest from the touch first,
	// are counted in Stats.WallOverflow and not tracked.
	MaxWalls int

	// TouchBps is how close to the touch, in basis points, a level must be
	// for its changes to count as liquidity added or pulled (default 10).
	// See LiquidityStats.
	TouchBps int
	// LiquidityWindows are the rolling windows of liquidity added and
	// pulled (default 1m). They are kept in one-second buckets, so each is
	// rounded up to whole seconds.
	LiquidityWindows []time.Duration

	// AbsorptionWindow (W) is how far back taker volume into a price is
	// summed for absorption (default 10s; rounded up to whole ms).
	AbsorptionWindow time.Duration
	// AbsorptionPercent (A): absorption needs the taker volume into a price
	// to be at least A percent of the reference bar's average volume per
	// price (default 300). See Absorption in SignalKind.
	AbsorptionPercent int64
	// ReplenishPercent: absorption also needs the quantity added back at the
	// price while it was hit to be at least this percent of the volume that
	// hit it (default 50; negative: no replenishment needed).
	ReplenishPercent int64
	// AbsorptionMinVolume is an absolute floor on the taker volume into a
	// price for absorption (default 0: off).
	AbsorptionMinVolume fixed.Dec
	// AbsorptionBar is the interval of the flow bars whose average volume
	// per price is the absorption reference (default 1m). OnBar calls for
	// other intervals only emit their divergence and exhaustion signals.
	AbsorptionBar time.Duration
	// MaxAbsorptionEvents bounds the trade and replenish events held for
	// the absorption window (default 65,536); when full the oldest is
	// dropped early and counted in Stats.AbsorptionOverflow.
	MaxAbsorptionEvents int

	// MaxPendingTrades bounds the trades waiting for their depth update
	// (default 8192); when full the oldest is dropped and counted in
	// Stats.PendingOverflow.
	MaxPendingTrades int

	// SignalHistory is the number of signals kept for Signals (default
	// 1000).
	SignalHistory int
	// EndedWallHistory is the number of ended walls kept for EndedWalls
	// (default 256).
	EndedWallHistory int
	// OnSignal, if set, is called synchronously with every signal. It must
	// not block or call back into the Tracker.
	OnSignal func(Signal)
}

// Validate reports the fields New would have to correct. A nil error means
// every field is used as given (or defaulted).
func (c Config) Validate() error {
	var errs []error
	for i, b := range c.Bands {
		if b < 0 || b > 10_000 {
			errs = append(errs, fmt.Errorf("field Bands[%d]=%d: outside 0..10000", i, b))
		}
	}
	for i, w := range c.LiquidityWindows {
		if w < time.Second {
			errs = append(errs, fmt.Errorf("field LiquidityWindows[%d]=%v: shorter than 1s", i, w))
		}
	}
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("field %s=%d: negative", name, v))
		}
	}
	neg("WallFactor", c.WallFactor)
	neg("WallNeighbors", int64(c.WallNeighbors))
	if c.WallFactor > MaxWallFactor {
		errs = append(errs, fmt.Errorf("field WallFactor=%d: above %d", c.WallFactor, MaxWallFactor))
	}
	if c.WallNeighbors > MaxWallNeighbors {
		errs = append(errs, fmt.Errorf("field WallNeighbors=%d: above %d", c.WallNeighbors, MaxWallNeighbors))
	}
	if c.WallHoldPercent < 0 || c.WallHoldPercent > 100 {
		errs = append(errs, fmt.Errorf("field WallHoldPercent=%d: outside 0..100", c.WallHoldPercent))
	}
	neg("MaxWalls", int64(c.MaxWalls))
	neg("AbsorptionWindow", int64(c.AbsorptionWindow))
	neg("AbsorptionPercent", c.AbsorptionPercent)
	neg("AbsorptionMinVolume", int64(c.AbsorptionMinVolume))
	neg("AbsorptionBar", int64(c.AbsorptionBar))
	neg("MaxAbsorptionEvents", int64(c.MaxAbsorptionEvents))
	neg("MaxPendingTrades", int64(c.MaxPendingTrades))
	neg("SignalHistory", int64(c.SignalHistory))
	neg("EndedWallHistory", int64(c.EndedWallHistory))
	if c.WallMaxBps < 0 || c.WallMaxBps > 10_000 {
		errs = append(errs, fmt.Errorf("field WallMaxBps=%d: outside 0..10000", c.WallMaxBps))
	}
	if c.TouchBps < 0 || c.TouchBps > 10_000 {
		errs = append(errs, fmt.Errorf("field TouchBps=%d: outside 0..10000", c.TouchBps))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("depthflow: config: %w", err)
	}
	return nil
}

// withDefaults fills zero fields and corrects invalid ones as documented.
func (c Config) withDefaults() Config {
	bands := make([]int, 0, len(c.Bands))
	for _, b := range c.Bands {
		if b >= 0 {
			bands = append(bands, min(b, 10_000))
		}
	}
	if len(bands) == 0 {
		bands = append(bands, DefaultBands...)
	}
	slices.Sort(bands)
	c.Bands = slices.Compact(bands)

	wins := make([]time.Duration, 0, len(c.LiquidityWindows))
	for _, w := range c.LiquidityWindows {
		if w <= 0 {
			continue
		}
		if r := w % time.Second; r != 0 {
			w += time.Second - r
		}
		wins = append(wins, w)
	}
	if len(wins) == 0 {
		wins = append(wins, DefaultLiquidityWindows...)
	}
	slices.Sort(wins)
	c.LiquidityWindows = slices.Compact(wins)

	positiveOr(&c.WallFactor, DefaultWallFactor)
	positiveOr(&c.WallNeighbors, DefaultWallNeighbors)
	positiveOr(&c.MaxWalls, DefaultMaxWalls)
	positiveOr(&c.MaxPendingTrades, DefaultMaxPendingTrades)
	positiveOr(&c.MaxAbsorptionEvents, DefaultMaxAbsorptionEvents)
	positiveOr(&c.SignalHistory, DefaultSignalHistory)
	positiveOr(&c.EndedWallHistory, DefaultEndedWallHistory)
	positiveOr(&c.AbsorptionPercent, DefaultAbsorptionPercent)
	positiveOr(&c.AbsorptionWindow, DefaultAbsorptionWindow)
	positiveOr(&c.AbsorptionBar, DefaultAbsorptionBar)
	if r := c.AbsorptionWindow % time.Millisecond; r != 0 {
		c.AbsorptionWindow += time.Millisecond - r
	}
	c.WallFactor = min(c.WallFactor, MaxWallFactor)
	c.WallNeighbors = min(c.WallNeighbors, MaxWallNeighbors)
	zeroOr(&c.WallMinNotional, DefaultWallMinNotional)
	if c.WallHoldPercent <= 0 || c.WallHoldPercent > 100 {
		c.WallHoldPercent = DefaultWallHoldPercent
	}
	zeroOr(&c.WallMinAge, DefaultWallMinAge)
	zeroOr(&c.ReplenishPercent, DefaultReplenishPercent)
	if c.WallMaxBps <= 0 || c.WallMaxBps > 10_000 {
		c.WallMaxBps = DefaultWallMaxBps
	}
	if c.TouchBps <= 0 || c.TouchBps > 10_000 {
		c.TouchBps = DefaultTouchBps
	}
	if c.AbsorptionMinVolume < 0 {
		c.AbsorptionMinVolume = 0
	}
	return c
}

// positiveOr sets *v to d unless it is positive.
func positiveOr[T ~int | ~int64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// zeroOr sets *v to d when it is zero, and to zero (off) when it is
// negative.
func zeroOr[T ~int64](v *T, d T) {
	switch {
	case *v == 0:
		*v = d
	case *v < 0:
		*v = 0
	}
}
