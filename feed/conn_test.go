package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/orderflow/orderflow/market"
)

var btcStreams = []string{"btcusdt@bookTicker", "btcusdt@depth@100ms", "btcusdt@trade"}

// lockedBuf is a goroutine-safe log sink.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runConn starts c.Run and returns a stop function that cancels it and
// checks it returned promptly.
func runConn(t *testing.T, c *Conn) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newTestConn(t *testing.T, fb *fakeBinance, col *collector, mod func(*Options)) *Conn {
	t.Helper()
	o := Options{
		BaseURL: fb.url(), Streams: btcStreams, Handler: col.handle, Logger: quiet,
		DialLimiter: testLimiter, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		ControlRate: 1000,
	}
	if mod != nil {
		mod(&o)
	}
	c, err := NewConn(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkSequences asserts each stream's delivered ids are exactly the
// recorded ones from the first delivered id on: no gap, no duplicate.
func checkSequences(t *testing.T, col *collector, frames []recorded) {
	t.Helper()
	want := map[string][]int64{}
	for _, f := range frames {
		want[f.stream] = append(want[f.stream], f.id)
	}
	for stream, ids := range want {
		got := col.ids(stream)
		if len(got) == 0 {
			t.Fatalf("%s: nothing delivered", stream)
		}
		i := slices.Index(ids, got[0])
		if i < 0 {
			t.Fatalf("%s: first delivered id %d not in the recording", stream, got[0])
		}
		if !slices.Equal(got, ids[i:]) {
			for k := range min(len(got), len(ids)-i) {
				if got[k] != ids[i+k] {
					t.Fatalf("%s: delivered %d ids (want %d); first difference at %d: got %d want %d", stream, len(got), len(ids)-i, k, got[k], ids[i+k])
				}
			}
			t.Fatalf("%s: delivered %d ids, want %d", stream, len(got), len(ids)-i)
		}
	}
}

func publishAll(fb *fakeBinance, frames []recorded) {
	for _, f := range frames {
		fb.publish(f.stream, f.frame)
	}
}

func waitDelivered(t *testing.T, col *collector, frames []recorded) {
	t.Helper()
	last := map[string]int64{}
	for _, f := range frames {
		last[f.stream] = f.id
	}
	waitFor(t, 10*time.Second, "last frame of every stream", func() bool {
		for s, id := range last {
			ids := col.ids(s)
			if len(ids) == 0 || ids[len(ids)-1] != id {
				return false
			}
		}
		return true
	})
}

func TestConnectAndReceive(t *testing.T) {
	fb := newFake(t)
	col := newCollector()
	var logs lockedBuf
	c := newTestConn(t, fb, col, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	runConn(t, c)
	fc := fb.conn(t, 1)
	if got := fc.Streams(); !slices.Equal(got, btcStreams) {
		t.Fatalf("server sees streams %v, want %v", got, btcStreams)
	}
	waitFor(t, 5*time.Second, "connected", func() bool { return c.Status().State == StateConnected })
	frames := realFrames(t, 2000)
	publishAll(fb, frames)
	// A message over the library's default 32 KiB read limit must pass:
	// the real 64 KB depth snapshot body of the same recording, sent as a
	// raw frame (the largest recorded stream frame is 28.6 KB).
	big := snapshotFrame(t)
	if len(big) <= 32<<10 {
		t.Fatalf("snapshot body is %d bytes, want over 32 KiB", len(big))
	}
	fc.send(big)
	waitFor(t, 5*time.Second, "all frames", func() bool { return col.count() == len(frames)+1 })
	checkSequences(t, col, frames)
	col.mu.Lock()
	gotBig := len(col.raw) == 1 && bytes.Equal(col.raw[0], big)
	col.mu.Unlock()
	if !gotBig {
		t.Fatal("the 64 KB frame was not delivered intact")
	}
	st := c.Status()
	if st.Frames != uint64(len(frames)+1) || st.Delivered != st.Frames || st.Reconnects != 0 || st.Streams != 3 {
		t.Fatalf("status %+v", st)
	}
	out := logs.String()
	for _, want := range []string{"msg=\"Connected to BTCUSDT trades stream\"", "msg=\"Connected to BTCUSDT depth@100ms stream\"", "msg=\"Connected to BTCUSDT bookTicker stream\"", "duration="} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestReconnect(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(*fakeConn)
	}{
		{"ServerClose", func(fc *fakeConn) { fc.ws.Close(websocket.StatusGoingAway, "restart") }},
		{"ServerReset", func(fc *fakeConn) { fc.ws.CloseNow() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := newFake(t)
			col := newCollector()
			var mu sync.Mutex
			var states []State
			c := newTestConn(t, fb, col, func(o *Options) {
				o.OnStatus = func(_, s State) { mu.Lock(); states = append(states, s); mu.Unlock() }
			})
			runConn(t, c)
			frames := realFrames(t, 1000)
			fc1 := fb.conn(t, 1)
			waitFor(t, 5*time.Second, "connected", func() bool { return c.Status().State == StateConnected })
			publishAll(fb, frames[:500])
			waitFor(t, 5*time.Second, "first half", func() bool { return col.count() == 500 })
			tc.drop(fc1)
			fc2 := fb.conn(t, 2)
			if got := fc2.Streams(); !slices.Equal(got, btcStreams) {
				t.Fatalf("reconnected with %v, want %v", got, btcStreams)
			}
			waitFor(t, 5*time.Second, "connected again", func() bool { return c.Status().State == StateConnected })
			publishAll(fb, frames[500:])
			waitFor(t, 5*time.Second, "second half", func() bool { return col.count() == 1000 })
			checkSequences(t, col, frames)
			if st := c.Status(); st.Reconnects != 1 {
				t.Fatalf("status %+v, want 1 reconnect", st)
			}
			mu.Lock()
			got := slices.Clone(states)
			mu.Unlock()
			want := []State{StateConnecting, StateConnected, StateReconnecting, StateConnected}
			if !slices.Equal(got, want) {
				t.Fatalf("state changes %v, want %v", got, want)
			}
		})
	}
}

func TestHalfOpenDetected(t *testing.T) {
	fb := newFake(t)
	col := newCollector()
	const stale = 300 * time.Millisecond
	c := newTestConn(t, fb, col, func(o *Options) { o.StaleTimeout = stale })
	runConn(t, c)
	fc1 := fb.conn(t, 1)
	waitFor(t, 5*time.Second, "connected", func() bool { return c.Status().State == StateConnected })
	publishAll(fb, realFrames(t, 10))
	waitFor(t, 5*time.Second, "frames", func() bool { return col.count() == 10 })
	start := time.Now()
	fc1.silent.Store(true) // the server goes quiet but keeps the socket open
	fb.conn(t, 2)
	took := time.Since(start)
	if took < stale-50*time.Millisecond || took > stale+time.Second {
		t.Fatalf("redialed %v after the feed went quiet, want about %v", took, stale)
	}
	if st := c.Status(); st.Stale != 1 || st.Reconnects != 1 {
		t.Fatalf("status %+v, want 1 stale close and 1 reconnect", st)
	}
}

func TestSubscriptions(t *testing.T) {
	t.Run("ResubscribeAfterReconnect", func(t *testing.T) {
		fb := newFake(t)
		c := newTestConn(t, fb, newCollector(), nil)
		runConn(t, c)
		fc1 := fb.conn(t, 1)
		waitFor(t, 5*time.Second, "connected", func() bool { return c.Status().State == StateConnected })
		ctx := t.Context()
		if err := c.Subscribe(ctx, "ethusdt@trade", "btcusdt@trade"); err != nil {
			t.Fatal(err)
		}
		if err := c.Unsubscribe(ctx, "btcusdt@bookTicker"); err != nil {
			t.Fatal(err)
		}
		want := []string{"btcusdt@depth@100ms", "btcusdt@trade", "ethusdt@trade"}
		if got := fc1.Streams(); !slices.Equal(got, want) {
			t.Fatalf("live streams %v, want %v", got, want)
		}
		if got := fc1.Methods(); !slices.Equal(got, []string{"SUBSCRIBE", "UNSUBSCRIBE"}) {
			t.Fatalf("methods %v", got)
		}
		list, err := c.ListSubscriptions(ctx)
		if err != nil || !slices.Equal(list, want) {
			t.Fatalf("ListSubscriptions %v, %v", list, err)
		}
		fc1.ws.CloseNow()
		fc2 := fb.conn(t, 2)
		if got := fc2.Streams(); !slices.Equal(got, want) {
			t.Fatalf("after reconnect the server sees %v, want %v", got, want)
		}
		if got := fc2.Methods(); len(got) != 0 {
			t.Fatalf("reconnect sent %v; the URL should carry the set", got)
		}
	})
	t.Run("ErrorReply", func(t *testing.T) {
		fb := newFake(t)
		fb.reject = func(s string) bool { return strings.HasPrefix(s, "bad") }
		c := newTestConn(t, fb, newCollector(), nil)
		runConn(t, c)
		fc1 := fb.conn(t, 1)
		waitFor(t, 5*time.Second, "connected", func() bool { return c.Status().State == StateConnected })
		err := c.Subscribe(t.Context(), "badcoin@trade")
		var re *ReplyError
		if !errors.As(err, &re) || re.Code != 2 || re.Method != "SUBSCRIBE" {
			t.Fatalf("err %v, want ReplyError code 2", err)
		}
		if got := c.Streams(); !slices.Equal(got, btcStreams) {
			t.Fatalf("set %v after a rejected subscribe, want %v", got, btcStreams)
		}
		if got := fc1.Streams(); !slices.Equal(got, btcStreams) {
			t.Fatalf("server set %v", got)
		}
	})
	t.Run("TooManyStreams", func(t *testing.T) {
		fb := newFake(t)
		c := newTestConn(t, fb, newCollector(), nil)
		runConn(t, c)
		fc1 := fb.conn(t, 1)
		var many []string
		for i := range 1022 {
			many = append(many, fmt.Sprintf("sym%d@trade", i))
		}
		err := c.Subscribe(t.Context(), many...)
		if !errors.Is(err, ErrTooManyStreams) {
			t.Fatalf("err %v, want ErrTooManyStreams", err)
		}
		if got := fc1.Methods(); len(got) != 0 {
			t.Fatalf("sent %v despite the limit", got)
		}
		if err := c.Subscribe(t.Context(), many[:1021]...); err != nil {
			t.Fatalf("1024 streams in all: %v", err)
		}
		if n := len(fc1.Streams()); n != 1024 {
			t.Fatalf("server carries %d streams, want 1024", n)
		}
	})
	t.Run("InvalidName", func(t *testing.T) {
		fb := newFake(t)
		c := newTestConn(t, fb, newCollector(), nil)
		if err := c.Subscribe(t.Context(), "btc usdt@trade"); err == nil || !strings.Contains(err.Error(), "offset 3") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestMakeBeforeBreak(t *testing.T) {
	shutdown := []byte(`{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1723161300000}}`)
	for _, tc := range []struct {
		name     string
		delay    func(id int) time.Duration
		maxAge   time.Duration
		shutdown bool
	}{
		// The new connection gets events before the old one has delivered
		// them: they must be held back, not dropped.
		{"ServerShutdownNewConnAhead", func(id int) time.Duration {
			if id == 1 {
				return 30 * time.Millisecond
			}
			return 0
		}, 0, true},
		// The new connection lags: its first events are duplicates.
		{"ServerShutdownNewConnBehind", func(id int) time.Duration {
			if id == 2 {
				return 30 * time.Millisecond
			}
			return 0
		}, 0, true},
		{"MaxAge", nil, 400 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := newFake(t)
			fb.delay = tc.delay
			col := newCollector()
			c := newTestConn(t, fb, col, func(o *Options) {
				o.HandoverTimeout = 5 * time.Second
				if tc.maxAge > 0 {
					o.MaxAge = tc.maxAge
				}
			})
			runConn(t, c)
			fc1 := fb.conn(t, 1)
			waitFor(t, 5*time.Second, "connected", func() bool { return c.Status().State == StateConnected })
			frames := realFrames(t, 6000)
			// Publish at about 5 frames per millisecond, as a busy feed.
			pub := func(fs []recorded) {
				for i := 0; i < len(fs); i += 5 {
					publishAll(fb, fs[i:min(i+5, len(fs))])
					time.Sleep(time.Millisecond)
				}
			}
			pub(frames[:1500])
			if tc.shutdown {
				fc1.send(shutdown)
			}
			// Keep publishing through the overlap until the old connection
			// is closed by the client.
			i := 1500
			for ; i < 5000 && !fc1.closed(); i += 50 {
				pub(frames[i : i+50])
			}
			waitFor(t, 10*time.Second, "old connection closed", fc1.closed)
			pub(frames[i:])
			waitDelivered(t, col, frames)
			checkSequences(t, col, frames)
			st := c.Status()
			// With a short MaxAge the connection keeps rotating: every
			// rotation must be seamless.
			wantRot := st.Rotations == 1
			if tc.maxAge > 0 {
				wantRot = st.Rotations >= 1
			}
			// One connection per rotation, plus the first; with a short
			// MaxAge the next rotation may already have dialed its
			// replacement when the status is read.
			acc, conns := fb.accepted.Load(), int64(st.Rotations)+1
			connsOK := acc == conns || (tc.maxAge > 0 && acc == conns+1)
			if !wantRot || st.Reconnects != 0 || !connsOK || st.ForcedSwitches != 0 {
				t.Fatalf("status %+v, %d connections: want rotations, no reconnect, one connection per rotation, no forced switch", st, fb.accepted.Load())
			}
			if tc.shutdown && st.ServerShutdowns != 1 {
				t.Fatalf("ServerShutdowns %d", st.ServerShutdowns)
			}
			if fb.conn(t, int(st.Rotations)+1).closed() {
				t.Fatal("the replacement connection was closed")
			}
			t.Logf("%d frames received, %d delivered, %d duplicates dropped, switched at frame ~%d", st.Frames, st.Delivered, st.Duplicates, i)
		})
	}
}

func TestRunStopsPromptly(t *testing.T) {
	t.Run("MidDial", func(t *testing.T) {
		// A server that accepts TCP but never answers the handshake.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			cn, err := ln.Accept()
			if err == nil {
				accepted <- cn
			}
		}()
		c, err := NewConn(Options{BaseURL: "ws://" + ln.Addr().String(), Streams: btcStreams, Handler: func([]byte, time.Time) {}, Logger: quiet, DialLimiter: testLimiter})
		if err != nil {
			t.Fatal(err)
		}
		stop := runConn(t, c)
		cn := <-accepted
		defer cn.Close()
		start := time.Now()
		stop()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Run took %v to return mid-dial", d)
		}
	})
	t.Run("MidRead", func(t *testing.T) {
		fb := newFake(t)
		c := newTestConn(t, fb, newCollector(), nil)
		stop := runConn(t, c)
		fb.conn(t, 1)
		waitFor(t, 5*time.Second, "connected", func() bool { return c.Status().State == StateConnected })
		start := time.Now()
		stop()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Run took %v to return mid-read", d)
		}
		if st := c.Status(); st.State != StateClosed {
			t.Fatalf("state %v after Run, want closed", st.State)
		}
	})
	t.Run("DuringBackoff", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close() // nothing listens: every dial fails
		c, _ := NewConn(Options{BaseURL: "ws://" + addr, Streams: btcStreams, Handler: func([]byte, time.Time) {}, Logger: quiet, DialLimiter: testLimiter, BackoffMin: time.Hour, BackoffMax: time.Hour})
		stop := runConn(t, c)
		waitFor(t, 5*time.Second, "a failed dial", func() bool { return c.Status().DialErrors == 1 })
		start := time.Now()
		stop()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Run took %v to return during backoff", d)
		}
	})
	t.Run("ThousandStartCancelCycles", func(t *testing.T) {
		fb := newFake(t)
		base := runtime.NumGoroutine()
		c := newTestConn(t, fb, newCollector(), nil)
		for i := range 1000 {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			if d := rand.N(4); d > 0 {
				time.Sleep(time.Duration(d) * 300 * time.Microsecond)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("cycle %d: %v", i, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("cycle %d: Run did not return", i)
			}
		}
		// The fake server's handler goroutines for the last connections
		// end a little after the client's; on a loaded machine under -race
		// that takes seconds. A real leak stays (and goleak reports it).
		waitFor(t, 30*time.Second, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= base })
		t.Logf("%d connections accepted in 1000 cycles", fb.accepted.Load())
	})
	t.Run("SecondRunRefused", func(t *testing.T) {
		fb := newFake(t)
		c := newTestConn(t, fb, newCollector(), nil)
		runConn(t, c)
		fb.conn(t, 1)
		if err := c.Run(t.Context()); !errors.Is(err, ErrRunning) {
			t.Fatalf("second Run: %v", err)
		}
	})
}

