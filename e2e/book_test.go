package e2e

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/client"
)

// The checks of what the dashboard draws from the book side of the API:
// the heatmap preloaded from the book history, the walls on the ladder and
// the heatmap, the combined signals on the price chart. Each compares what
// the page holds with the API's own answers, read here through the Go
// client.

// heldFrame is one heatmap frame as the page holds it.
type heldFrame struct {
	Time     int64        `json:"time"`
	UpdateID int64        `json:"update_id"`
	Src      string       `json:"src"`
	Bids     [][2]float64 `json:"bids"`
	Asks     [][2]float64 `json:"asks"`
}

// frameIDs reads every heatmap frame's time, update id and source.
func frameIDs(t *testing.T, b *browser) []heldFrame {
	t.Helper()
	var raw [][3]any
	b.mustEval(t, `window.__orderflow.frameIds()`, &raw)
	out := make([]heldFrame, len(raw))
	for i, r := range raw {
		out[i] = heldFrame{Time: int64(r[0].(float64)), UpdateID: int64(r[1].(float64)), Src: r[2].(string)}
	}
	return out
}

// checkFramesIncrease checks that the heatmap holds no duplicate and no
// frame out of order: time strictly increases and update ids never go
// back (two history frames a second apart may show the same book), and a
// live read never repeats the update id of the frame before it.
func checkFramesIncrease(t *testing.T, fr []heldFrame) {
	t.Helper()
	for i := 1; i < len(fr); i++ {
		sameBook := fr[i].UpdateID == fr[i-1].UpdateID
		if fr[i].Time <= fr[i-1].Time || fr[i].UpdateID < fr[i-1].UpdateID || (sameBook && fr[i].Src == "live") {
			t.Errorf("heatmap frames %d and %d: time %d -> %d, update id %d -> %d (%s): want time increasing, ids not going back, no live read repeating a book (no duplicate, no overlap)",
				i-1, i, fr[i-1].Time, fr[i].Time, fr[i-1].UpdateID, fr[i].UpdateID, fr[i].Src)
			return
		}
	}
}

// levelsEqual compares the page's [price, qty] numbers with the API's
// decimals, each parsed as a float64 (as the page parses them).
func levelsEqual(t *testing.T, got [][2]float64, want []client.Level) bool {
	t.Helper()
	if len(got) != len(want) {
		return false
	}
	for i, l := range want {
		if got[i][0] != num(t, l.Price) || got[i][1] != num(t, l.Qty) {
			return false
		}
	}
	return true
}

