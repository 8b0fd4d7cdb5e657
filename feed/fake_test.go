package feed

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/binance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// testLimiter lets tests dial as often as they like.
var testLimiter = NewDialLimiter(1_000_000, time.Second)

// fakeBinance is a small Binance-like combined-stream server on
// 127.0.0.1:0: it registers each connection's streams from the URL and
// SUBSCRIBE/UNSUBSCRIBE, replies like Binance, and publishes frames to the
// connections subscribed to their stream.
type fakeBinance struct {
	srv      *httptest.Server
	accepted atomic.Int64

	mu    sync.Mutex
	conns []*fakeConn
	// reject, if set, makes SUBSCRIBE of a matching stream fail.
	reject func(stream string) bool
	// delay, if set, gives connection id (1-based) a latency.
	delay func(id int) time.Duration
}

// timed is a frame with the time it was queued.
type timed struct {
	f  []byte
	at time.Time
}

type fakeConn struct {
	id      int
	path    string
	ws      *websocket.Conn
	out     chan timed
	done    chan struct{}
	silent  atomic.Bool
	mu      sync.Mutex
	streams map[string]bool
	methods []string
}

func newFake(t *testing.T) *fakeBinance {
	t.Helper()
	fb := &fakeBinance{}
	fb.srv = httptest.NewServer(http.HandlerFunc(fb.serve))
	t.Cleanup(fb.close)
	return fb
}

func (fb *fakeBinance) url() string { return "ws" + strings.TrimPrefix(fb.srv.URL, "http") }

func (fb *fakeBinance) close() {
	fb.mu.Lock()
	for _, c := range fb.conns {
		c.ws.CloseNow()
	}
	fb.mu.Unlock()
	fb.srv.Close()
}

func (fb *fakeBinance) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutSuffix(r.URL.Path, "/stream")
	if !ok {
		http.NotFound(w, r)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	fc := &fakeConn{path: path, ws: ws, out: make(chan timed, 1<<16), done: make(chan struct{}), streams: map[string]bool{}}
	if q := r.URL.Query().Get("streams"); q != "" {
		for _, s := range strings.Split(q, "/") {
			fc.streams[s] = true
		}
	}
	fb.mu.Lock()
	fc.id = len(fb.conns) + 1
	fb.conns = append(fb.conns, fc)
	var delay time.Duration
	if fb.delay != nil {
		delay = fb.delay(fc.id)
	}
	fb.mu.Unlock()
	fb.accepted.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer close(fc.done)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case f := <-fc.out:
				// A network latency, not a throughput limit: each frame
				// leaves delay after it was queued.
				if d := time.Until(f.at.Add(delay)); d > 0 {
					time.Sleep(d)
				}
				if fc.silent.Load() {
					continue
				}
				if ws.Write(ctx, websocket.MessageText, f.f) != nil {
					return
				}
			}
		}
	})
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var req struct {
			Method string   `json:"method"`
			Params []string `json:"params"`
			ID     int64    `json:"id"`
		}
		if err := json.Unmarshal(msg, &req); err != nil {
			fc.send([]byte(`{"error":{"code":3,"msg":"Invalid JSON"},"id":null}`))
			continue
		}
		fc.mu.Lock()
		fc.methods = append(fc.methods, req.Method)
		var reply string
		switch req.Method {
		case "SUBSCRIBE":
			reply = fmt.Sprintf(`{"result":null,"id":%d}`, req.ID)
			for _, p := range req.Params {
				if fb.reject != nil && fb.reject(p) {
					reply = fmt.Sprintf(`{"error":{"code":2,"msg":"Invalid request: unknown stream %s"},"id":%d}`, p, req.ID)
				}
			}
			if strings.HasPrefix(reply, `{"result"`) {
				for _, p := range req.Params {
					fc.streams[p] = true
				}
			}
		case "UNSUBSCRIBE":
			for _, p := range req.Params {
				delete(fc.streams, p)
			}
			reply = fmt.Sprintf(`{"result":null,"id":%d}`, req.ID)
		case "LIST_SUBSCRIPTIONS":
			list, _ := json.Marshal(fc.streamList())
			reply = fmt.Sprintf(`{"result":%s,"id":%d}`, list, req.ID)
		default:
			reply = fmt.Sprintf(`{"error":{"code":1,"msg":"Unknown method"},"id":%d}`, req.ID)
		}
		fc.mu.Unlock()
		fc.send([]byte(reply))
	}
}

func (fc *fakeConn) send(f []byte) {
	select {
	case fc.out <- timed{f, time.Now()}:
	case <-fc.done:
	}
}

