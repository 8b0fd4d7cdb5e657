package depthflow

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// The absorption reference follows the definition on Absorption literally:
// it keeps, per applied update, the raw level changes, the best prices
// after it and the taker volume matched to it per (side, price), and at
// every update recomputes each price's episode, span, V and R from that
// history with plain loops and int64/math/big arithmetic (no ring, no
// running sums, no expiry). The 1m reference bars are built here from the
// raw trades (volume and number of distinct prices) and given to the
// tracker with OnBar, so both sides use the same bar at every update.

type absKey struct {
	side int // 0 bids (hit by taker sells), 1 asks
	p    int64
}

type absHist struct {
	time     int64
	changes  map[absKey][2]int64 // prev, cur
	bid, ask int64               // best prices after the update, 0: empty side
	on, late map[absKey]int64    // taker volume matched before / after the update was applied
}

// brokenAt reports whether the book had moved through k's price after h.
func (h *absHist) brokenAt(k absKey) bool {
	if k.side == 0 {
		return h.bid == 0 || h.bid < k.p
	}
	return h.ask == 0 || h.ask > k.p
}

type absRefSignal struct {
	time                      int64
	key                       absKey
	v, r, resting, thr, since int64
	strength                  float64
	refVol                    *big.Int
	refLevels                 int64
}

type absCounts struct {
	signals       int
	evaluations   int // (update, price) pairs judged
	heavy         int // of which V reached the threshold
	unreplenished int // heavy, not yet fired, but R short
	gone          int // heavy, not fired, replenished, but the level was empty
	refired       int // heavy and replenished but already fired in the episode
}

// roundHalfEven returns num/den rounded half to even (den > 0).
func roundHalfEven(num, den *big.Int) int64 {
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	twice := new(big.Int).Mul(r, big.NewInt(2))
	if c := twice.Cmp(den); c > 0 || c == 0 && q.Bit(0) == 1 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64()
}