// failTransport fails every request without touching the network, so a
// synctest bubble can drive the reconnect loop.
type failTransport struct {
	mu    sync.Mutex
	times []time.Time
}

func (f *failTransport) RoundTrip(*http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	f.mu.Unlock()
	return nil, errors.New("connection refused (simulated)")
}

func TestBackoff(t *testing.T) {
	t.Run("GrowthCapAndJitterBounds", func(t *testing.T) {
		b := Backoff{Min: 100 * time.Millisecond, Max: 30 * time.Second}
		for attempt := range 70 {
			ceil := 30 * time.Second
			if attempt < 9 {
				ceil = 100 * time.Millisecond << attempt
			}
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for range 3000 {
				d := b.Delay(attempt)
				lo, hi = min(lo, d), max(hi, d)
			}
			if lo < b.Min || hi > ceil {
				t.Fatalf("attempt %d: delays in [%v, %v], want within [%v, %v]", attempt, lo, hi, b.Min, ceil)
			}
			if ceil >= 400*time.Millisecond && hi-lo < (ceil-b.Min)*8/10 {
				t.Fatalf("attempt %d: delays in [%v, %v] do not spread over [%v, %v]", attempt, lo, hi, b.Min, ceil)
			}
		}
	})
	t.Run("RunWaitsBetweenDials", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ft := &failTransport{}
			c, err := NewConn(Options{
				BaseURL: "ws://binance.test", Streams: btcStreams, Handler: func([]byte, time.Time) {}, Logger: quiet,
				HTTPClient: &http.Client{Transport: ft}, DialLimiter: NewDialLimiter(1000, time.Minute),
				BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error)
			go func() { done <- c.Run(ctx) }()
			time.Sleep(time.Minute)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			ft.mu.Lock()
			times := slices.Clone(ft.times)
			ft.mu.Unlock()
			if len(times) < 20 {
				t.Fatalf("%d dials in a minute", len(times))
			}
			for i := 1; i < len(times); i++ {
				gap := times[i].Sub(times[i-1])
				ceil := 2 * time.Second
				if i < 6 {
					ceil = 100 * time.Millisecond << (i - 1)
				}
				if gap < 100*time.Millisecond || gap > ceil {
					t.Fatalf("gap before dial %d is %v, want within [100ms, %v]", i, gap, ceil)
				}
			}
			if st := c.Status(); st.DialErrors != uint64(len(times)) || st.State != StateClosed {
				t.Fatalf("status %+v", st)
			}
		})
	})
	t.Run("DialLimiterWindow", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := NewDialLimiter(300, 5*time.Minute)
			start := time.Now()
			for range 300 {
				if err := l.Wait(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if time.Since(start) != 0 {
				t.Fatal("the first 300 attempts waited")
			}
			time.Sleep(time.Minute)
			if err := l.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d != 5*time.Minute {
				t.Fatalf("attempt 301 went at %v, want 5m", d)
			}
			one := NewDialLimiter(1, time.Minute)
			if err := one.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := one.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("second attempt within the window: %v, want the deadline to pass first", err)
			}
		})
	})
}