// checkPreload checks, with the replay paused, that the heatmap holds
// exactly the book history the API serves: every frame, with the same
// time, update id and levels, in the same number, and at most one live
// read after them (the book as it stands, if it moved after the last
// frame). On a loaded machine the service may still record a frame after
// the page read the history (settle makes that rare): frames newer than
// the preload are then allowed (and said), and so is the page holding
// frames older than the API's first, if its ring has moved on since; an
// API frame inside the preloaded span that the page lacks never is.
func checkPreload(t *testing.T, b *browser, cl *client.Client, symbol string) {
	t.Helper()
	h, err := cl.BookHistory(context.Background(), symbol, client.BookHistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Frames) == 0 {
		t.Fatalf("%s: the API's book history is empty", symbol)
	}
	var hm struct {
		Preloaded int
		Stored    int
		History   struct {
			Frames   int
			From, To int64
		}
	}
	b.mustEval(t, `window.__orderflow.heatmap()`, &hm)
	if hm.Preloaded == 0 || hm.History.Frames != hm.Preloaded || hm.Stored < hm.Preloaded || hm.Stored > hm.Preloaded+1 {
		t.Errorf("%s heatmap: preloaded %d frames, holds %d (history %d): want all the preloaded ones and at most one live read",
			symbol, hm.Preloaded, hm.Stored, hm.History.Frames)
	}
	var held []heldFrame
	b.mustEval(t, fmt.Sprintf(`window.__orderflow.frames(%d, %d)`, hm.History.From, hm.History.To), &held)
	byTime := map[int64]heldFrame{}
	for _, g := range held {
		byTime[g.Time] = g
	}
	inSpan, newer, rotated := 0, 0, 0
	for i, f := range h.Frames {
		switch {
		case f.Time < hm.History.From:
			t.Errorf("%s: the API's history frame #%d at %d is older than the page's preload (from %d)", symbol, i, f.Time, hm.History.From)
			continue
		case f.Time > hm.History.To:
			newer++
			continue
		}
		inSpan++
		g, ok := byTime[f.Time]
		if !ok {
			t.Errorf("%s: the API's history frame #%d at %d (update %d) is not held", symbol, i, f.Time, f.UpdateID)
			continue
		}
		if g.UpdateID != f.UpdateID || g.Src != "history" || !levelsEqual(t, g.Bids, f.Bids) || !levelsEqual(t, g.Asks, f.Asks) {
			t.Errorf("%s frame #%d: page time %d id %d (%s, %d bids, %d asks), API time %d id %d (%d bids, %d asks)", symbol, i,
				g.Time, g.UpdateID, g.Src, len(g.Bids), len(g.Asks), f.Time, f.UpdateID, len(f.Bids), len(f.Asks))
		}
	}
	for _, g := range held {
		if g.Time < h.Frames[0].Time {
			rotated++
		}
	}
	if inSpan+rotated != hm.Preloaded || len(held) != hm.Preloaded {
		t.Errorf("%s: the page preloaded %d frames (%d held in its span); the API has %d in that span, %d before it rotated out",
			symbol, hm.Preloaded, len(held), inSpan, rotated)
	}
	checkFramesIncrease(t, frameIDs(t, b))
	t.Logf("%s heatmap preloaded %d frames of the book history (%s to %s, %d levels a side), equal to the API's %d in that span "+
		"(API frames recorded since: %d; page frames since rotated out of the API's ring: %d)",
		symbol, hm.Preloaded, time.UnixMilli(hm.History.From).UTC().Format("15:04:05"),
		time.UnixMilli(hm.History.To).UTC().Format("15:04:05"), h.Depth, inSpan, newer, rotated)
}

// settle waits, with the replay paused, until the service has applied
// everything the simulator sent for symbol: its book, last trade and book
// history stay the same for two seconds (on a loaded machine the service
// can still be working through frames sent before the pause).
func settle(t *testing.T, cl *client.Client, symbol string) {
	t.Helper()
	var prev string
	var since time.Time
	waitFor(t, 60*time.Second, symbol+" to settle after the pause", func() (bool, string) {
		ctx := context.Background()
		bk, err := cl.Book(ctx, symbol, client.BookQuery{Depth: 1})
		if err != nil {
			return false, err.Error()
		}
		m, err := cl.Metrics(ctx, symbol, client.MetricsQuery{})
		if err != nil {
			return false, err.Error()
		}
		h, err := cl.BookHistory(ctx, symbol, client.BookHistoryQuery{At: math.MaxInt64, Depth: 1})
		if err != nil {
			return false, err.Error()
		}
		key := fmt.Sprint(bk.UpdateID, m.Totals.LastID, len(h.Frames))
		if len(h.Frames) > 0 {
			key += fmt.Sprint(" ", h.Frames[0].Time)
		}
		if key != prev {
			prev, since = key, time.Now()
		}
		return time.Since(since) >= 2*time.Second, "still moving: " + key
	})
}