// replayAbsorption replays ds through a Tracker with cfg and compares, at
// every update, the absorption signals it emitted with the reference's.
func replayAbsorption(t *testing.T, ds dataset, cfg Config) absCounts {
	t.Helper()
	evs := load(t, ds)
	var got []Signal
	cfg.OnSignal = func(s Signal) {
		if s.Kind == Absorption {
			got = append(got, s)
		}
	}
	tr := New("TEST", cfg)
	cfg = tr.Config()
	W := cfg.AbsorptionWindow.Milliseconds()
	bk := book.New()
	ref := newRefBook()
	snapAt := slices.IndexFunc(evs, func(e event) bool { return e.kind == evSnap })
	if snapAt < 0 {
		t.Fatal("no snapshot")
	}
	if err := bk.Reset(toSnapshot(&evs[snapAt])); err != nil {
		t.Fatal(err)
	}
	ref.load(&evs[snapAt])
	id, bridged := evs[snapAt].last, false
	for i := 0; i < snapAt; i++ {
		e := &evs[i]
		if e.kind != evDepth || stale(ds.kind, e, id, bridged) {
			continue
		}
		if err := bk.ApplyUpdate(toUpdate(e)); err != nil {
			t.Fatal(err)
		}
		ref.apply(e)
		id, bridged = e.u, true
	}
	tr.Reset(bk, 1000)

	// Reference bars: 1m by trade time, closed when a trade of a later
	// minute arrives.
	var barMin, barVol int64 = math.MinInt64, 0
	barPrices := map[int64]bool{}
	refVol, refLevels := new(big.Int), int64(0)

	type pend struct {
		t   int64
		key absKey
		q   int64
	}
	var pending []pend
	var hist []absHist
	fired := map[absKey]bool{}
	var c absCounts

	for i := snapAt + 1; i < len(evs); i++ {
		e := &evs[i]
		if e.kind == evTrade {
			if m := e.T / 60_000; m > barMin {
				if barMin != math.MinInt64 && barVol > 0 {
					b := flow.Bar{Start: barMin * 60_000, End: barMin*60_000 + 59_999, Closed: true,
						Volume: flow.Volume(fixed.I128(barVol)), Footprint: make([]flow.FootprintLevel, len(barPrices))}
					tr.OnBar(time.Minute, &b)
					refVol, refLevels = big.NewInt(barVol), int64(len(barPrices))
				}
				barMin, barVol, barPrices = m, 0, map[int64]bool{}
			}
			barVol += units(e.q)
			barPrices[units(e.p)] = true
			trd := toTrade(e)
			if err := tr.OnTrade(&trd); err != nil {
				t.Fatal(err)
			}
			key := absKey{side: 1, p: units(e.p)}
			if e.buyerMaker {
				key.side = 0
			}
			// Matched as the package doc says: late to the last update
			// when that update is at or after the trade and changed its
			// level; otherwise pending for the first later update at or
			// after its time.
			if n := len(hist); n > 0 && e.T <= hist[n-1].time {
				if _, ok := hist[n-1].changes[key]; ok {
					hist[n-1].late[key] += units(e.q)
					continue
				}
			}
			pending = append(pending, pend{e.T, key, units(e.q)})
			continue
		}
		if e.kind != evDepth || stale(ds.kind, e, id, bridged) {
			continue
		}
		u := toUpdate(e)
		tr.BeforeDepth(u, bk)
		if err := bk.ApplyUpdate(u); err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		if err := tr.OnDepth(u, bk); err != nil {
			t.Fatal(err)
		}
		id, bridged = e.u, true
		now := uTime(e)
		if n := len(hist); n > 0 && now < hist[n-1].time {
			t.Fatalf("update %d at %d before the previous one at %d", e.u, now, hist[n-1].time)
		}
		h := absHist{time: now, changes: map[absKey][2]int64{}, on: map[absKey]int64{}, late: map[absKey]int64{}}
		for _, ch := range ref.apply(e) {
			k := absKey{ch.side, ch.p}
			if old, ok := h.changes[k]; ok {
				h.changes[k] = [2]int64{old[0], ch.cur}
			} else {
				h.changes[k] = [2]int64{ch.prev, ch.cur}
			}
		}
		for p := range ref.side[0] {
			h.bid = max(h.bid, p)
		}
		for p := range ref.side[1] {
			if h.ask == 0 || p < h.ask {
				h.ask = p
			}
		}
		keep := pending[:0]
		for _, p := range pending {
			if p.t <= now {
				h.on[p.key] += p.q
			} else {
				keep = append(keep, p)
			}
		}
		pending = keep
		hist = append(hist, h)
		j := len(hist) - 1

		// Each price's span and sums, from the history.
		type sums struct {
			v, r, since, vPrev int64
		}
		judge := func(k absKey) sums {
			lo := 0
			for m := j - 1; m >= 0; m-- {
				if hist[m].time <= now-2*W {
					lo = m + 1
					break
				}
				if hist[m].brokenAt(k) {
					lo = m + 1
					break
				}
			}
			s := sums{since: -1}
			last := -1 // the latest update so far with v > 0
			for m := lo; m <= j; m++ {
				v := hist[m].on[k]
				if m < j {
					v += hist[m].late[k]
				}
				if v > 0 {
					last = m
				}
				if hist[m].time <= now-W {
					continue
				}
				s.v += v
				if m < j {
					s.vPrev += v
				}
				if v > 0 && s.since < 0 {
					s.since = hist[m].time
				}
				if last >= 0 && hist[last].time > hist[m].time-W {
					n := v
					if ch, ok := hist[m].changes[k]; ok {
						n += ch[1] - ch[0]
					}
					s.r += max(n, 0)
				}
			}
			return s
		}

		// Fired prices: reset by a break or an empty span.
		for k := range fired {
			if h.brokenAt(k) || judge(k).vPrev == 0 {
				delete(fired, k)
			}
		}
		var want []absRefSignal
		seen := map[absKey]bool{}
		for m := j; m >= 0 && hist[m].time > now-W; m-- {
			for _, mp := range []map[absKey]int64{hist[m].on, hist[m].late} {
				for k := range mp {
					if seen[k] || h.brokenAt(k) {
						continue
					}
					seen[k] = true
					s := judge(k)
					if s.v == 0 {
						continue
					}
					c.evaluations++
					if refLevels == 0 {
						continue
					}
					// V*100*levels >= A*volume: V*100 >= A*avg.
					lhs := new(big.Int).Mul(big.NewInt(s.v), big.NewInt(100*refLevels))
					rhs := new(big.Int).Mul(refVol, big.NewInt(cfg.AbsorptionPercent))
					if lhs.Cmp(rhs) < 0 || s.v < int64(cfg.AbsorptionMinVolume) {
						continue
					}
					c.heavy++
					replenished := new(big.Int).Mul(big.NewInt(s.r), big.NewInt(100)).Cmp(new(big.Int).Mul(big.NewInt(s.v), big.NewInt(cfg.ReplenishPercent))) >= 0
					resting := ref.side[k.side][k.p]
					switch {
					case !replenished:
						if !fired[k] {
							c.unreplenished++
						}
						continue
					case fired[k]:
						c.refired++
						continue
					case resting <= 0:
						c.gone++
						continue
					}
					fired[k] = true
					avg := new(big.Rat).SetFrac(refVol, big.NewInt(refLevels))
					str, _ := new(big.Rat).Quo(new(big.Rat).SetInt64(s.v), avg).Float64()
					want = append(want, absRefSignal{time: now, key: k, v: s.v, r: s.r, resting: resting,
						thr: roundHalfEven(rhs, big.NewInt(100*refLevels)), since: s.since, strength: str})
				}
			}
		}
		c.signals += len(want)
		slices.SortFunc(want, func(a, b absRefSignal) int {
			return cmp.Or(cmp.Compare(a.key.side, b.key.side), cmp.Compare(a.key.p, b.key.p))
		})
		slices.SortFunc(got, func(a, b Signal) int {
			return cmp.Or(cmp.Compare(sideIdx(a.Side), sideIdx(b.Side)), cmp.Compare(a.Price, b.Price))
		})
		if len(got) != len(want) {
			t.Fatalf("update %d (t=%d): %d absorption signals, reference %d\n got %+v\nwant %+v", e.u, now, len(got), len(want), got, want)
		}
		for x, g := range got {
			w := want[x]
			side := market.Buy
			if w.key.side == 1 {
				side = market.Sell
			}
			if g.Time != w.time || g.Side != side || int64(g.Price) != w.key.p || g.Volume.Cmp(volOf(w.v)) != 0 ||
				g.Replenished.Cmp(volOf(w.r)) != 0 || int64(g.Resting) != w.resting || g.Threshold.Cmp(volOf(w.thr)) != 0 || g.Since != w.since {
				t.Fatalf("update %d: absorption\n got %+v\nwant %+v", e.u, g, w)
			}
			near(t, "absorption strength", g.Strength, w.strength)
		}
	}
	st := tr.Stats()
	if st.AbsorptionOverflow != 0 || st.PendingOverflow != 0 || st.MissingBefore != 0 {
		t.Fatalf("counters: %+v", st)
	}
	if int64(c.signals) != st.Signals[Absorption] {
		t.Fatalf("%d absorption signals counted, reference %d", st.Signals[Absorption], c.signals)
	}
	return c
}

