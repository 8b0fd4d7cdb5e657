package depthflow

import (
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// LiquidityStats is the liquidity added, pulled and filled near the touch
// over a rolling window.
//
// Definition: each applied depth update with a matching BeforeDepth looks
// at every level it changed and every level a trade matched to it hit
// (package doc). A bid level p is near the touch when
// p >= bestBid*(1 - TouchBps/10000), an ask level when
// p <= bestAsk*(1 + TouchBps/10000), with the best prices taken before the
// update (prices better than the touch are near). For a near level with
// old quantity q0, new quantity q1 and matched taker volume v:
//
//	n      = q1 - q0 + v   (the change without the trades)
//	Added  += max(n, 0)
//	Pulled += max(-n, 0)   (cancelled: not explained by trades)
//	Filled += v
//
// A diff carries only the net change per update, so an order placed and
// cancelled within one update is invisible, and quantity added and then
// traded within one shows as added. Updates are counted in the one-second
// bucket of their time (T for USD-M, E for spot); a window of length W at
// time now holds the seconds s with floor(now/1000)-W/1s < s <=
// floor(now/1000), i.e. From..To.
type LiquidityStats struct {
	Window time.Duration `json:"window"`
	From   int64         `json:"from"` // ms, inclusive
	To     int64         `json:"to"`   // ms: the last update's time
	// Ready is false while the window reaches back before the first update
	// since New or the last Reset, holds an update whose changes were
	// unknown (no BeforeDepth), or holds an update whose near-touch range
	// (TouchBps of the touch before it) reached beyond the book's known
	// range on a side: the sums are then partial. Reason says which, in
	// that order of precedence.
	Ready     bool        `json:"ready"`
	Reason    NotReady    `json:"reason,omitempty"`
	Updates   int64       `json:"updates"`
	BidAdded  flow.Volume `json:"bidAdded"`
	BidPulled flow.Volume `json:"bidPulled"`
	BidFilled flow.Volume `json:"bidFilled"`
	AskAdded  flow.Volume `json:"askAdded"`
	AskPulled flow.Volume `json:"askPulled"`
	AskFilled flow.Volume `json:"askFilled"`
}

type liqBucket struct {
	sec                   int64
	added, pulled, filled [2]fixed.Int128
	updates, unknown      int64
	bidOut, askOut        int64 // updates whose near range left the known range
}

// liquidity keeps one-second buckets for the longest window.
type liquidity struct {
	wins     []time.Duration
	ring     []liqBucket
	now      int64
	have     bool
	covering bool
	cover    int64
}

func (l *liquidity) init(wins []time.Duration) {
	l.wins = wins
	longest := wins[len(wins)-1]
	l.ring = make([]liqBucket, int(longest/time.Second)+1)
	for i := range l.ring {
		l.ring[i].sec = -1 << 62
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// slot returns the bucket of second sec, clearing it if it held an older
// second.
func (l *liquidity) slot(sec int64) *liqBucket {
	n := int64(len(l.ring))
	s := &l.ring[((sec%n)+n)%n]
	if s.sec != sec {
		*s = liqBucket{sec: sec}
	}
	return s
}

// advance moves the window to an update at now and counts the update.
func (l *liquidity) advance(now int64) {
	l.now, l.have = now, true
	l.slot(floorDiv(now, 1000)).updates++
}

func (l *liquidity) markUnknown(now int64) { l.slot(floorDiv(now, 1000)).unknown++ }

// markBeyond counts an update whose near-touch range left the known range.
func (l *liquidity) markBeyond(now int64, bidOut, askOut bool) {
	s := l.slot(floorDiv(now, 1000))
	if bidOut {
		s.bidOut++
	}
	if askOut {
		s.askOut++
	}
}

// covered starts the coverage at the first update after a (re)start.
func (l *liquidity) covered(now int64) {
	if !l.covering {
		l.covering, l.cover = true, now
	}
}

func (l *liquidity) restart() { l.covering = false }

// add counts a near level's net change n and traded volume v at the
// update time at; with retro it first takes back oldNet and oldV.
func (l *liquidity) add(at int64, side market.Side, n, v, oldNet, oldV fixed.Int128, retro bool) {
	s := l.slot(floorDiv(at, 1000))
	i := sideIdx(side)
	s.added[i] = s.added[i].Add(pos(n))
	s.pulled[i] = s.pulled[i].Add(pos(n.Neg()))
	s.filled[i] = s.filled[i].Add(v)
	if retro {
		s.added[i] = s.added[i].Sub(pos(oldNet))
		s.pulled[i] = s.pulled[i].Sub(pos(oldNet.Neg()))
		s.filled[i] = s.filled[i].Sub(oldV)
	}
}

func sideIdx(s market.Side) int {
	if s == market.Sell {
		return 1
	}
	return 0
}

// stats sums the window of length w.
func (l *liquidity) stats(w time.Duration) LiquidityStats {
	out := LiquidityStats{Window: w}
	if !l.have {
		return out
	}
	nowSec := floorDiv(l.now, 1000)
	ws := int64(w / time.Second)
	first := nowSec - ws + 1
	out.From, out.To = first*1000, l.now
	unknown, bidOut, askOut := int64(0), int64(0), int64(0)
	var add, pull, fill [2]fixed.Int128
	for k := first; k <= nowSec; k++ {
		s := &l.ring[((k%int64(len(l.ring)))+int64(len(l.ring)))%int64(len(l.ring))]
		if s.sec != k {
			continue
		}
		out.Updates += s.updates
		unknown += s.unknown
		bidOut += s.bidOut
		askOut += s.askOut
		for i := range 2 {
			add[i] = add[i].Add(s.added[i])
			pull[i] = pull[i].Add(s.pulled[i])
			fill[i] = fill[i].Add(s.filled[i])
		}
	}
	out.BidAdded, out.BidPulled, out.BidFilled = flow.Volume(add[0]), flow.Volume(pull[0]), flow.Volume(fill[0])
	out.AskAdded, out.AskPulled, out.AskFilled = flow.Volume(add[1]), flow.Volume(pull[1]), flow.Volume(fill[1])
	switch {
	case !l.covering || l.cover > out.From:
		out.Reason = NotReadyWarmingUp
	case unknown != 0:
		out.Reason = NotReadyMissingBefore
	default:
		out.Reason = beyond(bidOut != 0, askOut != 0)
	}
	out.Ready = out.Reason == 0
	return out
}

// Liquidity returns the liquidity window of length w (one of
// Config.LiquidityWindows, as returned by Config) at the last update, and
// false for a window that is not configured.
func (t *Tracker) Liquidity(w time.Duration) (LiquidityStats, bool) {
	for _, x := range t.liq.wins {
		if x == w {
			return t.liq.stats(w), true
		}
	}
	return LiquidityStats{}, false
}

// LiquidityWindows returns every configured window, shortest first.
func (t *Tracker) LiquidityWindows() []LiquidityStats {
	out := make([]LiquidityStats, len(t.liq.wins))
	for i, w := range t.liq.wins {
		out[i] = t.liq.stats(w)
	}
	return out
}