// checkSeam checks, after the replay ran on past a preload, that live
// reads continue the history: every history frame the API still has in the
// preloaded span is held once, then live frames follow with later times
// and update ids.
func checkSeam(t *testing.T, b *browser, cl *client.Client, symbol string) {
	t.Helper()
	fr := frameIDs(t, b)
	checkFramesIncrease(t, fr)
	var hist struct{ From, To, FirstID, LastID, Frames int64 }
	b.mustEval(t, `window.__orderflow.heatmap().history`, &hist)
	nHist, nLive := 0, 0
	for _, f := range fr {
		switch {
		case f.Src == "history" && f.Time >= hist.From && f.Time <= hist.To:
			nHist++
		case f.Src == "live" && f.Time > hist.To:
			if f.UpdateID <= hist.LastID {
				t.Errorf("%s live frame at %d has update id %d, not after the history's last %d", symbol, f.Time, f.UpdateID, hist.LastID)
			}
			nLive++
		case f.Time >= hist.From && f.Time <= hist.To:
			t.Errorf("%s: a %s frame at %d inside the history's span [%d, %d]", symbol, f.Src, f.Time, hist.From, hist.To)
		}
	}
	if int64(nHist) != hist.Frames || nLive == 0 {
		t.Errorf("%s heatmap: %d history frames held of %d preloaded, %d live frames after them: want all and some", symbol, nHist, hist.Frames, nLive)
	}
	// The API's history frames of that span still kept (its ring moves on)
	// are the ones the page holds.
	h, err := cl.BookHistory(context.Background(), symbol, client.BookHistoryQuery{From: hist.From, To: hist.To})
	if err != nil {
		t.Fatal(err)
	}
	held := map[int64]int64{}
	for _, f := range fr {
		held[f.Time] = f.UpdateID
	}
	for _, f := range h.Frames {
		if id, ok := held[f.Time]; !ok || id != f.UpdateID {
			t.Errorf("%s: the API's history frame at %d (update %d) is not held (page: %d, %v)", symbol, f.Time, f.UpdateID, id, ok)
		}
	}
	t.Logf("%s heatmap: %d history frames then %d live reads, in order with no duplicate; %d of the history frames still in the API's ring match",
		symbol, nHist, nLive, len(h.Frames))
}

// ladderRow is one row of the book ladder as the page shows it.
type ladderRow struct {
	Side, Price, Qty string
	Extra            bool
	Wall             *struct {
		Qty     string
		StoodMS int64 `json:"stood_ms"`
		Since   int64
		Age     string
	}
}

