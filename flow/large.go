package flow

import (
	"slices"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// LargeTrade is a trade flagged as large ("whale") by the absolute
// notional rule, the adaptive percentile rule, or both.
type LargeTrade struct {
	Symbol   string      `json:"symbol"`
	ID       int64       `json:"id"`
	Time     int64       `json:"time"`
	Side     market.Side `json:"side"`
	Price    fixed.Dec   `json:"price"`
	Qty      fixed.Dec   `json:"qty"`
	Notional Notional    `json:"notional"`
	// ByNotional: Price*Qty >= Config.LargeNotional.
	ByNotional bool `json:"byNotional"`
	// ByPercentile: Qty > QtyThreshold, the LargePercentile of recent trade
	// sizes in force when the trade arrived.
	ByPercentile bool      `json:"byPercentile"`
	QtyThreshold fixed.Dec `json:"qtyThreshold"`
}

// LargeThreshold is the state of the adaptive large-trade rule.
type LargeThreshold struct {
	// Enabled is false when Config.LargePercentile is negative.
	Enabled bool `json:"enabled"`
	// Ready is true once Config.LargeMinSample trades have been seen; Qty is
	// meaningful only then.
	Ready bool      `json:"ready"`
	Qty   fixed.Dec `json:"qty"`
	// Sample is how many trade sizes the percentile is taken over now.
	Sample int `json:"sample"`
}

// largeTrades detects large trades and keeps the recent ones.
//
// The adaptive threshold is the nearest-rank percentile of the last
// LargeSample sizes: sort them ascending and take the one at 1-based rank
// ceil(P*n/100), P in hundredths of a percent. It is recomputed when the
// sample first reaches LargeMinSample and then every LargeRecompute trades;
// a trade is compared with the threshold in force before it is added to
// the sample.
type largeTrades struct {
	symbol    string
	cfg       *Config
	bp        int64 // percentile in basis points of 100%; <0: off
	sample    []fixed.Dec
	next      int // ring write position
	n         int
	scratch   []fixed.Dec
	since     int
	ready     bool
	threshold fixed.Dec
	minNot    fixed.Int128

	ring  []LargeTrade
	start int
	count int
}

func (l *largeTrades) init(symbol string, cfg *Config) {
	l.symbol, l.cfg = symbol, cfg
	l.bp = -1
	if cfg.LargePercentile > 0 {
		l.bp = int64(cfg.LargePercentile*100 + 0.5)
		l.sample = make([]fixed.Dec, cfg.LargeSample)
		l.scratch = make([]fixed.Dec, cfg.LargeSample)
	}
	l.minNot = fixed.MulDec(cfg.LargeNotional, fixed.One)
	l.ring = make([]LargeTrade, cfg.LargeHistory)
}

func (l *largeTrades) add(tr *market.Trade, side market.Side, notional fixed.Int128) {
	byNot := l.cfg.LargeNotional > 0 && notional.Cmp(l.minNot) >= 0
	byPct := l.ready && tr.Qty > l.threshold
	if byNot || byPct {
		lt := LargeTrade{Symbol: l.symbol, ID: tr.ID, Time: tr.Time, Side: side, Price: tr.Price,
			Qty: tr.Qty, Notional: Notional(notional), ByNotional: byNot, ByPercentile: byPct}
		if l.ready {
			lt.QtyThreshold = l.threshold
		}
		l.push(lt)
		if l.cfg.OnLarge != nil {
			l.cfg.OnLarge(lt)
		}
	}
	if l.bp < 0 {
		return
	}
	l.sample[l.next] = tr.Qty
	l.next++
	if l.next == len(l.sample) {
		l.next = 0
	}
	if l.n < len(l.sample) {
		l.n++
	}
	l.since++
	if l.n >= l.cfg.LargeMinSample && (!l.ready || l.since >= l.cfg.LargeRecompute) {
		l.recompute()
	}
}

func (l *largeTrades) recompute() {
	s := l.scratch[:l.n]
	copy(s, l.sample[:l.n])
	rank := (l.bp*int64(l.n) + 9999) / 10000 // ceil, 1-based
	rank = min(max(rank, 1), int64(l.n))
	l.threshold = selectKth(s, int(rank-1))
	l.ready = true
	l.since = 0
}

func (l *largeTrades) push(lt LargeTrade) {
	if len(l.ring) == 0 {
		return
	}
	if l.count < len(l.ring) {
		l.ring[(l.start+l.count)%len(l.ring)] = lt
		l.count++
		return
	}
	l.ring[l.start] = lt
	l.start = (l.start + 1) % len(l.ring)
}

// LargeTrades appends the last n large trades kept (all if n <= 0), oldest
// first, to dst and returns it.
func (t *Tracker) LargeTrades(n int, dst []LargeTrade) []LargeTrade {
	l := &t.large
	if n <= 0 || n > l.count {
		n = l.count
	}
	for k := l.count - n; k < l.count; k++ {
		dst = append(dst, l.ring[(l.start+k)%len(l.ring)])
	}
	return dst
}

// LargeThreshold returns the state of the adaptive large-trade rule.
func (t *Tracker) LargeThreshold() LargeThreshold {
	l := &t.large
	return LargeThreshold{Enabled: l.bp >= 0, Ready: l.ready, Qty: l.threshold, Sample: l.n}
}

// selectKth returns the k-th smallest element (0-based) of s, reordering
// s: quickselect, O(n) expected, in place. After 2*log2(n) rounds without
// converging (adversarial input) it sorts what is left, so the worst case
// is O(n log n).
func selectKth(s []fixed.Dec, k int) fixed.Dec {
	lo, hi := 0, len(s)-1
	budget := 2 * bitsLen(len(s))
	for lo < hi {
		if budget == 0 {
			slices.Sort(s[lo : hi+1])
			return s[k]
		}
		budget--
		// Median of three as pivot, then Hoare partition.
		mid := lo + (hi-lo)/2
		a, b, c := s[lo], s[mid], s[hi]
		pivot := max(min(a, b), min(max(a, b), c))
		i, j := lo, hi
		for i <= j {
			for s[i] < pivot {
				i++
			}
			for s[j] > pivot {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return s[k] // between j and i: equal to the pivot
		}
	}
	return s[k]
}

func bitsLen(n int) int {
	b := 0
	for ; n > 0; n >>= 1 {
		b++
	}
	return b
}
