package feed

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/orderflow/orderflow/binance"
)

// benchConn returns a Conn delivering to a no-op handler from session s,
// as in steady state (no handover).
func benchConn(tb testing.TB) (*Conn, *session) {
	tb.Helper()
	c, err := NewConn(Options{BaseURL: "ws://127.0.0.1:1", Streams: btcStreams, Handler: func([]byte, time.Time) {}, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	s := &session{id: 1, done: make(chan struct{})}
	c.cur, c.active = s, s
	return c, s
}

func TestSteadyStateDeliveryAllocatesNothing(t *testing.T) {
	c, s := benchConn(t)
	frames := realFrames(t, 1000)
	now := time.Now()
	allocs := testing.AllocsPerRun(5, func() {
		for _, f := range frames {
			c.onFrame(s, f.frame, now)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per 1000 frames, want 0", allocs)
	}
	if got := c.delivered.Load(); got != 6*1000 {
		t.Fatalf("delivered %d, want 6000", got)
	}
}

// BenchmarkOnFrame measures the per-frame routing cost on 1,000 real
// frames (trade, depth, bookTicker) in steady state.
func BenchmarkOnFrame(b *testing.B) {
	c, s := benchConn(b)
	frames := realFrames(b, 1000)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range frames {
			c.onFrame(s, f.frame, now)
		}
	}
}

// BenchmarkHandoverDeliver measures the routing cost while a rotation
// decodes each frame for its identity (old connection's side).
func BenchmarkHandoverDeliver(b *testing.B) {
	c, s := benchConn(b)
	s.dec = binance.NewDecoder()
	frames := realFrames(b, 1000)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		c.prepareHandover(s)
		for _, f := range frames {
			c.onFrame(s, f.frame, now)
		}
	}
}

func FuzzStreamOf(f *testing.F) {
	for _, r := range realFrames(f, 50) {
		f.Add(r.frame)
	}
	f.Add([]byte(`{"stream":"`))
	f.Add([]byte(`{"stream":""}`))
	f.Add([]byte(`{"result":null,"id":1}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		name, ok := streamOf(frame)
		if !ok {
			return
		}
		if len(name) == 0 || bytes.IndexByte(name, '"') >= 0 || !bytes.Contains(frame, name) {
			t.Fatalf("streamOf(%q) = %q", frame, name)
		}
	})
}

// BenchmarkReadPath measures the whole receive path per frame over a
// loopback WebSocket: the library's frame read, the read loop and the
// routing to the handler. One op is one real recorded frame; the server
// writes from the same process, so allocs/op counts both sides.
func BenchmarkReadPath(b *testing.B) {
	frames := realFrames(b, 1000)
	var got atomic.Int64
	want := make(chan int64, 1)
	reached := make(chan struct{}, 1)
	start := make(chan int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := ws.CloseRead(r.Context())
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-start:
				for i := range n {
					if ws.Write(ctx, websocket.MessageText, frames[i%len(frames)].frame) != nil {
						return
					}
				}
			}
		}
	}))
	defer srv.Close()
	c, err := NewConn(Options{BaseURL: "ws" + strings.TrimPrefix(srv.URL, "http"), Streams: btcStreams, Logger: quiet,
		Handler: func([]byte, time.Time) {
			n := got.Add(1)
			select {
			case w := <-want:
				if n >= w {
					reached <- struct{}{}
				} else {
					want <- w
				}
			default:
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for c.Status().State != StateConnected {
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	want <- got.Load() + int64(b.N)
	start <- b.N
	<-reached
}