// checkWalls checks that every current wall of the API is marked on the
// ladder at its price, with its quantity, since and age, and that no other
// row is marked; and that the heatmap drew a line for each wall in its
// price range and listed the others as out of view.
func checkWalls(t *testing.T, b *browser, cl *client.Client, symbol string) {
	t.Helper()
	w, err := cl.Walls(context.Background(), symbol, client.WallsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var ladder struct {
		WallsTime int64
		Rows      []ladderRow
	}
	b.mustEval(t, `window.__orderflow.ladder()`, &ladder)
	if ladder.WallsTime != w.Time {
		t.Fatalf("%s ladder shows walls at %d, the API's are at %d", symbol, ladder.WallsTime, w.Time)
	}
	want := map[string]client.Wall{}
	for _, x := range append(append([]client.Wall{}, w.Bids...), w.Asks...) {
		want[x.Side+" "+string(x.Price)] = x
	}
	marked := 0
	for _, r := range ladder.Rows {
		k := r.Side + " " + r.Price
		a, ok := want[k]
		switch {
		case r.Wall == nil && ok:
			t.Errorf("%s ladder row %s is an API wall but not marked", symbol, k)
		case r.Wall == nil && r.Extra:
			t.Errorf("%s ladder row %s is an extra row without a wall", symbol, k)
		case r.Wall != nil && !ok:
			t.Errorf("%s ladder marks %s as a wall; the API has none there", symbol, k)
		case r.Wall != nil:
			marked++
			if r.Wall.Qty != string(a.Qty) || r.Wall.StoodMS != a.StoodMS || r.Wall.Since != a.Since || r.Wall.Age == "" {
				t.Errorf("%s wall %s: ladder %+v, API qty %s since %d stood %d ms", symbol, k, *r.Wall, a.Qty, a.Since, a.StoodMS)
			}
			if r.Extra && r.Qty != string(a.Qty) {
				t.Errorf("%s extra wall row %s shows qty %s, the wall's is %s", symbol, k, r.Qty, a.Qty)
			}
			delete(want, k)
		}
	}
	for k := range want {
		t.Errorf("%s: API wall %s is not on the ladder", symbol, k)
	}
	// The ladder stays in price order: asks from the highest down, then
	// bids from the highest down.
	sorted := slices.IsSortedFunc(ladder.Rows, func(x, y ladderRow) int {
		if x.Side != y.Side {
			return strings.Compare(x.Side, y.Side) // "ask" before "bid"
		}
		return -compareDec(t, x.Price, y.Price)
	})
	if !sorted {
		t.Errorf("%s ladder rows are not in price order", symbol)
	}

	var hm struct {
		Lo, Hi float64
		Walls  struct {
			Time             int64
			Drawn, OutOfView []struct{ Side, Price string }
			Ended            int
		}
	}
	b.mustEval(t, `window.__orderflow.heatmap()`, &hm)
	if hm.Walls.Time != w.Time {
		t.Fatalf("%s heatmap drew walls at %d, the API's are at %d", symbol, hm.Walls.Time, w.Time)
	}
	seen := map[string]bool{}
	for _, d := range hm.Walls.Drawn {
		p := num(t, client.Decimal(d.Price))
		if p < hm.Lo || p > hm.Hi {
			t.Errorf("%s heatmap drew wall %s %s outside its range [%v, %v]", symbol, d.Side, d.Price, hm.Lo, hm.Hi)
		}
		seen[d.Side+" "+d.Price] = true
	}
	for _, d := range hm.Walls.OutOfView {
		p := num(t, client.Decimal(d.Price))
		if p >= hm.Lo && p <= hm.Hi {
			t.Errorf("%s heatmap left wall %s %s out although it is in its range [%v, %v]", symbol, d.Side, d.Price, hm.Lo, hm.Hi)
		}
		seen[d.Side+" "+d.Price] = true
	}
	n := len(w.Bids) + len(w.Asks)
	if len(seen) != n || len(hm.Walls.Drawn)+len(hm.Walls.OutOfView) != n {
		t.Errorf("%s heatmap accounts for %d walls (%d drawn, %d out of view), the API has %d", symbol, len(seen), len(hm.Walls.Drawn), len(hm.Walls.OutOfView), n)
	}
	for _, x := range append(append([]client.Wall{}, w.Bids...), w.Asks...) {
		if !seen[x.Side+" "+string(x.Price)] {
			t.Errorf("%s heatmap does not account for wall %s %s", symbol, x.Side, x.Price)
		}
	}
	t.Logf("%s walls: %d bid and %d ask walls of the API marked on the ladder (%d rows); heatmap drew %d in its range, %d out of view, %d ended walls",
		symbol, len(w.Bids), len(w.Asks), marked, len(hm.Walls.Drawn), len(hm.Walls.OutOfView), hm.Walls.Ended)
}

// compareDec compares two decimal strings by value.
func compareDec(t *testing.T, a, b string) int {
	t.Helper()
	x, y := num(t, client.Decimal(a)), num(t, client.Decimal(b))
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// markerKinds maps the API's signal kinds marked on the price chart to the
// marker, and whether it points up.
func markerKind(s client.Signal) (kind string, bull, ok bool) {
	switch s.Kind {
	case "bearish_divergence":
		return "div", false, true
	case "bullish_divergence":
		return "div", true, true
	case "high_exhausted":
		return "exh", false, true
	case "low_exhausted":
		return "exh", true, true
	case "absorption":
		return "abs", s.Side == "bid", true
	}
	return "", false, false
}

// checkMarkers checks the price chart's signal markers against the API's
// signals: one marker per bar on the chart, kind and direction, with the
// count of signals it stands for. Book signals (absorption) the API no
// longer keeps (its ring of book signals moves on) may still be held by
// the page, so bars before the oldest book signal the API returned are
// compared for the bar signals only.
func checkMarkers(t *testing.T, b *browser, cl *client.Client, symbol string, bars []client.Bar) {
	t.Helper()
	onChart := map[int64]bool{}
	for _, x := range bars {
		onChart[x.Start] = true
	}
	type key struct {
		Time int64
		Kind string
		Bull bool
	}
	var got map[key]int
	var last string
	waitFor(t, 15*time.Second, symbol+" signal markers equal to the API's", func() (bool, string) {
		sig, err := cl.Signals(context.Background(), symbol, client.SignalsQuery{})
		if err != nil {
			return false, err.Error()
		}
		oldestBook := int64(-1)
		for _, s := range sig.Signals {
			if s.Kind == "absorption" || s.Kind == "wall_pulled" || s.Kind == "wall_filled" {
				if oldestBook < 0 || s.Time < oldestBook {
					oldestBook = s.Time
				}
			}
		}
		want := map[key]int{}
		for _, s := range sig.Signals {
			kind, bull, ok := markerKind(s)
			if !ok {
				continue
			}
			start := s.BarStart
			if start == 0 {
				start = s.Time / 60000 * 60000
			}
			if onChart[start] {
				want[key{start / 1000, kind, bull}]++
			}
		}
		var ms []struct {
			Time int64
			Kind string
			Bull bool
			N    int
		}
		if err := b.eval(`window.__orderflow.markers()`, &ms); err != nil {
			return false, err.Error()
		}
		got = map[key]int{}
		for _, m := range ms {
			got[key{m.Time, m.Kind, m.Bull}] = m.N
		}
		// Bars starting at or before the API's oldest kept book signal:
		// absorption there is not comparable.
		if oldestBook >= 0 {
			for _, m := range [...]map[key]int{got, want} {
				for k := range m {
					if k.Kind == "abs" && k.Time*1000 <= oldestBook {
						delete(m, k)
					}
				}
			}
		}
		diff := []string{}
		for k, n := range want {
			if got[k] != n {
				diff = append(diff, fmt.Sprintf("%s %s bull=%v: API %d, chart %d", time.Unix(k.Time, 0).UTC().Format("15:04"), k.Kind, k.Bull, n, got[k]))
			}
		}
		for k, n := range got {
			if _, ok := want[k]; !ok {
				diff = append(diff, fmt.Sprintf("%s %s bull=%v: API none, chart %d", time.Unix(k.Time, 0).UTC().Format("15:04"), k.Kind, k.Bull, n))
			}
		}
		slices.Sort(diff)
		last = fmt.Sprintf("%d markers compared; differences: %v", len(want), diff)
		return len(diff) == 0, last
	})
	kinds := map[string]int{}
	for k, n := range got {
		kinds[k.Kind] += n
	}
	t.Logf("%s chart markers: %v signals on %d markers, equal to the API's (%s)", symbol, kinds, len(got), last)

	// Hovering a marker's bar shows the tooltip with its definition.
	if len(got) > 0 {
		checkTooltip(t, b)
	}

	// The legend defines every marker kind on the page.
	var legend string
	b.mustEval(t, `[...document.querySelectorAll('#sig-legend span')].map((s) => s.textContent + ': ' + s.title).join('\n')`, &legend)
	for _, k := range []string{"div", "exh", "abs"} {
		if !strings.Contains(legend, k+" ") {
			t.Errorf("the signal legend does not define %q: %q", k, legend)
		}
	}
}

// markerDefinition is how the tooltip's definition of each marker kind
// starts (price.js DEFINITIONS).
var markerDefinition = map[string]string{"div": "Delta divergence", "exh": "Exhausted", "abs": "Absorption"}

// checkTooltip moves the mouse (real input events through the DevTools
// protocol) over the first marker's bar and checks that the tooltip names
// and defines it, then moves the mouse away.
func checkTooltip(t *testing.T, b *browser) {
	t.Helper()
	var ms []struct{ Kind string }
	b.mustEval(t, `window.__orderflow.markers()`, &ms)
	var pt *struct{ X, Y float64 }
	i := 0
	for ; i < len(ms); i++ {
		b.mustEval(t, fmt.Sprintf(`window.__orderflow.markerPoint(%d)`, i), &pt)
		if pt != nil {
			break
		}
	}
	if pt == nil {
		t.Errorf("no signal marker in view to hover (%d markers)", len(ms))
		return
	}
	move := func(x, y float64) {
		b.call(t, "Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": x, "y": y}, nil)
	}
	defer move(1, 1)
	want := markerDefinition[ms[i].Kind]
	var tip string
	waitFor(t, 5*time.Second, "the tooltip of a "+ms[i].Kind+" marker", func() (bool, string) {
		move(pt.X+1, pt.Y) // a move the chart notices each time
		move(pt.X, pt.Y)
		if err := b.eval(`window.__orderflow.tip`, &tip); err != nil {
			return false, err.Error()
		}
		return strings.Contains(tip, want), fmt.Sprintf("tooltip %q, want the definition %q...", tip, want)
	})
	t.Logf("hovering the %s marker shows: %q", ms[i].Kind, tip)
}
