package api_test

import (
	"context"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/market"
)

// The book history and the book metrics (depthflow) through the API,
// against the shared replay: frames against the independent naive book of
// the raw recording, bands and walls recomputed from it, and walls,
// liquidity and signals against depthflow's own values read through the
// engine.

// dec8 writes an API decimal as the reference's 8-decimal text.
func dec8(t *testing.T, d client.Decimal) string {
	t.Helper()
	r, err := d.Rat()
	if err != nil {
		t.Fatalf("decimal %q: %v", d, err)
	}
	return r.FloatString(8)
}

func TestBookHistoryMatchesRecording(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	h, err := f.cl.BookHistory(ctx, "BTCUSDT", client.BookHistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	ref := f.ref.frames
	// The history keeps the last 600 frames (ten minutes at one a second).
	if want := min(600, len(ref)); len(h.Frames) != want || h.Truncated {
		t.Fatalf("%d frames (truncated %v), the recording has %d seconds with diffs: want the last %d",
			len(h.Frames), h.Truncated, len(ref), want)
	}
	ref = ref[len(ref)-len(h.Frames):]
	for i, got := range h.Frames {
		want := ref[i]
		if got.Time != want.time || got.UpdateID != want.updateID {
			t.Fatalf("frame %d at %d (update %d), the recording's at %d (update %d)", i, got.Time, got.UpdateID, want.time, want.updateID)
		}
		for _, side := range []struct {
			name string
			got  []client.Level
			want [][2]string
		}{{"bid", got.Bids, want.bids}, {"ask", got.Asks, want.asks}} {
			if len(side.got) != len(side.want) {
				t.Fatalf("frame %d %s: %d levels, want %d", i, side.name, len(side.got), len(side.want))
			}
			for j, l := range side.got {
				if p, q := dec8(t, l.Price), dec8(t, l.Qty); p != side.want[j][0] || q != side.want[j][1] {
					t.Fatalf("frame %d (%d) %s level %d: %s x %s, recording %s x %s", i, got.Time, side.name, j, p, q,
						side.want[j][0], side.want[j][1])
				}
			}
		}
	}
	// The service's own history holds exactly these.
	if err := f.svc.ViewSymbol("BTCUSDT", func(s *engine.Symbol) error {
		if s.History.Len() != len(h.Frames) {
			t.Errorf("engine history holds %d frames, served %d", s.History.Len(), len(h.Frames))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	mid := len(h.Frames) / 2
	cases := []struct {
		name  string
		q     client.BookHistoryQuery
		first int // index in h.Frames of the first frame expected
		n     int
		depth int
	}{
		{"AtJustBeforeTheNextFrame", client.BookHistoryQuery{At: h.Frames[mid+1].Time - 1}, mid, 1, 20},
		{"AtAFrameTime", client.BookHistoryQuery{At: h.Frames[mid].Time}, mid, 1, 20},
		{"BeforeTheHistory", client.BookHistoryQuery{At: h.Frames[0].Time - 1}, 0, 0, 20},
		{"RangeInclusive", client.BookHistoryQuery{From: h.Frames[10].Time, To: h.Frames[20].Time}, 10, 11, 20},
		{"OpenEndedRange", client.BookHistoryQuery{From: h.Frames[len(h.Frames)-3].Time}, len(h.Frames) - 3, 3, 20},
		{"Depth", client.BookHistoryQuery{From: h.Frames[5].Time, To: h.Frames[6].Time, Depth: 5}, 5, 2, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.cl.BookHistory(ctx, "BTCUSDT", c.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Frames) != c.n {
				t.Fatalf("%d frames, want %d", len(got.Frames), c.n)
			}
			for i, fr := range got.Frames {
				want := h.Frames[c.first+i]
				if fr.Time != want.Time || len(fr.Bids) != c.depth || len(fr.Asks) != c.depth ||
					!slices.Equal(fr.Bids, want.Bids[:c.depth]) || !slices.Equal(fr.Asks, want.Asks[:c.depth]) {
					t.Errorf("frame %d: at %d with %d/%d levels, want the frame at %d with %d", i, fr.Time, len(fr.Bids),
						len(fr.Asks), want.Time, c.depth)
				}
			}
		})
	}
	for _, bad := range []string{"?at=5&from=1", "?from=10&to=5", "?depth=-1", "?depth=x", "?windw=1"} {
		var e apiErr
		if code := f.get(t, "/v1/symbols/BTCUSDT/book/history"+bad, &e); code != http.StatusBadRequest || e.Error.Code != "bad_request" {
			t.Errorf("%s: %d %+v, want 400 bad_request", bad, code, e)
		}
	}
}

// refWalls recomputes the walls of one side of the naive book with
// depthflow's documented rule (see depthflow.Wall) as the fixture
// configures it (depthflowFixture: the entry rule alone, with no notional
// floor, hysteresis or minimum age, so the walls depend on the book now
// and not on its history): levels best first over
// the whole side, each within WallMaxBps of the mid, with quantity*N >=
// K*(sum of its N neighbours). Only levels whose whole neighbourhood lies
// inside the range the service's last snapshot made certain (known: its
// worst price on this side, nil for the whole side) are judged: beyond
// it the service's book and the naive one may differ. It returns the walls
// and the last level judged.
func refWalls(side map[string]*big.Rat, bids bool, mid, known *big.Rat, cfg depthflow.Config) (walls [][2]string, last *big.Rat) {
	ls := topLevels(side, len(side), bids)
	n, N := len(ls), cfg.WallNeighbors
	if n < N+1 {
		return nil, nil
	}
	beyond := func(p, bound *big.Rat) bool {
		c := p.Cmp(bound)
		return (bids && c < 0) || (!bids && c > 0)
	}
	certain := n // levels before this index are inside the known range
	if known != nil {
		for i, l := range ls {
			if beyond(l[0], known) {
				certain = i
				break
			}
		}
	}
	bound := new(big.Rat).Mul(mid, big.NewRat(int64(10000-cfg.WallMaxBps), 10000))
	if !bids {
		bound = new(big.Rat).Mul(mid, big.NewRat(int64(10000+cfg.WallMaxBps), 10000))
	}
	for i, l := range ls {
		lo := max(i-N/2, 0)
		hi := lo + N + 1
		if hi > n {
			hi, lo = n, n-N-1
		}
		if beyond(l[0], bound) || hi > certain {
			break
		}
		last = l[0]
		sum := new(big.Rat)
		for j := lo; j < hi; j++ {
			if j != i {
				sum.Add(sum, ls[j][1])
			}
		}
		lhs := new(big.Rat).Mul(l[1], big.NewRat(int64(N), 1))
		if lhs.Cmp(new(big.Rat).Mul(sum, big.NewRat(cfg.WallFactor, 1))) >= 0 {
			walls = append(walls, [2]string{l[0].FloatString(8), l[1].FloatString(8)})
		}
	}
	return walls, last
}

func TestBookMetricsWallsLiquidity(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	bk, err := f.cl.Book(ctx, "BTCUSDT", client.BookQuery{})
	if err != nil {
		t.Fatal(err)
	}
	walls, err := f.cl.Walls(ctx, "BTCUSDT", client.WallsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	liq, err := f.cl.Liquidity(ctx, "BTCUSDT", client.LiquidityQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// What depthflow itself holds, read through the engine.
	var (
		m          depthflow.Metrics
		bids, asks []depthflow.Wall
		ended      []depthflow.EndedWall
		wins       []depthflow.LiquidityStats
		cfg        depthflow.Config
		readyB     bool
		floor      *big.Rat // the service book's known range (book.KnownRange)
		ceil       *big.Rat
		snapshots  uint64 // snapshots the book was synced from
	)
	if err := f.svc.ViewSymbol("BTCUSDT", func(s *engine.Symbol) error {
		d := s.Depth
		m, cfg, readyB = d.Metrics(), d.Config(), d.WallsReady(market.Buy)
		bids, asks, ended, wins = d.Walls(market.Buy, nil), d.Walls(market.Sell, nil), d.EndedWalls(0, nil), d.LiquidityWindows()
		// Where the service's last snapshot reached: the naive book of the
		// recording is compared only there (a resync's snapshot is cut at
		// its depth limit, so deeper levels differ until they change).
		fl, ce := s.Book().KnownRange()
		snapshots = s.Sync.Stats().Snapshots
		if fl != 0 {
			floor = rat(t, fl.String())
		}
		if ce != math.MaxInt64 {
			ceil = rat(t, ce.String())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("BandsFromTheNaiveBook", func(t *testing.T) {
		// Within the range the service's snapshot made certain (Ready, and
		// inside book.KnownRange) the bands must equal the naive book's;
		// beyond it the book is not certain (levels the snapshot did not
		// reach appear only as they change), so a band reaching there is
		// compared with the book's own sums.
		bm := bk.Metrics
		if bm == nil || !bm.Ready || bm.UpdateID != f.ref.bookID || len(bm.Bands) != len(depthflow.DefaultBands) {
			t.Fatalf("book metrics %+v at the end of a recording at update %d", bm, f.ref.bookID)
		}
		bb := topLevels(f.ref.bids, 1, true)[0][0]
		ba := topLevels(f.ref.asks, 1, false)[0][0]
		mid := new(big.Rat).Quo(new(big.Rat).Add(bb, ba), big.NewRat(2, 1))
		ready := 0
		for i, band := range bm.Bands {
			lo := new(big.Rat).Mul(mid, big.NewRat(int64(10000-band.BPS), 10000))
			hi := new(big.Rat).Mul(mid, big.NewRat(int64(10000+band.BPS), 10000))
			bq, aq := new(big.Rat), new(big.Rat)
			for p, q := range f.ref.bids {
				if rat(t, p).Cmp(lo) >= 0 {
					bq.Add(bq, q)
				}
			}
			for p, q := range f.ref.asks {
				if rat(t, p).Cmp(hi) <= 0 {
					aq.Add(aq, q)
				}
			}
			if band.BPS != depthflow.DefaultBands[i] || band.BPS != bk.Bands[i].BPS {
				t.Fatalf("band %d: %d bps, /book has %d", i, band.BPS, bk.Bands[i].BPS)
			}
			inside := (floor == nil || lo.Cmp(floor) >= 0) && (ceil == nil || hi.Cmp(ceil) <= 0)
			// A band not ready says why: the side(s) its range reaches
			// beyond the known range (from the test's own floor and ceiling
			// when the band is clearly outside).
			if band.Ready != (band.Reason == "") {
				t.Errorf("band %d: ready %v with reason %q", band.BPS, band.Ready, band.Reason)
			}
			if floor != nil && ceil != nil && lo.Cmp(floor) < 0 && hi.Cmp(ceil) > 0 && band.Reason != "both_beyond_known_range" {
				t.Errorf("band %d reaches beyond both ends of the known range, reason %q", band.BPS, band.Reason)
			}
			if !band.Ready || !inside {
				if band.BidQty != bk.Bands[i].BidQty || band.AskQty != bk.Bands[i].AskQty || band.Imbalance != bk.Bands[i].Imbalance {
					t.Errorf("band %d (not ready): %+v, the book's own sums %+v", band.BPS, band, bk.Bands[i])
				}
				continue
			}
			ready++
			eqDec(t, "band bid qty", band.BidQty, bq)
			eqDec(t, "band ask qty", band.AskQty, aq)
			imb := new(big.Rat).Quo(new(big.Rat).Sub(bq, aq), new(big.Rat).Add(bq, aq))
			got, _ := band.Imbalance.Rat()
			if d := new(big.Rat).Sub(got, imb); d.Abs(d).Cmp(big.NewRat(1, 200000000)) > 0 {
				t.Errorf("band %d imbalance %s, want %s", band.BPS, band.Imbalance, imb.FloatString(10))
			}
			// depthflow's own (float) imbalance agrees.
			if df := m.Bands[i].Imbalance; abs(df-imb2f(imb)) > 1e-9 {
				t.Errorf("band %d: depthflow imbalance %v, exact %s", band.BPS, df, imb.FloatString(10))
			}
		}
		// The fixture's snapshots take the simulator's whole book, so the
		// known range reaches well beyond the 10 bps band (asks end near
		// 62,050 on this recording: the 100 bps band is beyond it).
		if ready < 1 {
			t.Errorf("no band inside the known range at the end (floor %v, ceiling %v)", floor, ceil)
		}
		t.Logf("%d of %d bands compared with the naive book", ready, len(bm.Bands))
	})

	t.Run("WallsAsDepthflowHasThem", func(t *testing.T) {
		if walls.Time != m.Time || walls.BidReady != readyB {
			t.Errorf("walls at %d ready %v, depthflow at %d ready %v", walls.Time, walls.BidReady, m.Time, readyB)
		}
		for _, side := range []struct {
			name string
			got  []client.Wall
			want []depthflow.Wall
		}{{"bid", walls.Bids, bids}, {"ask", walls.Asks, asks}} {
			if len(side.got) != len(side.want) {
				t.Fatalf("%s walls: %d served, depthflow has %d", side.name, len(side.got), len(side.want))
			}
			for i, w := range side.got {
				d := side.want[i]
				if w.Side != side.name || w.Price != client.Dec(d.Price) || w.Qty != client.Dec(d.Qty) ||
					w.Since != d.Since || w.StoodMS != d.Updated-d.Since {
					t.Errorf("%s wall %d: %+v, depthflow %+v", side.name, i, w, d)
				}
			}
		}
		if len(walls.Ended) != len(ended) {
			t.Fatalf("%d ended walls, depthflow has %d", len(walls.Ended), len(ended))
		}
		reasons := map[string]int{}
		for i, e := range walls.Ended {
			d := ended[i]
			reasons[e.Reason]++
			if e.Reason != d.Reason.String() || e.End != d.End || e.Price != client.Dec(d.Price) || e.Pulled != client.Vol(d.Pulled) {
				t.Errorf("ended wall %d: %+v, depthflow %+v", i, e, d)
			}
		}
		// The book metrics of /book list the same walls.
		if n := len(bk.Metrics.Walls); n != len(bids)+len(asks) {
			t.Errorf("/book lists %d walls, /walls %d", n, len(bids)+len(asks))
		}
		since := walls.Ended[len(walls.Ended)/2].End
		later, err := f.cl.Walls(ctx, "BTCUSDT", client.WallsQuery{Since: since})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range later.Ended {
			if e.End < since {
				t.Errorf("since %d: ended wall at %d", since, e.End)
			}
		}
		if len(later.Ended) == 0 || len(later.Ended) >= len(walls.Ended) {
			t.Errorf("since %d: %d ended walls of %d", since, len(later.Ended), len(walls.Ended))
		}
		t.Logf("walls now: %d bid, %d ask; %d ended %v", len(bids), len(asks), len(ended), reasons)
	})

	t.Run("WallsFromTheNaiveBook", func(t *testing.T) {
		// Only a ready side is judged entirely inside the range the
		// snapshot made certain, where the naive book is exact.
		if !walls.BidReady && !walls.AskReady {
			// Both sides unready only after the book was synced again from
			// a later snapshot (a resync, or a stale-feed reconnect on a
			// loaded machine: both resync with a snapshot cut at the
			// fixture's depth, nearer the touch), and then each must say
			// it reaches beyond the known range. The levels inside the
			// known range are still judged below.
			if snapshots < 2 || !strings.Contains(walls.BidReason, "known_range") || !strings.Contains(walls.AskReason, "known_range") {
				t.Fatalf("walls of neither side ready at the end (reasons %q, %q) after %d snapshot(s)", walls.BidReason, walls.AskReason, snapshots)
			}
			t.Logf("after %d snapshots no side's wall range is inside the known range (%s, %s)", snapshots, walls.BidReason, walls.AskReason)
		}
		bb := topLevels(f.ref.bids, 1, true)[0][0]
		ba := topLevels(f.ref.asks, 1, false)[0][0]
		mid := new(big.Rat).Quo(new(big.Rat).Add(bb, ba), big.NewRat(2, 1))
		judged := 0
		for _, side := range []struct {
			name  string
			bids  bool
			got   []client.Wall
			naive map[string]*big.Rat
			known *big.Rat
		}{{"bid", true, walls.Bids, f.ref.bids, floor}, {"ask", false, walls.Asks, f.ref.asks, ceil}} {
			// An unready side still reports the walls whose neighbourhood
			// lies inside the known range: those are judged.
			want, last := refWalls(side.naive, side.bids, mid, side.known, cfg)
			if last == nil {
				t.Logf("%s: no level judged inside the known range", side.name)
				continue
			}
			judged++
			var got [][2]string
			for _, w := range side.got {
				p, _ := w.Price.Rat()
				if c := p.Cmp(last); (side.bids && c < 0) || (!side.bids && c > 0) {
					break
				}
				got = append(got, [2]string{dec8(t, w.Price), dec8(t, w.Qty)})
			}
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("%s walls %v, recomputed from the recording %v", side.name, got, want)
			}
			t.Logf("%s: %d walls of %d judged out to %s", side.name, len(got), len(side.got), last.FloatString(2))
		}
		if judged == 0 {
			t.Errorf("no side's walls could be recomputed from the recording")
		}
	})

	t.Run("LiquidityAsDepthflowHasIt", func(t *testing.T) {
		if len(liq.Windows) != len(wins) || len(wins) == 0 {
			t.Fatalf("%d windows served, depthflow has %d", len(liq.Windows), len(wins))
		}
		for i, w := range liq.Windows {
			if w != client.FromLiquidity(&wins[i]) {
				t.Errorf("window %d: %+v, depthflow %+v", i, w, wins[i])
			}
		}
		w := liq.Windows[0]
		// Unready only after a later snapshot (see WallsFromTheNaiveBook)
		// left the touch's band beyond the known range within the minute.
		unready := !w.Ready && (snapshots < 2 || !strings.Contains(w.Reason, "known_range"))
		if w.Window != "1m" || unready || w.Updates == 0 || w.To != m.Time {
			t.Errorf("1m window %+v at the end of the replay (metrics at %d)", w, m.Time)
		}
		one, err := f.cl.Liquidity(ctx, "BTCUSDT", client.LiquidityQuery{Window: "1m"})
		if err != nil || len(one.Windows) != 1 || one.Windows[0] != w {
			t.Errorf("window=1m: %+v, %v", one, err)
		}
		var e apiErr
		if code := f.get(t, "/v1/symbols/BTCUSDT/liquidity?window=7m", &e); code != http.StatusBadRequest {
			t.Errorf("window=7m: %d %+v", code, e)
		}
	})
}

func imb2f(r *big.Rat) float64 { f, _ := r.Float64(); return f }

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestBookSignals(t *testing.T) {
	f := getFixture(t)
	sg, err := f.cl.Signals(context.Background(), "BTCUSDT", client.SignalsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var kept []depthflow.Signal
	if err := f.svc.ViewSymbol("BTCUSDT", func(s *engine.Symbol) error {
		kept = s.Depth.Signals(0, nil)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var want, got []client.Signal
	for i := range kept {
		if client.IsBookSignal(kept[i].Kind) {
			want = append(want, client.FromBookSignal(&kept[i]))
		}
	}
	for i, s := range sg.Signals {
		if i > 0 && s.Time < sg.Signals[i-1].Time {
			t.Errorf("signal %d at %d after one at %d: not in time order", i, s.Time, sg.Signals[i-1].Time)
		}
		if s.BarStart == 0 {
			got = append(got, s)
		}
	}
	if !sg.BookMetrics || len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("book signals served %d, depthflow kept %d (book metrics %v)", len(got), len(want), sg.BookMetrics)
	}
	kinds := map[string]int{}
	for _, s := range got {
		kinds[s.Kind]++
		if s.Side != "bid" && s.Side != "ask" || s.Price == "" || s.Volume == "" || s.Time == 0 {
			t.Errorf("book signal %+v: want side, price, volume and time", s)
		}
	}
	t.Logf("book signals: %v", kinds)
	// The push stream carried every one emitted (SSE subscribed before
	// the replay), so more than depthflow keeps (the last
	// SignalHistory): the newest equal what it keeps.
	var emitted int64
	if err := f.svc.ViewSymbol("BTCUSDT", func(s *engine.Symbol) error {
		st := s.Depth.Stats()
		emitted = st.Signals[depthflow.Absorption] + st.Signals[depthflow.WallPulled] + st.Signals[depthflow.WallFilled]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.sse.mu.Lock()
	defer f.sse.mu.Unlock()
	var pushed []client.Signal
	for _, s := range f.sse.signals {
		if s.BarStart == 0 {
			pushed = append(pushed, s)
		}
	}
	if int64(len(pushed)) != emitted || len(pushed) < len(want) || !slices.Equal(pushed[len(pushed)-len(want):], want) {
		t.Errorf("pushed %d book signals, depthflow emitted %d and keeps %d", len(pushed), emitted, len(want))
	}
}
