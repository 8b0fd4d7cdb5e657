package feed

import (
	"bytes"
	"testing"
	"time"

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
