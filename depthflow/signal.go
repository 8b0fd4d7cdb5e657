package depthflow

import (
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// SignalKind says what a Signal reports.
type SignalKind uint8

// Signal kinds.
const (
	// Absorption: heavy taker aggression into one resting price that does
	// not give way. Definitions, for a price P on the resting side S (bids
	// absorb taker sells, asks absorb taker buys), over the applied depth
	// updates k = 1, 2, ... since New or the last Reset, τ_k the time of
	// update k, W = Config.AbsorptionWindow:
	//
	//	v_k    taker volume at P against S of the trades matched to update
	//	       k (package doc), counted from its arrival: a trade that
	//	       arrives after update k counts from the next update on
	//	n_k    q1 - q0 + v_k, q0 and q1 the quantity at P on S before and
	//	       after update k (both 0 when k did not change P): the quantity
	//	       added (positive) or cancelled at P without the trades
	//	broken at k: after update k the best price of S is worse than P
	//	       (the best bid below P, the best ask above P) or S is empty
	//	episode: the updates after the last update broken at P
	//	live at k: some update i <= k of the episode with τ_i > τ_k - W has
	//	       v_i > 0 (P was being hit)
	//
	// At the end of each update j not broken at P, over the span (the
	// updates k of the episode with τ_k > τ_j - W):
	//
	//	V   = sum of v_k over the span
	//	R   = sum of max(n_k, 0) over the span's updates live at k
	//	avg = Volume / len(Footprint) of the last closed flow bar of
	//	      Config.AbsorptionBar given to OnBar (volume per footprint price)
	//
	// and absorption fires when V*100 >= AbsorptionPercent*avg, V >=
	// AbsorptionMinVolume, R*100 >= ReplenishPercent*V, and P still rests
	// on S (quantity > 0). It fires once, then not again at P until an
	// update k broken at P, or one where the span without k's own trades
	// holds no taker volume. Volume is V, Replenished R, Resting the
	// quantity at P, Threshold AbsorptionPercent% of avg (rounded half to
	// even), Since the time of the first update of the span with v_k > 0,
	// Strength V/avg.
	Absorption SignalKind = iota + 1
	// Divergence: a closed flow bar with flow.Bar.Divergence set (a new
	// price extreme over the lookback that CVD does not confirm). Side is
	// Sell for bearish (a new high) and Buy for bullish (a new low), Price
	// the new extreme, Volume the bar's CVD, Strength 1.
	Divergence
	// Exhaustion: a closed flow bar with HighExhausted (Side Buy: buyers ran
	// out at the high, Price = High) or LowExhausted (Side Sell, Price =
	// Low). Volume is the volume at that extreme, Threshold the bar's
	// average volume per price, Strength 1 - Volume/Threshold.
	Exhaustion
	// WallPulled: an announced wall (one that stood at least WallMinAge,
	// see Wall) ended because its quantity was cancelled (see WallEnd). Volume is the quantity the
	// wall last had, Pulled/Filled split the final decrease, Since is when
	// it first qualified, Strength its last quantity / neighbour mean.
	WallPulled
	// WallFilled: as WallPulled, but trades took most of the decrease.
	WallFilled
)

var kindNames = [...]string{"", "absorption", "divergence", "exhaustion", "wall_pulled", "wall_filled"}

// String names the kind ("absorption", "wall_pulled", ...).
func (k SignalKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (k SignalKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Signal is one detected event. Which fields are used depends on Kind (see
// the SignalKind constants); unused ones are zero.
type Signal struct {
	Kind   SignalKind `json:"kind"`
	Symbol string     `json:"symbol"`
	// Time is the exchange time (ms) of the depth update or bar close that
	// produced the signal.
	Time  int64       `json:"time"`
	Price fixed.Dec   `json:"price"`
	Side  market.Side `json:"side"`
	// Strength is a kind-specific ratio, for ranking (float: display only).
	Strength    float64     `json:"strength"`
	Volume      flow.Volume `json:"volume"`
	Threshold   flow.Volume `json:"threshold"`
	Replenished flow.Volume `json:"replenished"`
	// Resting is the level's quantity when an Absorption signal fired.
	Resting fixed.Dec   `json:"resting,omitempty"`
	Pulled  flow.Volume `json:"pulled"`
	Filled  flow.Volume `json:"filled"`
	Since   int64       `json:"since,omitempty"`
	// Interval and Divergence describe the bar of bar signals.
	Interval   time.Duration   `json:"interval,omitempty"`
	Divergence flow.Divergence `json:"divergence,omitempty"`
}

// emit records s in the ring and calls OnSignal.
func (t *Tracker) emit(s Signal) {
	s.Symbol = t.symbol
	t.stats.Signals[s.Kind]++
	if len(t.signals) < cap(t.signals) {
		t.signals = append(t.signals, s)
	} else {
		t.signals[t.sigStart] = s
		t.sigStart = (t.sigStart + 1) % len(t.signals)
	}
	if t.cfg.OnSignal != nil {
		t.cfg.OnSignal(s)
	}
}

// Signals appends to dst the kept signals with Time >= since, oldest first,
// and returns the extended slice. At most Config.SignalHistory signals are
// kept.
func (t *Tracker) Signals(since int64, dst []Signal) []Signal {
	n := len(t.signals)
	for i := range n {
		s := &t.signals[(t.sigStart+i)%n]
		if s.Time >= since {
			dst = append(dst, *s)
		}
	}
	return dst
}

// OnBar turns a closed flow bar into Divergence and Exhaustion signals and,
// for bars of Config.AbsorptionBar, makes it the absorption reference. Call
// it from flow.Config.OnBarClose; b is not retained. Open bars are ignored.
func (t *Tracker) OnBar(interval time.Duration, b *flow.Bar) {
	if b == nil || !b.Closed {
		return
	}
	if interval == t.cfg.AbsorptionBar && len(b.Footprint) > 0 {
		t.refVolume = fixed.Int128(b.Volume)
		t.refLevels = int64(len(b.Footprint))
		t.refReady = true
	}
	switch b.Divergence {
	case flow.BearishDivergence:
		t.emit(Signal{Kind: Divergence, Time: b.End, Price: b.High, Side: market.Sell, Strength: 1,
			Volume: b.CVD, Interval: interval, Divergence: b.Divergence, Since: b.Start})
	case flow.BullishDivergence:
		t.emit(Signal{Kind: Divergence, Time: b.End, Price: b.Low, Side: market.Buy, Strength: 1,
			Volume: b.CVD, Interval: interval, Divergence: b.Divergence, Since: b.Start})
	}
	n := len(b.Footprint)
	if n == 0 || (!b.HighExhausted && !b.LowExhausted) {
		return
	}
	avg, _ := divRound(fixed.Int128(b.Volume), int64(n))
	exh := func(l flow.FootprintLevel, price fixed.Dec, side market.Side) {
		v := l.Volume()
		s := 1.0
		if a := float64(avg); a > 0 {
			s = 1 - v.Float64()*1e8/a
		}
		t.emit(Signal{Kind: Exhaustion, Time: b.End, Price: price, Side: side, Strength: s,
			Volume: v, Threshold: flow.Volume(fixed.I128(int64(avg))), Interval: interval, Since: b.Start})
	}
	if b.HighExhausted {
		exh(b.Footprint[n-1], b.High, market.Buy)
	}
	if b.LowExhausted {
		exh(b.Footprint[0], b.Low, market.Sell)
	}
}