func (c absCounts) String() string {
	return fmt.Sprintf("%d signals; %d (update, price) evaluations, %d heavy (V >= threshold): %d not replenished, %d level gone, %d already fired",
		c.signals, c.evaluations, c.heavy, c.unreplenished, c.gone, c.refired)
}

// TestAbsorptionRealData runs spot and USD-M BTCUSDT with the default
// thresholds, low ones and an unreachable replenishment; with -short spot
// only, and under the race detector (ten times slower) spot with the
// defaults only.
func TestAbsorptionRealData(t *testing.T) {
	sets := []dataset{datasets[0], datasets[2]}
	if testing.Short() || raceOn {
		sets = sets[:1]
	}
	for _, ds := range sets {
		t.Run(ds.name, func(t *testing.T) {
			t.Run("Defaults", func(t *testing.T) {
				c := replayAbsorption(t, ds, Config{})
				t.Logf("defaults (300%%, 50%% replenished, 10s): %v", c)
				if c.heavy == 0 || c.signals == 0 || c.unreplenished == 0 {
					t.Errorf("want signals and prices hit hard without replenishment: %v", c)
				}
			})
			if raceOn {
				return
			}
			t.Run("LowThresholds", func(t *testing.T) {
				// 100%: V at least the average volume per price of the
				// last minute; 25% replenished: many signals to compare.
				c := replayAbsorption(t, ds, Config{AbsorptionPercent: 100, ReplenishPercent: 25})
				t.Logf("100%%, 25%% replenished: %v", c)
				if c.signals < 10 || c.unreplenished == 0 {
					t.Errorf("want signals and prices hit hard without replenishment: %v", c)
				}
			})
			t.Run("NoReplenishmentNoSignal", func(t *testing.T) {
				// Replenishment of 100x the volume never happens: heavy
				// aggression is seen, nothing fires.
				c := replayAbsorption(t, ds, Config{AbsorptionPercent: 100, ReplenishPercent: 10_000})
				t.Logf("100%%, 10000%% replenished: %v", c)
				if c.signals != 0 || c.heavy == 0 {
					t.Errorf("want heavy prices and no signal: %v", c)
				}
			})
		})
	}
}
