package service_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/rest"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
	"github.com/orderflow/orderflow/stacktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testdata = stacktest.Testdata

var (
	spotBTC    = []string{testdata("hft-spot-btcusdt-20240808.txt.gz"), testdata("hft-spot-btcusdt-20240809.txt.gz")}
	spot10     = []string{testdata("cryptofeed-spot-10sym-20210405.txt.gz")}
	usdm5      = []string{testdata("cryptofeed-usdm-5sym-20210405.txt.gz")}
	usdmBTC    = []string{testdata("hft-usdm-btcusdt-20240808.txt.gz")}
	recMu      sync.Mutex
	recordings = map[string]*sim.Recording{}
)

// recording loads real recordings once per test binary (the big files take
// a while), shared read-only by every simulator.
func recording(t testing.TB, files ...string) *sim.Recording {
	t.Helper()
	key := strings.Join(files, "|")
	recMu.Lock()
	defer recMu.Unlock()
	if r := recordings[key]; r != nil {
		return r
	}
	r, err := sim.LoadRecording("", files...)
	if err != nil {
		t.Fatalf("load %v: %v", files, err)
	}
	recordings[key] = r
	return r
}

// startSim starts a simulator on loopback and closes it at cleanup. The
// REST weight budget is lifted: tests start hundreds of runs, each with
// its own warm start, which no real IP would do.
func startSim(t testing.TB, cfg sim.Config) *sim.Server {
	t.Helper()
	if cfg.WeightLimit == 0 {
		cfg.WeightLimit = 1 << 30
	}
	return stacktest.StartSim(t, cfg)
}

// testDialLimiter replaces the process-wide 300-per-5-minutes limiter:
// loopback tests dial thousands of times.
var testDialLimiter = stacktest.DialLimiter

var testLogger = stacktest.Logger

// waitSlack stretches every wait of these helpers: a bound is how long a
// test is willing to wait for a condition, not a property under test, and
// a 2-core machine running the race detector under load (seen at load 20)
// can take several times the quiet figure. A wait returns as soon as its
// condition holds, so passing runs cost nothing more.
const waitSlack = 3

// waitFor polls cond until it holds or the bound (times waitSlack) passes.
func waitFor(t testing.TB, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	bound *= waitSlack
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStatus waits on the service's change notifications until cond holds
// for its status.
func waitStatus(t testing.TB, s *service.Service, what string, bound time.Duration, cond func(service.Status) bool) service.Status {
	t.Helper()
	bound *= waitSlack
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		ch := s.Changes() // before reading, so no change is missed
		st := s.Status()
		if cond(st) {
			return st
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s; state %s, %d symbols, streams %+v", bound, what, st.State, len(st.Symbols), st.Streams)
		}
	}
}

func connected(st service.Status) bool {
	if st.State != "running" || len(st.Streams) == 0 {
		return false
	}
	for _, c := range st.Streams {
		if c.State != "connected" {
			return false
		}
	}
	return true
}

func newService(t testing.TB, srv *sim.Server, mod func(*service.Config)) *service.Service {
	t.Helper()
	ws, rest := srv.URL()
	cfg := service.Config{Symbols: srv.Symbols(), Market: srv.Market(), WSURL: ws, RESTURL: rest,
		Logger: testLogger(t), DialLimiter: testDialLimiter}
	if mod != nil {
		mod(&cfg)
	}
	s, err := service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A test that ends early (Fatal) must not leave the service running:
	// its goroutines would log through t after the test completed, which
	// panics and takes the whole package's test binary down. Stop on a
	// stopped service does nothing.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop at cleanup: %v", err)
		}
	})
	return s
}

// stopService stops s within 5 s and fails on an error.
func stopService(t testing.TB, s *service.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// waitServerConnsClosed waits until the simulator has no open WebSocket
// connection: every connection was closed on the server side too.
func waitServerConnsClosed(t testing.TB, srv *sim.Server, want int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("simulator open connections = %d", want), 10*time.Second, func() bool { return srv.Stats().ConnsOpen == want })
}

