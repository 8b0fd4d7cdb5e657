package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/push"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// The end-to-end tests share one replay: the simulator replays the real
// BTCUSDT recording once at 200x into a service with the API in front of
// it, push clients connected before the replay starts. Tests then compare
// every route, stream and tool with an independent loop over the same
// recording (reference_test.go).

var (
	fxOnce sync.Once
	fx     *fixture
	fxErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fx != nil {
		fx.close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const token = "s3cret-token"

// largeNotional is the absolute large-trade rule of the fixture (quote
// units): the reference finds the same trades by price*qty.
const largeNotional = "100000"

func testdata(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "binance", name)
}

var spotBTC = []string{testdata("hft-spot-btcusdt-20240808.txt.gz"), testdata("hft-spot-btcusdt-20240809.txt.gz")}

type fixture struct {
	sim  *sim.Server
	svc  *service.Service
	api  *api.Server
	http *httptest.Server
	cl   *client.Client
	ref  *reference

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	sse     *sseCollector
	ws      *wsCollector
	slow    net.Conn
	heapPre uint64
	heapEnd uint64
	logs    *lockedBuffer
	// cvdAt is the CVD reset anchor asked for before the replay (a trade
	// time in the middle of the recording), cvdReset the API's answer.
	cvdAt    int64
	cvdReset client.CVDReset
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sseCollector reads /v1/stream through the client package and keeps only
// aggregates, so it holds little memory itself.
type sseCollector struct {
	mu      sync.Mutex
	trades  int64
	buyVol  fixed.Dec
	sellVol fixed.Dec
	lastID  int64
	order   bool // trade ids strictly increasing
	closed  map[int64]client.Bar
	open    int
	large   []client.LargeTrade
	signals []client.Signal
	dropped int64
	err     error
}

type wsCollector struct {
	mu     sync.Mutex
	books  int
	book   client.Book
	bars   int
	closed int
	other  int
	err    error
}

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fxOnce.Do(func() { fx, fxErr = newFixture() })
	if fxErr != nil {
		t.Fatalf("fixture: %v", fxErr)
	}
	return fx
}

func newFixture() (*fixture, error) {
	f := &fixture{logs: &lockedBuffer{}}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Paced at 200x (about 3.3 s), so a push client that reads promptly
	// keeps up; the simulator's send queue is large enough that a loaded
	// machine stalling the service for seconds does not get it dropped.
	srv, err := sim.New(sim.Config{Files: spotBTC, Speed: 200, SendQueue: 1 << 17, Paused: true})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(context.Background()); err != nil {
		return nil, err
	}
	f.sim = srv
	ws, rest := srv.URL()
	// Snapshots of 5000 levels take the simulator's whole book (it holds
	// fewer), so the known range does not depend on when, in the replay,
	// the first snapshot is fetched: a 1000-level one reaches 10% below
	// the touch at one instant and 0.3% at the next (measured on this
	// recording), which decided whether the walls could be judged.
	svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}, Market: market.Spot, WSURL: ws, RESTURL: rest, SnapshotLimit: 5000,
		TradeChannel: "trade", Logger: log, LogTrades: -1, Flow: flow.Config{LargeNotional: fixed.MustParse(largeNotional)},
		DepthFlow: &depthflowFixture})
	if err != nil {
		return nil, err
	}
	f.svc = svc
	// WriteTimeout is long so the never-reading client is cut by the hub
	// (queue full for MaxBehind), not by a blocked write, even when the
	// replay runs slowly (-race with the book metrics on).
	f.api = api.New(svc, api.Options{Token: token, Logger: log, RateLimit: -1, WriteTimeout: 60 * time.Second,
		Push: push.Options{Queue: 4096, BookInterval: 50 * time.Millisecond, BarInterval: 100 * time.Millisecond,
			MaxBehind: time.Second}})
	f.http = httptest.NewUnstartedServer(f.api)
	f.http.Listener = smallBuffers{f.http.Listener}
	f.http.Start()
	f.cl, err = client.New(f.http.URL, client.Options{Token: token})
	if err != nil {
		return nil, err
	}
	if err := svc.Start(context.Background()); err != nil {
		return nil, err
	}
	if err := waitUntil(10*time.Second, func() bool {
		st := svc.Status()
		return len(st.Streams) > 0 && st.Streams[0].State == "connected"
	}); err != nil {
		return nil, fmt.Errorf("streams connected: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.startSSE(ctx)
	if err := f.startWS(ctx); err != nil {
		return nil, err
	}
	if f.slow, err = dialSlow(f.http.Listener.Addr().String()); err != nil {
		return nil, err
	}
	// A client that asks for everything and never reads a byte.
	fmt.Fprintf(f.slow, "GET /v1/stream HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", f.http.Listener.Addr(), token)
	if err := waitUntil(5*time.Second, func() bool { return f.api.Hub().Stats().Subscribers == 3 }); err != nil {
		return nil, fmt.Errorf("push subscribers: %w (have %d)", err, f.api.Hub().Stats().Subscribers)
	}
	f.ref = loadReference(&fatalTB{}, spotBTC)
	f.heapPre = heapInuse()
	// Reset the CVD over HTTP at a trade time the replay has not reached:
	// from then on only trades at or after it count.
	f.cvdAt = f.ref.trades[len(f.ref.trades)/2].t
	if f.cvdReset, err = f.cl.ResetCVD(ctx, "btcusdt", f.cvdAt); err != nil {
		return nil, fmt.Errorf("reset cvd: %w", err)
	}
	srv.Play()
	select {
	case <-srv.Done():
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("replay did not finish")
	}
	n := int64(len(f.ref.trades))
	// The service may still be working through the simulator's queue:
	// the book metrics (depthflow) cost several times the book itself, and
	// under -race on a loaded 2-core machine it was seen 90 s after the
	// replay still applying frames. So the wait is for progress: it fails
	// when the service applies no frame for 30 s while behind (a stall),
	// or after 5 minutes in all.
	if err := waitProgress(5*time.Minute, 30*time.Second, func() uint64 { return uint64(svc.Status().Engine.Frames) }, func() bool {
		st := svc.Status()
		return st.Ready() && len(st.Symbols) == 1 && st.Symbols[0].Trades == n
	}); err != nil {
		return nil, fmt.Errorf("service has every trade (%d): %w (status %+v, streams %+v, engine %+v, backfill %+v, simulator %+v)", n, err,
			svc.Status().Symbols, svc.Status().Streams, svc.Status().Engine, svc.Status().Backfill, srv.Stats())
	}
	// The push client can be behind too: waited for while it progresses.
	sseSeen := func() uint64 {
		f.sse.mu.Lock()
		defer f.sse.mu.Unlock()
		return uint64(f.sse.trades + f.sse.dropped)
	}
	if err := waitProgress(2*time.Minute, 30*time.Second, sseSeen, func() bool {
		f.sse.mu.Lock()
		defer f.sse.mu.Unlock()
		return f.sse.trades+f.sse.dropped >= n || f.sse.err != nil
	}); err != nil {
		return nil, fmt.Errorf("SSE client has every trade: %w", err)
	}
	// Let the slow client's fate settle: its queue stays full, so the hub
	// disconnects it after MaxBehind.
	_ = waitUntil(5*time.Second, func() bool { return f.api.Hub().Stats().Subscribers == 2 })
	f.heapEnd = heapInuse()
	return f, nil
}

// slowAddrs holds the local addresses of clients that never read.
var slowAddrs sync.Map

// smallBuffers shrinks the send buffer of the connections to slowAddrs at
// their first write (by then the client is registered), so their writer
// blocks after a few kilobytes instead of the kernel absorbing megabytes:
// the hub's queue, not the kernel, must take the strain.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return &shrinkConn{Conn: c}, nil
}