// streamList is the sorted set. mu held by the caller or not needed.
func (fc *fakeConn) streamList() []string {
	var out []string
	for s := range fc.streams {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func (fc *fakeConn) Streams() []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.streamList()
}

func (fc *fakeConn) Methods() []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return slices.Clone(fc.methods)
}

func (fc *fakeConn) closed() bool {
	select {
	case <-fc.done:
		return true
	default:
		return false
	}
}

// conn returns connection id (1-based), waiting for it to be accepted.
func (fb *fakeBinance) conn(t *testing.T, id int) *fakeConn {
	t.Helper()
	var fc *fakeConn
	waitFor(t, 5*time.Second, fmt.Sprintf("connection %d", id), func() bool {
		fb.mu.Lock()
		defer fb.mu.Unlock()
		if len(fb.conns) >= id {
			fc = fb.conns[id-1]
			return true
		}
		return false
	})
	return fc
}

// publish sends frame to every live connection subscribed to stream.
func (fb *fakeBinance) publish(stream string, frame []byte) {
	fb.mu.Lock()
	conns := slices.Clone(fb.conns)
	fb.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		sub := c.streams[stream]
		c.mu.Unlock()
		if sub && !c.closed() {
			c.send(frame)
		}
	}
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorded is one real combined-stream frame with its stream and identity.
type recorded struct {
	stream string
	id     int64
	frame  []byte
}

var (
	recOnce sync.Once
	recAll  []recorded
	recErr  error
)

// realFrames returns the first n combined-stream frames of the real spot
// BTCUSDT recording (trade, depth@100ms, bookTicker), in recorded order.
func realFrames(t testing.TB, n int) []recorded {
	t.Helper()
	recOnce.Do(func() {
		f, err := os.Open("../testdata/binance/hft-spot-btcusdt-20240808.txt.gz")
		if err != nil {
			recErr = err
			return
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			recErr = err
			return
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 64<<20)
		dec := binance.NewDecoder()
		var m binance.Message
		for sc.Scan() && len(recAll) < 20000 {
			_, body, _ := bytes.Cut(sc.Bytes(), []byte(" "))
			if !bytes.HasPrefix(body, []byte(`{"stream"`)) {
				continue
			}
			if err := dec.Decode(body, &m); err != nil {
				recErr = err
				return
			}
			var id int64
			switch m.Kind {
			case binance.KindTrade, binance.KindAggTrade:
				id = m.Trade.ID
			case binance.KindDepthUpdate:
				id = m.Depth.FinalID
			case binance.KindBookTicker:
				id = m.Ticker.UpdateID
			default:
				recErr = fmt.Errorf("unexpected kind %v", m.Kind)
				return
			}
			recAll = append(recAll, recorded{stream: m.Stream, id: id, frame: bytes.Clone(body)})
		}
		if err := sc.Err(); err != nil {
			recErr = err
		}
	})
	if recErr != nil {
		t.Fatal(recErr)
	}
	if len(recAll) < n {
		t.Fatalf("only %d recorded frames, want %d", len(recAll), n)
	}
	return recAll[:n]
}

// collector is a Handler recording (stream, identity) of every frame.
type collector struct {
	mu  sync.Mutex
	dec *binance.Decoder
	msg binance.Message
	got map[string][]int64
	n   int
	raw [][]byte
}

func newCollector() *collector {
	return &collector{dec: binance.NewDecoder(), got: map[string][]int64{}}
}

func (c *collector) handle(frame []byte, _ time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if err := c.dec.Decode(frame, &c.msg); err != nil {
		c.raw = append(c.raw, bytes.Clone(frame))
		return
	}
	var id int64
	switch c.msg.Kind {
	case binance.KindTrade, binance.KindAggTrade:
		id = c.msg.Trade.ID
	case binance.KindDepthUpdate:
		id = c.msg.Depth.FinalID
	case binance.KindBookTicker:
		id = c.msg.Ticker.UpdateID
	default:
		c.raw = append(c.raw, bytes.Clone(frame))
		return
	}
	c.got[c.msg.Stream] = append(c.got[c.msg.Stream], id)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *collector) ids(stream string) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got[stream])
}

// snapshotFrame returns the real REST depth snapshot body (64 KB) of the
// spot BTCUSDT recording.
func snapshotFrame(t testing.TB) []byte {
	t.Helper()
	f, err := os.Open("../testdata/binance/hft-spot-btcusdt-20240808.txt.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		_, body, _ := bytes.Cut(sc.Bytes(), []byte(" "))
		if bytes.HasPrefix(body, []byte(`{"lastUpdateId"`)) {
			return bytes.Clone(body)
		}
	}
	t.Fatal("no snapshot line")
	return nil
}
