package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/mcpserver"
)

func TestStatusSymbolsHealth(t *testing.T) {
	f := getFixture(t)
	n := int64(len(f.ref.trades))
	st, err := f.cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "running" || len(st.Symbols) != 1 || st.Symbols[0].Trades != n || !st.Symbols[0].BookSynced {
		t.Fatalf("status %+v, want running with BTCUSDT synced and %d trades", st, n)
	}
	if st.Engine["DecodeErrors"] != 0 || st.Engine["Frames"] == 0 {
		t.Errorf("engine counters %v", st.Engine)
	}
	syms, err := f.cl.Symbols(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	last := f.ref.trades[len(f.ref.trades)-1]
	if len(syms.Symbols) != 1 || syms.Symbols[0].Symbol != "BTCUSDT" || syms.Symbols[0].Trades != n || syms.Symbols[0].LastTime != last.t {
		t.Fatalf("symbols %+v", syms)
	}
	eqDec(t, "last", syms.Symbols[0].Last, last.price)
	ready, err := f.cl.Ready(context.Background())
	if err != nil || !ready {
		t.Fatalf("ready %v, %v", ready, err)
	}
	// /healthz needs no token; everything else does.
	resp, err := http.Get(f.http.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz without token: %d", resp.StatusCode)
	}
	resp, err = http.Get(f.http.URL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status without token: %d, want 401", resp.StatusCode)
	}
}

func TestMetricsMatchRecording(t *testing.T) {
	f := getFixture(t)
	ref := f.ref
	m, err := f.cl.Metrics(context.Background(), "btcusdt", client.MetricsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Totals.Trades != int64(len(ref.trades)) {
		t.Errorf("trades %d, want %d", m.Totals.Trades, len(ref.trades))
	}
	eqDec(t, "buy_volume", m.Totals.BuyVolume, ref.buyVol)
	eqDec(t, "sell_volume", m.Totals.SellVolume, ref.sellVol)
	eqDec(t, "delta", m.Totals.Delta, new(big.Rat).Sub(ref.buyVol, ref.sellVol))
	if got := len(m.Windows); got != 4 {
		t.Fatalf("windows %d, want the 4 defaults", got)
	}
	// Each window against the trades whose time lies in [Start, End].
	for _, w := range m.Windows {
		var cnt int64
		buy, sell := new(big.Rat), new(big.Rat)
		for _, tr := range ref.trades {
			if tr.t >= w.Start && tr.t <= w.End {
				cnt++
				if tr.buy {
					buy.Add(buy, tr.qty)
				} else {
					sell.Add(sell, tr.qty)
				}
			}
		}
		if w.Trades != cnt {
			t.Errorf("window %s: trades %d, want %d", w.Window, w.Trades, cnt)
		}
		eqDec(t, "window "+w.Window+" delta", w.Delta, new(big.Rat).Sub(buy, sell))
		covered := time.Duration(w.CoveredMS) * time.Millisecond
		// The recording spans about 10m50s of trades: 1m and 5m are full.
		wantReady := w.Window == "1m" || w.Window == "5m"
		if w.Ready != wantReady {
			t.Errorf("window %s: ready %v (covered %v), want %v", w.Window, w.Ready, covered, wantReady)
		}
	}
	one, err := f.cl.Metrics(context.Background(), "BTCUSDT", client.MetricsQuery{Window: "5m"})
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Windows) != 1 || !reflect.DeepEqual(one.Windows[0], m.Windows[1]) {
		t.Errorf("window=5m gave %+v, want %+v", one.Windows, m.Windows[1])
	}
}

func TestBarsMatchRecording(t *testing.T) {
	f := getFixture(t)
	bars, err := f.cl.Bars(context.Background(), "BTCUSDT", client.BarsQuery{Interval: "1m", Limit: 120, Footprint: true})
	if err != nil {
		t.Fatal(err)
	}
	if bars.Current == nil {
		t.Fatal("no open bar after the replay")
	}
	all := append(slices.Clone(bars.Bars), *bars.Current)
	if len(all) != len(f.ref.minutes) {
		t.Fatalf("%d bars (closed and open), the recording has %d minutes of trades", len(all), len(f.ref.minutes))
	}
	for _, b := range all {
		rb := f.ref.minutes[b.Start]
		if rb == nil {
			t.Fatalf("bar %d: no such minute in the recording", b.Start)
		}
		if b.Trades != rb.trades {
			t.Errorf("bar %d: trades %d, want %d", b.Start, b.Trades, rb.trades)
		}
		eqDec(t, "bar buy volume", b.BuyVolume, rb.buyVol)
		eqDec(t, "bar sell volume", b.SellVolume, rb.sellVol)
		eqDec(t, "bar delta", b.Delta, new(big.Rat).Sub(rb.buyVol, rb.sellVol))
		// The footprint splits the same volume by price.
		fb, fs := new(big.Rat), new(big.Rat)
		for _, l := range b.Footprint {
			x, _ := l.BuyVolume.Rat()
			y, _ := l.SellVolume.Rat()
			fb.Add(fb, x)
			fs.Add(fs, y)
		}
		eqDec(t, "footprint buy volume", client.Decimal(fb.FloatString(8)), rb.buyVol)
		eqDec(t, "footprint sell volume", client.Decimal(fs.FloatString(8)), rb.sellVol)
	}
	// Pushed closed bars (SSE) equal the ones served.
	f.sse.mu.Lock()
	defer f.sse.mu.Unlock()
	if len(f.sse.closed) != len(bars.Bars) {
		t.Errorf("SSE got %d closed bars, API has %d", len(f.sse.closed), len(bars.Bars))
	}
	for _, b := range bars.Bars {
		p, ok := f.sse.closed[b.Start]
		b.Footprint = nil
		if !ok || p.Trades != b.Trades || p.Delta != b.Delta || p.CVD != b.CVD || p.POC != b.POC {
			t.Errorf("pushed bar %d = %+v, want %+v", b.Start, p, b)
		}
	}
	if f.sse.open == 0 {
		t.Error("no open-bar update was pushed")
	}
}

func TestProfile(t *testing.T) {
	f := getFixture(t)
	p, err := f.cl.Profile(context.Background(), "BTCUSDT", client.ProfileQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// The session is the UTC day; the recording crosses midnight, so the
	// session holds the trades from 2024-08-09 00:00 on.
	if p.From != 1723161600000 || p.To != p.From+86400000 {
		t.Fatalf("session [%d, %d), want the UTC day 2024-08-09", p.From, p.To)
	}
	sess := new(big.Rat)
	for _, tr := range f.ref.trades {
		if tr.t >= p.From {
			sess.Add(sess, tr.qty)
		}
	}
	eqDec(t, "session volume", p.Volume, sess)
	// One minute's profile holds that minute's volume.
	var start int64
	for m := range f.ref.minutes {
		if start == 0 || m < start {
			start = m
		}
	}
	start += 2 * 60000
	p1, err := f.cl.Profile(context.Background(), "BTCUSDT", client.ProfileQuery{From: start, To: start + 60000})
	if err != nil {
		t.Fatal(err)
	}
	rb := f.ref.minutes[start]
	eqDec(t, "minute profile volume", p1.Volume, new(big.Rat).Add(rb.buyVol, rb.sellVol))
	va, _ := p1.ValueAreaVolume.Rat()
	tot, _ := p1.Volume.Rat()
	if va.Cmp(new(big.Rat).Mul(tot, big.NewRat(7, 10))) < 0 {
		t.Errorf("value area volume %s below 70%% of %s", p1.ValueAreaVolume, p1.Volume)
	}
}

func TestLargeTradesAndFilteredTrades(t *testing.T) {
	f := getFixture(t)
	min := new(big.Rat).SetInt64(100000)
	var refIDs []int64
	for _, tr := range f.ref.trades {
		if tr.notional.Cmp(min) >= 0 {
			refIDs = append(refIDs, tr.id)
		}
	}
	if len(refIDs) == 0 {
		t.Fatal("the reference finds no trade of 100,000 USDT or more")
	}
	lt, err := f.cl.LargeTrades(context.Background(), "BTCUSDT", client.LargeTradesQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var byNotional []int64
	for _, l := range lt.Trades {
		if l.ByNotional {
			byNotional = append(byNotional, l.ID)
		}
	}
	if len(lt.Trades) < 1000 && !slices.Equal(byNotional, refIDs) {
		t.Errorf("large by notional %v, reference %v", byNotional, refIDs)
	}
	// The pushed large trades are the same list.
	f.sse.mu.Lock()
	var pushed []int64
	for _, l := range f.sse.large {
		pushed = append(pushed, l.ID)
	}
	f.sse.mu.Unlock()
	var served []int64
	for _, l := range lt.Trades {
		served = append(served, l.ID)
	}
	if !slices.Equal(pushed, served) {
		t.Errorf("pushed large trades %d, served %d", len(pushed), len(served))
	}

	// /trades keeps the last 10,000 trades (the history size).
	tr, err := f.cl.Trades(context.Background(), "BTCUSDT", client.TradesQuery{MinNotional: largeNotional, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	hist := f.ref.trades[len(f.ref.trades)-10000:]
	var want []int64
	for _, r := range hist {
		if r.notional.Cmp(min) >= 0 {
			want = append(want, r.id)
		}
	}
	var got []int64
	for _, x := range tr.Trades {
		got = append(got, x.ID)
	}
	if !slices.Equal(got, want) || tr.Count != len(want) {
		t.Errorf("trades min_notional=100000: %v, want %v", got, want)
	}
	buys, err := f.cl.Trades(context.Background(), "BTCUSDT", client.TradesQuery{Side: "buy", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	nb := 0
	for _, r := range hist {
		if r.buy {
			nb++
		}
	}
	if buys.Count != nb {
		t.Errorf("taker buys in the history: %d, want %d", buys.Count, nb)
	}
	last := hist[len(hist)-1]
	recent, err := f.cl.Trades(context.Background(), "BTCUSDT", client.TradesQuery{From: last.t, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(recent.Trades) == 0 || recent.Trades[len(recent.Trades)-1].ID != last.id {
		t.Fatalf("from=%d: %+v", last.t, recent.Trades)
	}
	x := recent.Trades[len(recent.Trades)-1]
	eqDec(t, "last price", x.Price, last.price)
	eqDec(t, "last qty", x.Qty, last.qty)
	eqDec(t, "last notional", x.Notional, last.notional)
}

func TestBookMatchesRecording(t *testing.T) {
	f := getFixture(t)
	bk, err := f.cl.Book(context.Background(), "BTCUSDT", client.BookQuery{Depth: 1000, Bands: []int{10, 25}})
	if err != nil {
		t.Fatal(err)
	}
	if !bk.Synced || bk.UpdateID != f.ref.bookID {
		t.Fatalf("book synced %v at %d, the recording ends at %d", bk.Synced, bk.UpdateID, f.ref.bookID)
	}
	for _, side := range []struct {
		name string
		got  []client.Level
		want [][2]*big.Rat
	}{{"bid", bk.Bids, topLevels(f.ref.bids, 5, true)}, {"ask", bk.Asks, topLevels(f.ref.asks, 5, false)}} {
		for i, l := range side.want {
			eqDec(t, side.name+" price", side.got[i].Price, l[0])
			eqDec(t, side.name+" qty", side.got[i].Qty, l[1])
		}
	}
	bb, _ := bk.BestBid.Price.Rat()
	ba, _ := bk.BestAsk.Price.Rat()
	mid := new(big.Rat).Quo(new(big.Rat).Add(bb, ba), big.NewRat(2, 1))
	eqDec(t, "mid", bk.Mid, mid)
	eqDec(t, "spread", bk.Spread, new(big.Rat).Sub(ba, bb))
	// Bands recomputed from the levels served.
	for _, band := range bk.Bands {
		lo := new(big.Rat).Mul(mid, big.NewRat(int64(10000-band.BPS), 10000))
		hi := new(big.Rat).Mul(mid, big.NewRat(int64(10000+band.BPS), 10000))
		bq, aq := new(big.Rat), new(big.Rat)
		for _, l := range bk.Bids {
			p, _ := l.Price.Rat()
			if p.Cmp(lo) >= 0 {
				q, _ := l.Qty.Rat()
				bq.Add(bq, q)
			}
		}
		for _, l := range bk.Asks {
			p, _ := l.Price.Rat()
			if p.Cmp(hi) <= 0 {
				q, _ := l.Qty.Rat()
				aq.Add(aq, q)
			}
		}
		eqDec(t, "band bid qty", band.BidQty, bq)
		eqDec(t, "band ask qty", band.AskQty, aq)
		imb := new(big.Rat).Quo(new(big.Rat).Sub(bq, aq), new(big.Rat).Add(bq, aq))
		got, _ := band.Imbalance.Rat()
		if d := new(big.Rat).Sub(got, imb); d.Abs(d).Cmp(big.NewRat(1, 200000000)) > 0 {
			t.Errorf("band %d imbalance %s, want %s", band.BPS, band.Imbalance, imb.FloatString(10))
		}
	}
	// The WebSocket client got book tops, the last one the same book.
	f.ws.mu.Lock()
	defer f.ws.mu.Unlock()
	if f.ws.err != nil || f.ws.books == 0 || f.ws.closed == 0 || f.ws.other != 0 {
		t.Fatalf("websocket: %d books, %d closed bars, %d others, err %v", f.ws.books, f.ws.closed, f.ws.other, f.ws.err)
	}
	if f.ws.book.UpdateID != bk.UpdateID || *f.ws.book.BestBid != *bk.BestBid || len(f.ws.book.Bids) != 10 {
		t.Errorf("pushed book at %d %+v (%d bids), served at %d %+v", f.ws.book.UpdateID, f.ws.book.BestBid,
			len(f.ws.book.Bids), bk.UpdateID, bk.BestBid)
	}
}

func TestSignalsAgreeWithBars(t *testing.T) {
	f := getFixture(t)
	sg, err := f.cl.Signals(context.Background(), "BTCUSDT", client.SignalsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	bars, err := f.cl.Bars(context.Background(), "BTCUSDT", client.BarsQuery{Limit: 120})
	if err != nil {
		t.Fatal(err)
	}
	if sg.Bars != len(bars.Bars) {
		t.Errorf("signals examined %d bars, %d closed", sg.Bars, len(bars.Bars))
	}
	var want []string
	for _, b := range bars.Bars {
		if b.Divergence != "" {
			want = append(want, b.Divergence+"_divergence")
		}
		if b.HighExhausted {
			want = append(want, "high_exhausted")
		}
		if b.LowExhausted {
			want = append(want, "low_exhausted")
		}
		for _, s := range b.Stacked {
			want = append(want, "stacked_"+s.Side+"_imbalance")
		}
	}
	var got []string
	for _, s := range sg.Signals {
		if s.BarStart != 0 { // book signals: TestBookSignals
			got = append(got, s.Kind)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("signals %v, bars say %v", got, want)
	}
	if len(got) == 0 && sg.Note == "" {
		t.Error("no signal and no note")
	}
	f.sse.mu.Lock()
	defer f.sse.mu.Unlock()
	pushed := 0
	for _, s := range f.sse.signals {
		if s.BarStart != 0 {
			pushed++
		}
	}
	if pushed != len(got) {
		t.Errorf("pushed %d bar signals, served %d", pushed, len(got))
	}
}

func TestPushStreamCarriesEveryTrade(t *testing.T) {
	f := getFixture(t)
	s := f.sse
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.dropped != 0 {
		t.Fatalf("SSE client: err %v, dropped %d", s.err, s.dropped)
	}
	if s.trades != int64(len(f.ref.trades)) || !s.order {
		t.Fatalf("SSE trades %d (in order %v), want %d", s.trades, s.order, len(f.ref.trades))
	}
	eqDec(t, "pushed buy volume", client.Dec(s.buyVol), f.ref.buyVol)
	eqDec(t, "pushed sell volume", client.Dec(s.sellVol), f.ref.sellVol)
}

// TestSlowPushClient: a client that never reads is skipped, then
// disconnected, and the heap does not grow with the stream it missed.
func TestSlowPushClient(t *testing.T) {
	f := getFixture(t)
	st := f.api.Hub().Stats()
	if st.Dropped == 0 || st.Kicked != 1 || st.Subscribers != 2 {
		t.Fatalf("hub %+v: want drops and the slow client disconnected", st)
	}
	if !strings.Contains(f.logs.String(), "stays behind") {
		t.Error("the disconnect was not logged")
	}
	// The service itself grows by its windows, bars and history; the slow
	// client may add at most its queue (4096 messages of about 200 bytes).
	growth := int64(f.heapEnd) - int64(f.heapPre)
	t.Logf("heap in use: %d before the replay, %d after (%+d); hub %+v", f.heapPre, f.heapEnd, growth, st)
	if growth > 16<<20 {
		t.Errorf("heap grew by %d bytes over the replay", growth)
	}
	// The slow client's connection was cut: reading it now ends. The wait
	// outlasts the fixture's 60 s WriteTimeout, which bounds any write the
	// handler may still be blocked in when the client starts reading.
	_ = f.slow.SetReadDeadline(time.Now().Add(75 * time.Second))
	var buf bytes.Buffer
	_, err := buf.ReadFrom(f.slow)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("slow client read: %v (after %d bytes)", err, buf.Len())
	}
	// (A client that never reads cannot be told what it missed: the CLI
	// test checks that a slow reader is told, message by message.)
}

func TestErrors(t *testing.T) {
	f := getFixture(t)
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		code   string
		msg    string
	}{
		{"UnknownSymbol", "GET", "/v1/symbols/DOGEUSDT/metrics", "", 404, "unknown_symbol", "DOGEUSDT"},
		{"BadWindow", "GET", "/v1/symbols/BTCUSDT/metrics?window=7m", "", 400, "bad_request", "available: 1m, 5m, 15m, 1h"},
		{"WindowNotDuration", "GET", "/v1/symbols/BTCUSDT/metrics?window=abc", "", 400, "bad_request", "not a duration"},
		{"UnknownParam", "GET", "/v1/symbols/BTCUSDT/metrics?windw=5m", "", 400, "bad_request", `unknown parameter "windw"`},
		{"BadInterval", "GET", "/v1/symbols/BTCUSDT/bars?interval=2m", "", 400, "bad_request", "interval"},
		{"BarsLimitTooHigh", "GET", "/v1/symbols/BTCUSDT/bars?limit=500", "", 400, "bad_request", "at most 120"},
		{"BadFootprint", "GET", "/v1/symbols/BTCUSDT/bars?footprint=maybe", "", 400, "bad_request", "footprint"},
		{"ProfileBackwards", "GET", "/v1/symbols/BTCUSDT/profile?from=200&to=100", "", 400, "bad_request", "from < to"},
		{"BadSide", "GET", "/v1/symbols/BTCUSDT/trades?side=up", "", 400, "bad_request", "side"},
		{"BadMinNotional", "GET", "/v1/symbols/BTCUSDT/trades?min_notional=1e5", "", 400, "bad_request", "min_notional"},
		{"TradesLimit", "GET", "/v1/symbols/BTCUSDT/trades?limit=-1", "", 400, "bad_request", "limit"},
		{"BookDepth", "GET", "/v1/symbols/BTCUSDT/book?depth=5000", "", 400, "bad_request", "depth"},
		{"BookBands", "GET", "/v1/symbols/BTCUSDT/book?bands=10,x", "", 400, "bad_request", "bands"},
		{"LargeLimit", "GET", "/v1/symbols/BTCUSDT/large-trades?limit=abc", "", 400, "bad_request", "integer"},
		{"StreamTopic", "GET", "/v1/stream?topics=news", "", 400, "bad_request", "topics"},
		{"StreamSymbol", "GET", "/v1/stream?symbols=XRPUSDT", "", 404, "unknown_symbol", "XRPUSDT"},
		{"NoRoute", "GET", "/v2/anything", "", 404, "not_found", "no route"},
		{"WrongMethod", "PUT", "/v1/status", "", 405, "method_not_allowed", "GET"},
		{"AddBadBody", "POST", "/v1/symbols", `{"sym":"X"}`, 400, "bad_request", "body"},
		{"AddBadSymbol", "POST", "/v1/symbols", `{"symbol":"B-T"}`, 400, "bad_request", "letters"},
		{"AddTooLarge", "POST", "/v1/symbols", `{"symbol":"` + strings.Repeat("A", 70<<10) + `"}`, 413, "too_large", "bytes"},
		{"RemoveUnknown", "DELETE", "/v1/symbols/XRPUSDT", "", 404, "unknown_symbol", "XRPUSDT"},
		{"ResetCVDBadBody", "POST", "/v1/symbols/BTCUSDT/cvd/reset", `{"at":"soon"}`, 400, "bad_request", "body"},
		{"ResetCVDUnknownField", "POST", "/v1/symbols/BTCUSDT/cvd/reset", `{"from":5}`, 400, "bad_request", `unknown field "from"`},
		{"ResetCVDNegative", "POST", "/v1/symbols/BTCUSDT/cvd/reset", `{"at":-1}`, 400, "bad_request", "at -1"},
		{"ResetCVDUnknownSymbol", "POST", "/v1/symbols/XRPUSDT/cvd/reset", "", 404, "unknown_symbol", "XRPUSDT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.http.URL+c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e apiErr
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("%d: body is not the JSON error: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != c.status || e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.msg) {
				t.Errorf("%d %+v, want %d %s containing %q", resp.StatusCode, e.Error, c.status, c.code, c.msg)
			}
		})
	}
}

// TestAddRemoveSymbol: the service cannot add or remove symbols at run time
// yet, and the API says so with 501; once it can, the routes call it.
func TestAddRemoveSymbol(t *testing.T) {
	f := getFixture(t)
	_, canAdd := any(f.svc).(interface {
		AddSymbol(context.Context, string) error
	})
	err := f.cl.AddSymbol(context.Background(), "ETHUSDT")
	if canAdd {
		// The service can: the API must have called it, not refused.
		if client.IsCode(err, "not_implemented") {
			t.Errorf("add: %v although the service has AddSymbol", err)
		}
		return
	}
	if !client.IsCode(err, "not_implemented") {
		t.Errorf("add: %v, want not_implemented", err)
	}
	if err := f.cl.RemoveSymbol(context.Background(), "BTCUSDT"); !client.IsCode(err, "not_implemented") {
		t.Errorf("remove: %v, want not_implemented", err)
	}
}

func TestPrometheus(t *testing.T) {
	f := getFixture(t)
	req, _ := http.NewRequest("GET", f.http.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	text := buf.String()
	n := len(f.ref.trades)
	for _, want := range []string{
		`orderflow_trades_total{symbol="BTCUSDT"} ` + itoa(n),
		`orderflow_event_lag_seconds_count ` + itoa(n),
		`orderflow_book_synced{symbol="BTCUSDT"} 1`,
		`orderflow_book_resyncs_total{cause="initial",symbol="BTCUSDT"} 1`,
		`orderflow_book_resyncs_total{cause="gap",symbol="BTCUSDT"} 0`,
		`orderflow_decode_errors_total 0`,
		`orderflow_stream_connected{stream=`,
		`orderflow_stream_received_bytes_total{stream=`,
		`orderflow_stream_reconnects_total{stream=`,
		`orderflow_service_ready 1`,
		`orderflow_api_requests_total{code="200",method="GET",route="GET /v1/status"}`,
		`orderflow_api_request_duration_seconds_bucket{route="GET /v1/symbols/{symbol}/metrics"`,
		`orderflow_push_clients_disconnected_total 1`,
		`orderflow_push_messages_dropped_total{where="client"}`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(text, "orderflow_push_clients 2") {
		t.Errorf("/metrics: want 2 push clients connected (SSE and WebSocket)")
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// TestMCPOverStreamableHTTP calls every tool through the SDK's own client
// on the API's /mcp route and checks the numbers against the routes and
// the recording.
func TestMCPOverStreamableHTTP(t *testing.T) {
	f := getFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hc := &http.Client{Transport: bearer{token}}
	cl := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	sess, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.http.URL + "/mcp", HTTPClient: hc,
		DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	tools, err := sess.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
		if tl.InputSchema == nil {
			t.Errorf("tool %s has no input schema", tl.Name)
		}
	}
	sort.Strings(names)
	want := []string{mcpserver.ToolFootprint, mcpserver.ToolLargeTrades, mcpserver.ToolOrderBook, mcpserver.ToolOrderFlow,
		mcpserver.ToolSymbols, mcpserver.ToolSummary, mcpserver.ToolBookHistory, mcpserver.ToolResetCVD}
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}
	call := func(name string, args map[string]any, out any) *mcp.CallToolResult {
		t.Helper()
		res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.IsError {
			t.Fatalf("%s: tool error %v", name, res.Content)
		}
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
	n := int64(len(f.ref.trades))
	var syms client.Symbols
	call(mcpserver.ToolSymbols, map[string]any{}, &syms)
	if len(syms.Symbols) != 1 || syms.Symbols[0].Trades != n {
		t.Errorf("list_symbols %+v", syms)
	}
	var m client.Metrics
	call(mcpserver.ToolOrderFlow, map[string]any{"symbol": "BTCUSDT", "window": "1m"}, &m)
	if m.Totals.Trades != n || len(m.Windows) != 1 {
		t.Errorf("get_order_flow: %d trades, %d windows", m.Totals.Trades, len(m.Windows))
	}
	eqDec(t, "mcp delta", m.Totals.Delta, new(big.Rat).Sub(f.ref.buyVol, f.ref.sellVol))
	var lt client.LargeTrades
	call(mcpserver.ToolLargeTrades, map[string]any{"symbol": "BTCUSDT", "limit": 5}, &lt)
	served, _ := f.cl.LargeTrades(ctx, "BTCUSDT", client.LargeTradesQuery{Limit: 5})
	if len(lt.Trades) != 5 || lt.Trades[4] != served.Trades[4] {
		t.Errorf("get_large_trades %+v, API %+v", lt.Trades, served.Trades)
	}
	var bk client.Book
	call(mcpserver.ToolOrderBook, map[string]any{"symbol": "BTCUSDT", "depth": 3}, &bk)
	top := topLevels(f.ref.bids, 1, true)[0]
	if len(bk.Bids) != 3 || bk.BestBid == nil {
		t.Fatalf("get_order_book %+v", bk)
	}
	eqDec(t, "mcp best bid", bk.BestBid.Price, top[0])
	served2, _ := f.cl.Walls(ctx, "BTCUSDT", client.WallsQuery{})
	if bk.Metrics == nil || len(bk.Metrics.Bands) == 0 || len(bk.Metrics.Walls) != len(served2.Bids)+len(served2.Asks) {
		t.Errorf("get_order_book: metrics %+v, want the bands and the %d walls", bk.Metrics, len(served2.Bids)+len(served2.Asks))
	}
	// Where were the walls a minute ago: the frame then and the walls
	// standing then, from the service's own history and wall record.
	var at mcpserver.BookAt
	call(mcpserver.ToolBookHistory, map[string]any{"symbol": "BTCUSDT", "minutes_ago": 1}, &at)
	want1, _ := f.cl.BookHistory(ctx, "BTCUSDT", client.BookHistoryQuery{At: at.Time, Depth: 10})
	if !at.WallsKnown || at.Frame == nil || len(want1.Frames) != 1 || at.Frame.Time != want1.Frames[0].Time ||
		!slices.Equal(at.Frame.Bids, want1.Frames[0].Bids) || len(at.Walls)+len(at.Ended) == 0 {
		t.Errorf("get_book_history a minute ago: %+v, history has %+v", at, want1.Frames)
	}
	for _, w := range at.Walls {
		if w.Since > at.Time {
			t.Errorf("a wall since %d listed as standing at %d", w.Since, at.Time)
		}
	}
	for _, e := range at.Ended {
		if e.Since > at.Time || e.End <= at.Time {
			t.Errorf("an ended wall %d..%d listed as standing at %d", e.Since, e.End, at.Time)
		}
	}
	var fp client.Bars
	call(mcpserver.ToolFootprint, map[string]any{"symbol": "BTCUSDT", "limit": 2}, &fp)
	if len(fp.Bars) != 2 || len(fp.Bars[1].Footprint) == 0 {
		t.Fatalf("get_footprint: %d bars", len(fp.Bars))
	}
	rb := f.ref.minutes[fp.Bars[1].Start]
	eqDec(t, "mcp footprint bar delta", fp.Bars[1].Delta, new(big.Rat).Sub(rb.buyVol, rb.sellVol))
	var sum mcpserver.Summary
	res := call(mcpserver.ToolSummary, map[string]any{"symbol": "BTCUSDT"}, &sum)
	for _, w := range []string{"BTCUSDT last", itoa(int(n)) + " trades", "delta " + string(m.Totals.Delta), "Book: bid", "Walls: ", "Book signals over those bars:"} {
		if !strings.Contains(sum.Text, w) {
			t.Errorf("summary lacks %q: %s", w, sum.Text)
		}
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || !strings.Contains(tc.Text, "BTCUSDT") {
		t.Errorf("summary content %v", res.Content)
	}
	// A bad argument is a tool error the model can read, not a crash.
	bad, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: mcpserver.ToolOrderFlow, Arguments: map[string]any{"symbol": "BTCUSDT", "window": "7m"}})
	if err != nil || !bad.IsError {
		t.Fatalf("bad window: %v, %+v", err, bad)
	}
	if tc := bad.Content[0].(*mcp.TextContent); !strings.Contains(tc.Text, "available") {
		t.Errorf("bad window message %q", tc.Text)
	}
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestOpenAPIMatchesRoutes: every registered route is in the document
// and every path and method of the document is a route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := getFixture(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if code := f.get(t, "/v1/openapi.json", &doc); code != 200 {
		t.Fatalf("GET /v1/openapi.json: %d", code)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	routes := f.api.Routes()
	sort.Strings(documented)
	sort.Strings(routes)
	if !slices.Equal(documented, routes) {
		t.Errorf("routes and document differ:\nroutes     %v\ndocumented %v", routes, documented)
	}
	if !bytes.Equal(api.OpenAPI(), mustGetRaw(t, f, "/v1/openapi.json")) {
		t.Error("served document differs from the embedded one")
	}
}

func mustGetRaw(t *testing.T, f *fixture, path string) []byte {
	var raw json.RawMessage
	f.get(t, path, &raw)
	var buf bytes.Buffer
	buf.Write(raw)
	out := buf.Bytes()
	emb := api.OpenAPI()
	if len(emb) > 0 && emb[len(emb)-1] == '\n' && (len(out) == 0 || out[len(out)-1] != '\n') {
		out = append(out, '\n')
	}
	return out
}

// TestCVDReset: the fixture reset BTCUSDT's CVD over HTTP at the time of
// the recording's middle trade before the replay; the CVD then equals the
// signed volume (taker buys minus sells, math/big) of the recording's
// trades at or after that time, while delta still counts every trade. A
// reset without a body anchors at the latest exchange time and starts
// from zero; without the token the route is refused.
func TestCVDReset(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	if f.cvdReset != (client.CVDReset{Symbol: "BTCUSDT", CVDResetAt: f.cvdAt}) {
		t.Fatalf("reset answer %+v, want BTCUSDT at %d", f.cvdReset, f.cvdAt)
	}
	want, all := new(big.Rat), new(big.Rat)
	n := 0
	for _, tr := range f.ref.trades {
		q := tr.qty
		if !tr.buy {
			q = new(big.Rat).Neg(q)
		}
		all.Add(all, q)
		if tr.t >= f.cvdAt {
			want.Add(want, q)
			n++
		}
	}
	if n == 0 || n == len(f.ref.trades) || want.Cmp(all) == 0 {
		t.Fatalf("reference: %d of %d trades after the anchor, cvd %s, delta %s: the reset must split the recording", n, len(f.ref.trades), want.FloatString(8), all.FloatString(8))
	}
	m, err := f.cl.Metrics(ctx, "BTCUSDT", client.MetricsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Totals.CVDResetAt != f.cvdAt {
		t.Errorf("cvd_reset_at %d, want %d", m.Totals.CVDResetAt, f.cvdAt)
	}
	eqDec(t, "cvd since the reset", m.Totals.CVD, want)
	eqDec(t, "delta since start", m.Totals.Delta, all)
	t.Logf("cvd %s over %d trades since %d; delta %s over %d", m.Totals.CVD, n, f.cvdAt, m.Totals.Delta, len(f.ref.trades))

	// Without the token: refused, nothing changed.
	req, _ := http.NewRequest("POST", f.http.URL+"/v1/symbols/BTCUSDT/cvd/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reset without the token: %d, want 401", resp.StatusCode)
	}

	// No body: now, the latest exchange time (the replay is over).
	r, err := f.cl.ResetCVD(ctx, "BTCUSDT", 0)
	if err != nil {
		t.Fatal(err)
	}
	after, err := f.cl.Metrics(ctx, "BTCUSDT", client.MetricsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if r.CVDResetAt != after.Time || after.Totals.CVDResetAt != after.Time || after.Totals.CVD != "0" || after.Totals.Delta != m.Totals.Delta {
		t.Errorf("reset now: answer %+v, totals cvd %s from %d, delta %s; want from %d, cvd 0, delta %s",
			r, after.Totals.CVD, after.Totals.CVDResetAt, after.Totals.Delta, after.Time, m.Totals.Delta)
	}
}