type shrinkConn struct {
	net.Conn
	once sync.Once
}

func (c *shrinkConn) Write(p []byte) (int, error) {
	c.once.Do(func() {
		if _, slow := slowAddrs.Load(c.RemoteAddr().String()); slow {
			if tc, ok := c.Conn.(*net.TCPConn); ok {
				_ = tc.SetWriteBuffer(4096)
			}
		}
	})
	return c.Conn.Write(p)
}

// dialSlow connects a client that will never read, with a small receive
// buffer.
func dialSlow(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	slowAddrs.Store(c.LocalAddr().String(), true)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	return c, nil
}

// fatalTB lets loadReference run outside a test: any failure panics.
type fatalTB struct{ testing.TB }

func (fatalTB) Helper()                        {}
func (fatalTB) Fatal(args ...any)              { panic(fmt.Sprint(args...)) }
func (fatalTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func (f *fixture) close() {
	if f.cancel != nil {
		f.cancel()
	}
	if f.slow != nil {
		f.slow.Close()
	}
	f.wg.Wait()
	if f.http != nil {
		f.api.Close()
		f.http.Close()
	}
	if f.svc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = f.svc.Stop(ctx)
		cancel()
	}
	if f.sim != nil {
		_ = f.sim.Close()
	}
}

func waitUntil(bound time.Duration, cond func() bool) error {
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// waitProgress waits until cond holds, for at most bound, and fails early
// when progress (a counter) has not moved for stall.
func waitProgress(bound, stall time.Duration, progress func() uint64, cond func() bool) error {
	start := time.Now()
	last, moved := progress(), start
	for !cond() {
		now := time.Now()
		if p := progress(); p != last {
			last, moved = p, now
		}
		if now.Sub(moved) > stall {
			return fmt.Errorf("no progress for %v (at %d, after %v)", stall, last, now.Sub(start).Round(time.Second))
		}
		if now.Sub(start) > bound {
			return fmt.Errorf("timed out after %v (still progressing, at %d)", bound, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func (f *fixture) startSSE(ctx context.Context) {
	c := &sseCollector{closed: map[int64]client.Bar{}, order: true}
	f.sse = c
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		err := f.cl.Stream(ctx, []string{"BTCUSDT"}, []string{"trades", "large", "bars", "signals"}, func(ev client.Event) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			switch ev.Type {
			case "trade":
				var tr client.Trade
				if err := json.Unmarshal(ev.Data, &tr); err != nil {
					return err
				}
				q, err := tr.Qty.Dec()
				if err != nil {
					return err
				}
				if tr.Side == "buy" {
					c.buyVol += q
				} else {
					c.sellVol += q
				}
				if tr.ID <= c.lastID {
					c.order = false
				}
				c.lastID = tr.ID
				c.trades++
			case "bar":
				var b client.Bar
				if err := json.Unmarshal(ev.Data, &b); err != nil {
					return err
				}
				if b.Closed {
					c.closed[b.Start] = b
				} else {
					c.open++
				}
			case "large":
				var l client.LargeTrade
				if err := json.Unmarshal(ev.Data, &l); err != nil {
					return err
				}
				c.large = append(c.large, l)
			case "signal":
				var s client.Signal
				if err := json.Unmarshal(ev.Data, &s); err != nil {
					return err
				}
				c.signals = append(c.signals, s)
			case "dropped":
				c.dropped += ev.Count
			default:
				return fmt.Errorf("unexpected message type %q", ev.Type)
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
		}
	}()
}

func (f *fixture) startWS(ctx context.Context) error {
	c := &wsCollector{}
	f.ws = c
	u := "ws" + strings.TrimPrefix(f.http.URL, "http") + "/v1/ws?symbols=BTCUSDT&topics=bars,book"
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		return fmt.Errorf("websocket dial: %w", err)
	}
	conn.SetReadLimit(1 << 20)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer conn.CloseNow()
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				if ctx.Err() == nil {
					c.mu.Lock()
					c.err = err
					c.mu.Unlock()
				}
				return
			}
			var ev client.Event
			if err := json.Unmarshal(b, &ev); err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			c.mu.Lock()
			switch ev.Type {
			case "book":
				c.books++
				c.book = client.Book{}
				if err := json.Unmarshal(ev.Data, &c.book); err != nil {
					c.err = err
				}
			case "bar":
				c.bars++
				var b client.Bar
				_ = json.Unmarshal(ev.Data, &b)
				if b.Closed {
					c.closed++
				}
			default:
				c.other++
			}
			c.mu.Unlock()
		}
	}()
	return nil
}

// get calls a route with the token and decodes the JSON answer.
func (f *fixture) get(t *testing.T, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %d %s: %v", path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// apiErr is the error envelope.
type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// eqDec compares an API decimal with a reference value exactly.
func eqDec(t *testing.T, what string, got client.Decimal, want *big.Rat) {
	t.Helper()
	r, err := got.Rat()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r.Cmp(want) != 0 {
		t.Errorf("%s = %s, want %s", what, got, want.FloatString(8))
	}
}

// depthflowFixture is the book metrics' configuration of the fixture: the
// defaults, except that walls follow the entry rule alone (no notional
// floor, no hysteresis, announced at once), so the walls at the end of the
// replay can be recomputed from the naive book without its history (see
// refWalls); the defaults announce only a few walls in this recording.
var depthflowFixture = depthflow.Config{WallMinNotional: -1, WallHoldPercent: 100, WallMinAge: -1}
