package depthflow

import (
	"flag"
	"math"
	"math/big"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// The reference: a map-based book in integer units of 1e-8 (parsed from
// the raw strings by units, not by fixed.Parse), sorted on demand, with
// band and wall bounds decided in math/big.Rat and neighbourhoods summed
// by plain loops. Floats only for the microprice and ratios, compared with
// a relative tolerance of 1e-12 (the tracker divides two exact sums once;
// the reference rounds an exact big.Rat once).
const relTol = 1e-12

var debugMatch = false

type lvl struct{ p, q int64 }

type refBook struct {
	side [2]map[int64]int64 // 0 bids, 1 asks
}

func newRefBook() *refBook {
	return &refBook{side: [2]map[int64]int64{{}, {}}}
}

func (r *refBook) load(e *event) {
	r.side = [2]map[int64]int64{{}, {}}
	for _, l := range e.bids {
		if q := units(l.Q); q != 0 {
			r.side[0][units(l.P)] = q
		}
	}
	for _, l := range e.asks {
		if q := units(l.Q); q != 0 {
			r.side[1][units(l.P)] = q
		}
	}
}

// change is one level of an update as the reference saw it.
type change struct {
	side       int
	p          int64
	prev, cur  int64
	fromUpdate bool
}

func (r *refBook) apply(e *event) []change {
	var out []change
	for s, ls := range [2][]rawLevel{e.bids, e.asks} {
		for _, l := range ls {
			p, q := units(l.P), units(l.Q)
			out = append(out, change{side: s, p: p, prev: r.side[s][p], cur: q, fromUpdate: true})
			if q == 0 {
				delete(r.side[s], p)
			} else {
				r.side[s][p] = q
			}
		}
	}
	return out
}

// sorted returns a side best first.
func (r *refBook) sorted(s int) []lvl {
	out := make([]lvl, 0, len(r.side[s]))
	for p, q := range r.side[s] {
		out = append(out, lvl{p, q})
	}
	sort.Slice(out, func(i, j int) bool {
		if s == 0 {
			return out[i].p > out[j].p
		}
		return out[i].p < out[j].p
	})
	return out
}

func ratU(u int64) *big.Rat { return new(big.Rat).SetFrac64(u, 1) }

// bandBound returns mid*(1 -/+ bps/10000) as an exact rational in units.
func bandBound(bb, ba int64, bps int, ask bool) *big.Rat {
	mid := new(big.Rat).SetFrac(new(big.Int).Add(big.NewInt(bb), big.NewInt(ba)), big.NewInt(2))
	f := big.NewRat(int64(10_000-bps), 10_000)
	if ask {
		f = big.NewRat(int64(10_000+bps), 10_000)
	}
	return mid.Mul(mid, f)
}

// insideN counts the leading levels of a best-first side within bound.
func insideN(ls []lvl, bound *big.Rat, ask bool) int {
	return sort.Search(len(ls), func(i int) bool {
		c := ratU(ls[i].p).Cmp(bound)
		if ask {
			return c > 0
		}
		return c < 0
	})
}

type refWall struct {
	p, q, peak, since, upd int64
	ratio                  float64
}

type refEnd struct {
	side     int
	w        refWall
	q1       int64
	inRange  bool
	decrease bool
	end      int64
}

// refWallRule is the Wall definition's parameters.
type refWallRule struct {
	N       int
	K, H    int64
	minNot  int64 // quote units of 1e-8
	minAgeM int64 // ms
}

// refWalls judges one side's candidates by the Wall definition, with
// explicit loops over each neighbourhood and math/big notionals: the hold
// rule for prices that were candidates at the previous update (prev), the
// entry rule for the others.
func refWalls(ls []lvl, m int, r refWallRule, prev map[int64]refWall) []refWall {
	var out []refWall
	N := r.N
	if len(ls) < N+1 {
		return nil
	}
	for i := 0; i < m; i++ {
		start, end := i-N/2, i+N/2+N%2 // N neighbours plus i itself
		if start < 0 {
			end -= start
			start = 0
		}
		if end > len(ls)-1 {
			start -= end - (len(ls) - 1)
			end = len(ls) - 1
		}
		var sum int64
		for k := start; k <= end; k++ {
			if k != i {
				sum += ls[k].q
			}
		}
		notional := new(big.Int).Mul(big.NewInt(ls[i].p), big.NewInt(ls[i].q)) // 1e-16
		floor := new(big.Int).Mul(big.NewInt(r.minNot), big.NewInt(100_000_000))
		var ok bool
		if _, held := prev[ls[i].p]; held {
			ok = ls[i].q*int64(N)*100 >= r.K*r.H*sum &&
				new(big.Int).Mul(notional, big.NewInt(100)).Cmp(new(big.Int).Mul(floor, big.NewInt(r.H))) >= 0
		} else {
			ok = ls[i].q*int64(N) >= r.K*sum && notional.Cmp(floor) >= 0
		}
		if ok {
			out = append(out, refWall{p: ls[i].p, q: ls[i].q, ratio: float64(ls[i].q) * float64(N) / float64(sum)})
		}
	}
	return out
}

// nsumAt returns the neighbour sum at index i (for the end rule).
func nsumAt(ls []lvl, i, N int) int64 {
	start, end := i-N/2, i+N/2+N%2
	if start < 0 {
		end -= start
		start = 0
	}
	if end > len(ls)-1 {
		start -= end - (len(ls) - 1)
		end = len(ls) - 1
	}
	var sum int64
	for k := start; k <= end; k++ {
		if k != i {
			sum += ls[k].q
		}
	}
	return sum
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if got == want {
		return
	}
	if math.Abs(got-want) > relTol*math.Max(math.Abs(want), 1e-300) {
		t.Fatalf("%s: got %.17g want %.17g", what, got, want)
	}
}

// refUpdate is one applied update, kept for the offline liquidity pass.
type refUpdate struct {
	pos      int // index in the event list
	time     int64
	changes  []change
	bb, ba   int64 // touch before the update; 0 when a side was empty
	liq      LiquidityStats
	haveLiq  bool
	wallEnds []refEnd
}

// allData runs the reference comparison on every bundled recording
// (about 5 minutes on two shared cores); by default it runs on one spot and
// one USD-M recording, and with -short on spot BTCUSDT only.
var allData = flag.Bool("depthflow.all", false, "compare with the reference on every bundled recording")

func TestReferenceRealData(t *testing.T) {
	sets := []dataset{datasets[0], datasets[2]}
	switch {
	case *allData:
		sets = datasets
	case testing.Short(), raceOn:
		sets = sets[:1]
	}
	for _, ds := range sets {
		t.Run(ds.name, func(t *testing.T) { replayAgainstReference(t, ds) })
	}
}

func replayAgainstReference(t *testing.T, ds dataset) {
	evs := load(t, ds)
	if raceOn {
		// The package is single-threaded: under the race detector only the
		// first 40% of the recording (make test runs it whole without -race).
		evs = evs[:len(evs)*2/5]
	}
	const N, K, D = DefaultWallNeighbors, DefaultWallFactor, DefaultWallMaxBps
	rule := refWallRule{N: N, K: K, H: DefaultWallHoldPercent, minNot: int64(DefaultWallMinNotional), minAgeM: DefaultWallMinAge.Milliseconds()}
	tr := New("TEST", Config{EndedWallHistory: 1 << 20})
	bk := book.New()
	ref := newRefBook()

	snapAt := slices.IndexFunc(evs, func(e event) bool { return e.kind == evSnap })
	if snapAt < 0 {
		t.Fatal("no snapshot")
	}
	snap := &evs[snapAt]
	if err := bk.Reset(toSnapshot(snap)); err != nil {
		t.Fatal(err)
	}
	ref.load(snap)
	id, bridged := snap.last, false
	for i := 0; i < snapAt; i++ { // buffered before the snapshot: replay without the tracker
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
	// Reference known range: the worst price of each side of the raw
	// snapshot (what the book was loaded from).
	knownBid, knownAsk := snapKnown(snap)

	var ups []refUpdate
	prevWalls := [2][]refWall{}
	var checkedBands, checkedWalls, wallCount, candidates int
	for i := snapAt + 1; i < len(evs); i++ {
		e := &evs[i]
		switch e.kind {
		case evTrade:
			trd := toTrade(e)
			if err := tr.OnTrade(&trd); err != nil {
				t.Fatal(err)
			}
			continue
		case evDepth:
		default:
			continue
		}
		if stale(ds.kind, e, id, bridged) {
			continue
		}
		if n := len(ups); n > 0 { // capture the state after update n-1 and its trades
			ups[n-1].liq, ups[n-1].haveLiq = tr.Liquidity(time.Minute)
		}
		u := toUpdate(e)
		sb, sa := ref.sorted(0), ref.sorted(1)
		ru := refUpdate{pos: i, time: uTime(e)}
		if len(sb) > 0 {
			ru.bb = sb[0].p
		}
		if len(sa) > 0 {
			ru.ba = sa[0].p
		}
		tr.BeforeDepth(u, bk)
		if err := bk.ApplyUpdate(u); err != nil {
			t.Fatal(err)
		}
		if err := tr.OnDepth(u, bk); err != nil {
			t.Fatal(err)
		}
		ru.changes = ref.apply(e)
		id, bridged = e.u, true
		sb, sa = ref.sorted(0), ref.sorted(1)
		now := uTime(e)

		// Book metrics, every update.
		m := tr.Metrics()
		if len(sb) == 0 || len(sa) == 0 {
			t.Fatalf("update %d: a side is empty", e.u)
		}
		bb, ba := sb[0], sa[0]
		if !m.Ready || int64(m.BestBid.Price) != bb.p || int64(m.BestBid.Qty) != bb.q || int64(m.BestAsk.Price) != ba.p || int64(m.BestAsk.Qty) != ba.q {
			t.Fatalf("update %d: touch %v/%v, reference %v/%v", e.u, m.BestBid, m.BestAsk, bb, ba)
		}
		if int64(m.Spread) != ba.p-bb.p {
			t.Fatalf("update %d: spread %v want %d", e.u, m.Spread, ba.p-bb.p)
		}
		if mid := new(big.Int).Mul(big.NewInt(bb.p+ba.p), big.NewInt(5)); m.Mid.Big().Cmp(mid) != 0 {
			t.Fatalf("update %d: mid %v want %v", e.u, m.Mid, mid)
		}
		mp := new(big.Rat).SetFrac(
			new(big.Int).Add(new(big.Int).Mul(big.NewInt(bb.p), big.NewInt(ba.q)), new(big.Int).Mul(big.NewInt(ba.p), big.NewInt(bb.q))),
			new(big.Int).Mul(big.NewInt(bb.q+ba.q), big.NewInt(100_000_000)))
		mpf, _ := mp.Float64()
		near(t, "microprice", m.Microprice, mpf)
		for k, bps := range DefaultBands {
			bd := m.Bands[k]
			lb, la := bandBound(bb.p, ba.p, bps, false), bandBound(bb.p, ba.p, bps, true)
			nb, na := insideN(sb, lb, false), insideN(sa, la, true)
			var sumB, sumA int64
			for _, l := range sb[:nb] {
				sumB += l.q
			}
			for _, l := range sa[:na] {
				sumA += l.q
			}
			if bd.Bps != bps || bd.BidLevels != nb || bd.AskLevels != na || bd.BidQty.String() != fixed.Dec(sumB).String() || bd.AskQty.String() != fixed.Dec(sumA).String() {
				t.Fatalf("update %d band %d: %+v, reference %d levels %d / %d levels %d", e.u, bps, bd, nb, sumB, na, sumA)
			}
			want := 0.0
			if sumB+sumA > 0 {
				want, _ = big.NewRat(sumB-sumA, sumB+sumA).Float64()
			}
			near(t, "imbalance", bd.Imbalance, want)
			// Known: every price at or beyond the bound is known.
			readyB, readyA := bandKnown(lb, la, knownBid, knownAsk)
			if bd.Ready != (readyB && readyA) || bd.Reason != wantReason(readyB, readyA) {
				t.Fatalf("update %d band %d: ready %v (%v), reference %v/%v", e.u, bps, bd.Ready, bd.Reason, readyB, readyA)
			}
			checkedBands++
		}

		// Walls, every update, both sides.
		for s, ls := range [2][]lvl{sb, sa} {
			lb := bandBound(bb.p, ba.p, D, s == 1)
			m := insideN(ls, lb, s == 1)
			// and with its whole neighbourhood within the known range
			nKnown := sort.Search(len(ls), func(i int) bool {
				if s == 0 {
					return ls[i].p < knownBid
				}
				return ls[i].p > knownAsk
			})
			judged := 0
			for judged < m && judged < nKnown && nbLast(judged, len(ls), N) < nKnown {
				judged++
			}
			wantReady := len(ls) > N && judged == m && (s == 0 && lb.Cmp(ratU(knownBid-1)) > 0 || s == 1 && (knownAsk == math.MaxInt64 || lb.Cmp(ratU(knownAsk+1)) < 0))
			if len(ls) <= N {
				judged = 0
			}
			m = judged
			prev := map[int64]refWall{}
			for _, w := range prevWalls[s] {
				prev[w.p] = w
			}
			cur := refWalls(ls, m, rule, prev)
			if len(cur) > DefaultMaxWalls {
				cur = cur[:DefaultMaxWalls]
			}
			// Carry Since and PeakQty; collect ends.
			curSet := map[int64]bool{}
			for j := range cur {
				curSet[cur[j].p] = true
				cur[j].upd = now
				if o, ok := prev[cur[j].p]; ok {
					cur[j].since, cur[j].peak = o.since, max(o.peak, cur[j].q)
				} else {
					cur[j].since, cur[j].peak = now, cur[j].q
				}
			}
			for _, w := range prevWalls[s] {
				if curSet[w.p] {
					continue
				}
				q1 := ref.side[s][w.p]
				inR := slices.ContainsFunc(ls[:m], func(l lvl) bool { return l.p == w.p })
				dec := q1 == 0
				if !dec && q1 < w.q && inR {
					idx := slices.IndexFunc(ls[:m], func(l lvl) bool { return l.p == w.p })
					if idx >= 0 && len(ls) >= N+1 {
						dec = w.q*int64(N)*100 >= K*rule.H*nsumAt(ls, idx, N)
					}
				}
				ru.wallEnds = append(ru.wallEnds, refEnd{side: s, w: w, q1: q1, inRange: inR, decrease: dec, end: now})
			}
			prevWalls[s] = cur
			side := market.Buy
			if s == 1 {
				side = market.Sell
			}
			if tr.WallsReady(side) != wantReady {
				t.Fatalf("update %d side %d: walls ready %v (%v), reference %v (judged %d of %d in range)", e.u, s, tr.WallsReady(side), tr.WallsNotReady(side), wantReady, judged, insideN(ls, lb, s == 1))
			}
			got := tr.Walls(side, nil)
			var listed []refWall // announced: stood WallMinAge
			for _, c := range cur {
				if c.upd-c.since >= rule.minAgeM {
					listed = append(listed, c)
				}
			}
			if len(got) != len(listed) {
				t.Fatalf("update %d side %d: %d walls, reference %d\n got %v\nwant %v", e.u, s, len(got), len(listed), got, listed)
			}
			candidates += len(cur)
			for j, w := range got {
				c := listed[j]
				if int64(w.Price) != c.p || int64(w.Qty) != c.q || w.Since != c.since || int64(w.PeakQty) != c.peak || w.Updated != now {
					t.Fatalf("update %d side %d wall %d: %+v, reference %+v", e.u, s, j, w, c)
				}
				near(t, "wall ratio", w.Ratio, c.ratio)
			}
			wallCount += len(listed)
			checkedWalls++
		}
		ups = append(ups, ru)
	}
	if n := len(ups); n > 0 {
		ups[n-1].liq, ups[n-1].haveLiq = tr.Liquidity(time.Minute)
	}
	st := tr.Stats()
	if st.MissingBefore != 0 || st.PendingOverflow != 0 || st.AbsorptionOverflow != 0 || st.WallOverflow != 0 {
		t.Fatalf("unexpected counters: %+v", st)
	}

	// Offline pass: match every trade to its update, then liquidity.
	traded := make([]map[[2]int64]int64, len(ups)) // per update: (side, price) -> volume
	for j := range traded {
		traded[j] = map[[2]int64]int64{}
	}
	last := -1 // last update applied before the current event
	next := 0  // next update in receive order
	matched, hit := 0, 0
	for i := snapAt + 1; i < len(evs); i++ {
		for next < len(ups) && ups[next].pos < i {
			last = next
			next++
		}
		e := &evs[i]
		if e.kind != evTrade {
			continue
		}
		side := int64(1) // taker buy hits the asks
		if e.buyerMaker {
			side = 0
		}
		j := -1
		if last >= 0 && e.T <= ups[last].time && slices.ContainsFunc(ups[last].changes, func(c change) bool {
			return int64(c.side) == side && c.p == units(e.p)
		}) {
			j = last
		} else {
			for k := next; k < len(ups); k++ {
				if ups[k].time >= e.T {
					j = k
					break
				}
			}
		}
		if j < 0 {
			continue
		}
		key := [2]int64{side, units(e.p)}
		traded[j][key] += units(e.q)
		matched++
		if slices.ContainsFunc(ups[j].changes, func(c change) bool { return int64(c.side) == side && c.p == key[1] }) {
			hit++
		} else if debugMatch {
			t.Logf("miss: trade T=%d side %d p %d assigned %d (time %d) last %d (time %d)", e.T, side, key[1], j, ups[j].time, last, ups[max(last, 0)].time)
		}
	}
	t.Logf("%s: %d updates, %d band checks, %d wall-side checks (%.1f walls a side), %d trades matched, %.2f%% in an update changing their level, late %d",
		ds.name, len(ups), checkedBands, checkedWalls, float64(wallCount)/float64(max(checkedWalls, 1)), matched, 100*float64(hit)/float64(max(matched, 1)), st.LateTrades)

	type sums struct{ add, pull, fill [2]int64 }
	perSec := map[int64]*sums{}
	perSecUpdates := map[int64]int64{}
	perSecBeyond := map[int64]int64{}
	cover := ups[0].time
	X := int64(DefaultTouchBps)
	for j := range ups {
		u := &ups[j]
		sec := u.time / 1000
		perSecUpdates[sec]++
		// Did the near range reach past the known range?
		nearBid := func(p int64) bool {
			return u.bb != 0 && new(big.Rat).Mul(ratU(u.bb), big.NewRat(10_000-X, 10_000)).Cmp(ratU(p)) <= 0
		}
		nearAsk := func(p int64) bool {
			return u.ba != 0 && new(big.Rat).Mul(ratU(u.ba), big.NewRat(10_000+X, 10_000)).Cmp(ratU(p)) >= 0
		}
		if knownBid > 0 && nearBid(knownBid-1) || knownAsk < math.MaxInt64 && nearAsk(knownAsk+1) {
			perSecBeyond[sec]++
		}
		s := perSec[sec]
		if s == nil {
			s = &sums{}
			perSec[sec] = s
		}
		// Union of changed and traded levels.
		lv := map[[2]int64]*change{}
		for k := range u.changes {
			c := u.changes[k]
			lv[[2]int64{int64(c.side), c.p}] = &c
		}
		for key := range traded[j] {
			if _, ok := lv[key]; !ok {
				lv[key] = &change{side: int(key[0]), p: key[1]}
			}
		}
		for key, c := range lv {
			v := traded[j][key]
			var isNear bool
			if c.side == 0 {
				isNear = u.bb != 0 && new(big.Rat).Mul(ratU(u.bb), big.NewRat(10_000-X, 10_000)).Cmp(ratU(c.p)) <= 0
			} else {
				isNear = u.ba != 0 && new(big.Rat).Mul(ratU(u.ba), big.NewRat(10_000+X, 10_000)).Cmp(ratU(c.p)) >= 0
			}
			if !isNear {
				continue
			}
			n := c.cur - c.prev + v
			if n > 0 {
				s.add[c.side] += n
			} else {
				s.pull[c.side] -= n
			}
			s.fill[c.side] += v
		}
		// The window at update j.
		var w sums
		var nUp, nBeyond int64
		nowSec := u.time / 1000
		for k := nowSec - 59; k <= nowSec; k++ {
			if x := perSec[k]; x != nil {
				for i := range 2 {
					w.add[i] += x.add[i]
					w.pull[i] += x.pull[i]
					w.fill[i] += x.fill[i]
				}
			}
			nUp += perSecUpdates[k]
			nBeyond += perSecBeyond[k]
		}
		got := u.liq
		if !u.haveLiq {
			t.Fatal("liquidity window missing")
		}
		want := LiquidityStats{Window: time.Minute, From: (nowSec - 59) * 1000, To: u.time, Ready: cover <= (nowSec-59)*1000 && nBeyond == 0, Updates: nUp}
		str := func(x int64) string { return fixed.Dec(x).String() }
		if got.From != want.From || got.To != want.To || got.Ready != want.Ready || got.Updates != want.Updates ||
			got.BidAdded.String() != str(w.add[0]) || got.BidPulled.String() != str(w.pull[0]) || got.BidFilled.String() != str(w.fill[0]) ||
			got.AskAdded.String() != str(w.add[1]) || got.AskPulled.String() != str(w.pull[1]) || got.AskFilled.String() != str(w.fill[1]) {
			t.Fatalf("update %d (t=%d): liquidity\n got %+v\nwant %+v add %v pull %v fill %v", j, u.time, got, want, w.add, w.pull, w.fill)
		}
	}

	// Wall ends, classified with the matched trades.
	var wantEnds []EndedWall
	signals, unannounced := 0, 0
	for j := range ups {
		if j == len(ups)-1 {
			break // classified only when a next update arrives
		}
		for _, re := range ups[j].wallEnds {
			if re.w.upd-re.w.since < rule.minAgeM {
				unannounced++
				continue
			}
			side := market.Buy
			if re.side == 1 {
				side = market.Sell
			}
			e := EndedWall{Wall: Wall{Side: side, Price: fixed.Dec(re.w.p), Qty: fixed.Dec(re.w.q), PeakQty: fixed.Dec(re.w.peak), Since: re.w.since},
				End: re.end, FinalQty: fixed.Dec(re.q1)}
			switch {
			case re.decrease:
				d := re.w.q - re.q1
				f := min(traded[j][[2]int64{int64(re.side), re.w.p}], d)
				c := d - f
				e.Pulled, e.Filled = volOf(c), volOf(f)
				e.Reason = WallEndFilled
				if c > f {
					e.Reason = WallEndPulled
				}
				signals++
			case !re.inRange:
				e.Reason = WallEndOutOfRange
			default:
				e.Reason = WallEndDiluted
			}
			wantEnds = append(wantEnds, e)
		}
	}
	gotEnds := tr.EndedWalls(math.MinInt64, nil)
	if len(gotEnds) != len(wantEnds) {
		t.Fatalf("%d ended walls, reference %d", len(gotEnds), len(wantEnds))
	}
	reasons := map[WallEnd]int{}
	for i, g := range gotEnds {
		w := wantEnds[i]
		if g.Side != w.Side || g.Price != w.Price || g.Qty != w.Qty || g.PeakQty != w.PeakQty || g.Since != w.Since || g.End != w.End ||
			g.Reason != w.Reason || g.FinalQty != w.FinalQty || g.Pulled.Cmp(w.Pulled) != 0 || g.Filled.Cmp(w.Filled) != 0 {
			t.Fatalf("ended wall %d:\n got %+v\nwant %+v", i, g, w)
		}
		reasons[g.Reason]++
	}
	if got := st.Signals[WallPulled] + st.Signals[WallFilled]; got != int64(signals) {
		t.Fatalf("%d wall signals, reference %d", got, signals)
	}
	if got := tr.Stats().WallsUnannounced; got != int64(unannounced) {
		t.Fatalf("%d unannounced candidates, reference %d", got, unannounced)
	}
	t.Logf("%s: %d ended walls by reason %v; %d wall signals; %d candidates ended unannounced; %.1f candidates a side",
		ds.name, len(gotEnds), reasons, signals, unannounced, float64(candidates)/float64(max(checkedWalls, 1)))
}

func volOf(x int64) flowVolume { return flowVolume(fixed.I128(x)) }

// snapKnown returns the worst bid and ask price of a raw snapshot (0 and
// MaxInt64 for an empty side): what the book knows after loading it.
func snapKnown(e *event) (bid, ask int64) {
	bid, ask = 0, math.MaxInt64
	first := true
	for _, l := range e.bids {
		if p := units(l.P); units(l.Q) != 0 && (first || p < bid) {
			bid, first = p, false
		}
	}
	first = true
	for _, l := range e.asks {
		if p := units(l.P); units(l.Q) != 0 && (first || p > ask) {
			ask, first = p, false
		}
	}
	return bid, ask
}

// bandKnown says whether a band with bounds lb (bids at or above) and la
// (asks at or below) lies inside the known range on each side: the price
// one unit beyond the known range is outside the band.
func bandKnown(lb, la *big.Rat, knownBid, knownAsk int64) (bidOK, askOK bool) {
	bidOK = knownBid == 0 || lb.Cmp(ratU(knownBid-1)) > 0
	askOK = knownAsk == math.MaxInt64 || la.Cmp(ratU(knownAsk+1)) < 0
	return bidOK, askOK
}

func wantReason(bidOK, askOK bool) NotReady {
	switch {
	case !bidOK && !askOK:
		return NotReadyBothUnknown
	case !bidOK:
		return NotReadyBidsUnknown
	case !askOK:
		return NotReadyAsksUnknown
	}
	return 0
}

// nbLast returns the index of the deepest level in the neighbourhood of
// level i among n (N neighbours, centred, shifted to stay within 0..n-1).
func nbLast(i, n, N int) int {
	start, end := i-N/2, i+N/2+N%2
	if start < 0 {
		end -= start
	}
	return min(end, n-1)
}