// simREST is a REST client of the simulator on a transport of its own;
// done closes its idle connections.
func simREST(t testing.TB, srv *sim.Server) (rc *rest.Client, done func()) {
	t.Helper()
	_, base := srv.URL()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	rc, err := rest.New(rest.Options{BaseURL: base, Market: srv.Market(), HTTPClient: hc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return rc, hc.CloseIdleConnections
}

// restTrades fetches every aggregate trade the simulator has published
// for symbol, through REST (an independent path from the stream).
func restTrades(t testing.TB, srv *sim.Server, symbol string) []market.Trade {
	t.Helper()
	rc, done := simREST(t, srv)
	defer done()
	var out, page []market.Trade
	from := int64(0)
	for {
		var err error
		page, err = rc.AggTrades(context.Background(), symbol, rest.AggTradesQuery{FromID: &from, Limit: 1000}, page[:0])
		if err != nil {
			t.Fatalf("REST aggTrades %s from %d: %v", symbol, from, err)
		}
		for i := range page {
			page[i].Symbol = symbol
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out
		}
		from = page[len(page)-1].ID + 1
	}
}

// testFlow keeps every trade of a recording in the history.
var testFlow = flow.Config{HistorySize: 50_000, HistoryMaxAge: 24 * time.Hour, BarIntervals: []time.Duration{time.Minute, 5 * time.Second}}

// metrics is what a symbol's state is compared on.
type metrics struct {
	IDs    []int64
	Totals flow.Totals
	Bars   map[time.Duration][]flow.Bar
	Cur    map[time.Duration]flow.Bar
	// Mark is the tracker's bar watermark (0: never advanced).
	Mark int64
}

func trackerMetrics(tr *flow.Tracker) metrics {
	m := metrics{Totals: tr.Totals(), Bars: map[time.Duration][]flow.Bar{}, Cur: map[time.Duration]flow.Bar{}, Mark: tr.Watermark()}
	for _, x := range tr.Trades(flow.TradeQuery{}, nil) {
		m.IDs = append(m.IDs, x.ID)
	}
	for _, iv := range tr.BarIntervals() {
		m.Bars[iv] = tr.Bars(iv, 0)
		m.Cur[iv], _ = tr.CurrentBar(iv)
	}
	return m
}

func serviceMetrics(t testing.TB, s *service.Service, symbol string) metrics {
	t.Helper()
	var m metrics
	if err := s.ViewSymbol(symbol, func(sym *engine.Symbol) error { m = trackerMetrics(sym.Flow); return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

// referenceMetrics is an uninterrupted run over the same trades: every
// published aggregate trade from REST, in id order, into a fresh tracker.
func referenceMetrics(t testing.TB, trades []market.Trade, symbol string, cfg flow.Config) metrics {
	t.Helper()
	tr := flow.NewTracker(symbol, cfg)
	for i := range trades {
		if err := tr.Add(&trades[i]); err != nil {
			t.Fatalf("reference %s trade %d: %v", symbol, trades[i].ID, err)
		}
	}
	return trackerMetrics(tr)
}

// compareMetrics fails with the first difference between got and want.
func compareMetrics(t testing.TB, symbol string, got, want metrics) {
	t.Helper()
	if len(got.IDs) != len(want.IDs) {
		t.Fatalf("%s: %d trades in history, want %d (first missing or extra: %s)", symbol, len(got.IDs), len(want.IDs), firstDiff(got.IDs, want.IDs))
	}
	if d := firstDiff(got.IDs, want.IDs); d != "" {
		t.Fatalf("%s: trade ids differ: %s", symbol, d)
	}
	if !reflect.DeepEqual(got.Totals, want.Totals) {
		t.Fatalf("%s: totals differ:\n got %+v\nwant %+v", symbol, got.Totals, want.Totals)
	}
	// The service closes bars on its watermark (Config.BarLateness), the
	// reference only at the next bar's first trade: where the open/closed
	// split lies is checked against got's watermark, then the bars are
	// compared as one sequence, the open bar counted as closed. LateTrades
	// says how the trades were delivered (after a drop the gap fill's
	// trades amend closed bars), not what they were: it is left out.
	checkClosedByWatermark(t, symbol, got)
	g, w := flushed(got), flushed(want)
	for iv, bars := range w.Bars {
		gb := g.Bars[iv]
		for _, list := range [][]flow.Bar{gb, bars} {
			for i := range list {
				list[i].LateTrades = 0
				if len(list[i].Stacked) == 0 {
					list[i].Stacked = nil // an open bar's copy has nil, a closed bar an empty slice
				}
			}
		}
		if !reflect.DeepEqual(gb, bars) {
			for i := range min(len(gb), len(bars)) {
				if !reflect.DeepEqual(gb[i], bars[i]) {
					t.Errorf("%s: first differing %v bar:\n got %+v\nwant %+v", symbol, iv, gb[i], bars[i])
					break
				}
			}
			t.Fatalf("%s: %v bars differ (%d vs %d bars)", symbol, iv, len(gb), len(bars))
		}
	}
}

// checkClosedByWatermark fails if a bar closed before its time: every
// closed bar either ended at or before the watermark or is followed by a
// later bar (closed by that bar's first trade). A tracker never advanced
// (a replay, which flushes at the end) is not judged.
func checkClosedByWatermark(t testing.TB, symbol string, m metrics) {
	t.Helper()
	if m.Mark == 0 {
		return
	}
	for iv, bars := range m.Bars {
		for i, b := range bars {
			later := i+1 < len(bars) || m.Cur[iv].Trades > 0
			if b.End > m.Mark && !later {
				t.Fatalf("%s: %v bar %d..%d closed with the watermark at %d and no later bar", symbol, iv, b.Start, b.End, m.Mark)
			}
		}
	}
}

func firstDiff(got, want []int64) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: got id %d, want %d", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("lengths %d vs %d", len(got), len(want))
	}
	return ""
}

// checkConsecutive fails unless ids run without a gap or a duplicate.
func checkConsecutive(t testing.TB, symbol string, ids []int64) {
	t.Helper()
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("%s: trade ids not consecutive at %d: %d then %d", symbol, i, ids[i-1], ids[i])
		}
	}
}

// checkBookMatchesSim compares a symbol's book with a fresh snapshot of
// the simulator's book (the simulator's replay must be over or paused, so
// nothing moves in between): same update id, same top levels.
func checkBookMatchesSim(t testing.TB, s *service.Service, srv *sim.Server, symbol string) {
	t.Helper()
	rc, done := simREST(t, srv)
	defer done()
	const limit = 100
	var snap market.DepthSnapshot
	if err := rc.DepthSnapshot(context.Background(), symbol, limit, &snap); err != nil {
		t.Fatal(err)
	}
	// A stale-feed reconnect once the replay has ended resyncs the books;
	// give the resync its snapshot before comparing.
	waitFor(t, symbol+" book synced", 10*time.Second, func() bool {
		synced := false
		_ = s.ViewSymbol(symbol, func(sym *engine.Symbol) error { synced = sym.Synced(); return nil })
		return synced
	})
	err := s.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		if !sym.Synced() {
			return fmt.Errorf("book not synced (state %v)", sym.Sync.State())
		}
		if id := sym.Book().UpdateID(); id != snap.LastUpdateID {
			return fmt.Errorf("book update id %d, simulator %d", id, snap.LastUpdateID)
		}
		if mm := sym.Book().Compare(&snap, limit); len(mm) > 0 {
			return fmt.Errorf("%d levels differ from the simulator's book, first %v", len(mm), mm[0])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", symbol, err)
	}
}

// logCapture records log records for assertions, and shows them with -v.
type logCapture struct {
	mu   sync.Mutex
	recs []logRecord
	t    testing.TB
}

type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func newLogCapture(t testing.TB) *logCapture { return &logCapture{t: t} }

func (c *logCapture) logger() *slog.Logger { return slog.New(&captureHandler{c: c}) }

// records returns the records whose message has the prefix.
func (c *logCapture) records(prefix string) []logRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []logRecord
	for _, r := range c.recs {
		if strings.HasPrefix(r.Msg, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// index returns the position of the first record with exactly msg, or -1.
func (c *logCapture) index(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.recs {
		if r.Msg == msg {
			return i
		}
	}
	return -1
}

type captureHandler struct {
	c     *logCapture
	attrs []slog.Attr
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { rec.Attrs[a.Key] = a.Value.String(); return true })
	h.c.mu.Lock()
	h.c.recs = append(h.c.recs, rec)
	h.c.mu.Unlock()
	if testing.Verbose() && r.Level >= slog.LevelInfo {
		h.c.t.Logf("%s %s %v", r.Level, r.Message, rec.Attrs)
	}
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{c: h.c, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// midFrameServer is a WebSocket server that completes the handshake,
// sends the header and the first bytes of a text frame, then goes silent
// with the socket open: a server that stopped answering mid-frame. The
// simulator's DropMidFrame closes the socket after the half frame; this
// one never does, so only the client can end the read.
type midFrameServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	hits  chan struct{}
}

func startMidFrameServer(t testing.TB) *midFrameServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &midFrameServer{ln: ln, hits: make(chan struct{}, 64)}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			m.conns = append(m.conns, c)
			m.mu.Unlock()
			m.wg.Add(1)
			go func() { defer m.wg.Done(); m.serve(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		m.mu.Lock()
		for _, c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
	return m
}

func (m *midFrameServer) url() string { return "ws://" + m.ln.Addr().String() }

func (m *midFrameServer) serve(c net.Conn) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	// RFC 6455 section 4.2.2: the accept key.
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
	// A text frame announcing 1,000 payload bytes, of which 10 are sent.
	frame := append([]byte{0x81, 126, 0x03, 0xE8}, `{"stream":`...)
	if _, err := c.Write(append([]byte(resp), frame...)); err != nil {
		return
	}
	select {
	case m.hits <- struct{}{}:
	default:
	}
	_, _ = io.Copy(io.Discard, br) // silent until the client or cleanup closes
}

// stuckTransport is a RoundTripper that ignores its request's context for
// paths containing match, until released: a REST call that really hangs,
// as a broken proxy or a transport without deadlines can.
type stuckTransport struct {
	base    *http.Transport
	match   string
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func newStuckTransport(match string) *stuckTransport {
	return &stuckTransport{base: http.DefaultTransport.(*http.Transport).Clone(), match: match,
		release: make(chan struct{}), entered: make(chan struct{})}
}

func (s *stuckTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, s.match) {
		s.once.Do(func() { close(s.entered) })
		<-s.release
		return nil, errors.New("stuck transport released")
	}
	return s.base.RoundTrip(req)
}

// engineSymbol shortens the ViewSymbol callback type in tests.
type engineSymbol = engine.Symbol

type marketTrade = market.Trade