func TestPool(t *testing.T) {
	fb := newFake(t)
	col := newCollector()
	p, err := NewPool(PoolOptions{
		Conn:              Options{BaseURL: fb.url(), Market: market.USDM, Handler: col.handle, Logger: quiet, DialLimiter: testLimiter, ControlRate: 1000},
		MaxStreamsPerConn: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := p.Add(t.Context(), "btcusdt@depth@100ms", "ethusdt@depth@100ms", "solusdt@bookTicker", "btcusdt@aggTrade", "ethusdt@aggTrade"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "3 connections", func() bool { return fb.accepted.Load() == 3 })
	byPath := map[string][]string{}
	for id := 1; id <= 3; id++ {
		fc := fb.conn(t, id)
		byPath[fc.path] = append(byPath[fc.path], strings.Join(fc.Streams(), ","))
	}
	slices.Sort(byPath["/public"])
	want := map[string][]string{
		"/public": {"btcusdt@depth@100ms,ethusdt@depth@100ms", "solusdt@bookTicker"},
		"/market": {"btcusdt@aggTrade,ethusdt@aggTrade"},
	}
	if fmt.Sprint(byPath) != fmt.Sprint(want) {
		t.Fatalf("connections %v, want %v", byPath, want)
	}
	connFor := func(stream string) *fakeConn {
		for id := 1; id <= int(fb.accepted.Load()); id++ {
			if fc := fb.conn(t, id); !fc.closed() && slices.Contains(fc.Streams(), stream) {
				return fc
			}
		}
		t.Fatalf("no connection carries %s", stream)
		return nil
	}
	sol, depth, agg := connFor("solusdt@bookTicker"), connFor("btcusdt@depth@100ms"), connFor("btcusdt@aggTrade")
	// Removing the only stream of a connection closes it, nothing else.
	if err := p.Remove(t.Context(), "solusdt@bookTicker"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "sol connection closed", sol.closed)
	if err := p.Remove(t.Context(), "ethusdt@depth@100ms"); err != nil {
		t.Fatal(err)
	}
	if got := depth.Methods(); !slices.Equal(got, []string{"UNSUBSCRIBE"}) {
		t.Fatalf("depth connection got %v", got)
	}
	// A new /public stream fills the room left, without a new connection.
	if err := p.Add(t.Context(), "xrpusdt@depth@100ms"); err != nil {
		t.Fatal(err)
	}
	if got := depth.Streams(); !slices.Equal(got, []string{"btcusdt@depth@100ms", "xrpusdt@depth@100ms"}) {
		t.Fatalf("depth connection streams %v", got)
	}
	if got := agg.Methods(); len(got) != 0 || fb.accepted.Load() != 3 || depth.closed() || agg.closed() {
		t.Fatalf("untouched connections were touched: agg methods %v, %d accepted", got, fb.accepted.Load())
	}
	st := p.Status()
	if len(st) != 2 {
		t.Fatalf("pool status %+v, want 2 connections", st)
	}
}
