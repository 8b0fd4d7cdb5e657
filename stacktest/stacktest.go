// Package stacktest builds, for tests, the stack the bus tests run on: the
// Binance simulator replaying a real recording, a service reading it, and
// a bus Publisher sending the service's events to NATS (a server from
// natstest or bus.StartEmbedded). It also holds the small helpers every
// such test repeats: the path of a recording, a test logger, a simulator
// closed at cleanup.
//
// Tests only: no non-test code may import it (its own test checks the
// module). Everything it starts is stopped and waited for in the test's
// cleanup, so goleak in TestMain finds nothing of it. Helpers fail the
// test, never skip.
package stacktest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/feed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/natstest"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// Testdata is the path of a real recording under testdata/binance.
func Testdata(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "binance", name)
}

// Logger logs to the test's log with -v (level info) and discards
// otherwise.
func Logger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// DialLimiter replaces the process-wide 300-per-5-minutes dial limiter:
// loopback tests dial thousands of times.
var DialLimiter = feed.NewDialLimiter(1<<16, time.Second)

// StartSim starts a simulator on loopback as cfg says and closes it at
// cleanup (a close error fails the test).
func StartSim(tb testing.TB, cfg sim.Config) *sim.Server {
	tb.Helper()
	srv, err := sim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("sim close: %v", err)
		}
	})
	return srv
}

// WaitFor is natstest.WaitFor: it polls cond until it holds and fails
// the test when bound passes first.
func WaitFor(tb testing.TB, what string, bound time.Duration, cond func() bool) {
	tb.Helper()
	natstest.WaitFor(tb, what, bound, cond)
}

// StopService stops s within 10 s; an error fails the test.
func StopService(tb testing.TB, s *service.Service) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		tb.Errorf("stop: %v", err)
	}
}

// FeedConfig says what StartFeed builds.
type FeedConfig struct {
	File      string              // the recording the simulator replays (hftbacktest or cryptofeed)
	Conn      *nats.Conn          // the bus the publisher sends to
	Publisher bus.PublisherConfig // Market and Logger are filled in
	Flow      flow.Config         // the feed service's metrics
}

// Feed is a running feed: the simulator replaying a recording as fast as
// the service reads (nothing dropped), the service on the trade channel
// (no backfill), and the publisher sending the service's events.
type Feed struct {
	Sim       *sim.Server
	Service   *service.Service
	Publisher *bus.Publisher

	svcOnce, pubOnce sync.Once
	paused           chan struct{}
	cancel           context.CancelFunc
	pubErr           chan error
	err              error
}

// NewFeed builds the stack and runs the publisher; the replay waits,
// paused, for Start. Everything stops at cleanup unless the test stopped
// it before.
func NewFeed(tb testing.TB, cfg FeedConfig) *Feed {
	tb.Helper()
	rec, err := sim.LoadRecording("", cfg.File)
	if err != nil {
		tb.Fatal(err)
	}
	srv := StartSim(tb, sim.Config{Recording: rec, Speed: -1, Paused: true, WeightLimit: 1 << 30})
	pc := cfg.Publisher
	pc.Market = srv.Market()
	pc.Logger = Logger(tb)
	pub, err := bus.NewPublisher(cfg.Conn, pc)
	if err != nil {
		tb.Fatal(err)
	}
	ws, rest := srv.URL()
	svc, err := service.New(service.Config{Symbols: srv.Symbols(), Market: srv.Market(), WSURL: ws, RESTURL: rest,
		TradeChannel: binance.ChannelTrade, Backfill: -1, LogTrades: -1, Logger: Logger(tb), DialLimiter: DialLimiter,
		Flow: cfg.Flow})
	if err != nil {
		tb.Fatal(err)
	}
	svc.AddEventHook(pub.Hook)
	f := &Feed{Sim: srv, Service: svc, Publisher: pub, paused: make(chan struct{}), pubErr: make(chan error, 1)}
	var firstTrade sync.Once
	svc.AddEventHook(func(ev service.Event) {
		if ev.Trade != nil {
			firstTrade.Do(func() { srv.Pause(); close(f.paused) })
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.pubErr <- pub.Run(ctx) }()
	tb.Cleanup(func() {
		if err := f.StopPublisher(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return f
}

// StartFeed is NewFeed and Start.
func StartFeed(tb testing.TB, cfg FeedConfig) *Feed {
	tb.Helper()
	f := NewFeed(tb, cfg)
	f.Start(tb)
	return f
}

// Start starts the feed service and returns once the replay streams on
// with a synced book: the replay is paused at the first trade until the
// book of the first symbol is synced (the simulator answers REST while
// paused), so most of the recording is checked with a book.
func (f *Feed) Start(tb testing.TB) {
	tb.Helper()
	srv, svc := f.Sim, f.Service
	if err := svc.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.StopService(tb) })
	WaitFor(tb, "feed service connected", 20*time.Second, func() bool {
		st := svc.Status()
		return st.State == "running" && len(st.Streams) > 0 && !slices.ContainsFunc(st.Streams, func(s service.StreamStatus) bool { return s.State != "connected" })
	})
	srv.Play()
	<-f.paused
	sym := srv.Symbols()[0]
	WaitFor(tb, "book synced", 30*time.Second, func() bool {
		var seen, synced bool
		_ = svc.ViewSymbol(sym, func(s *engine.Symbol) error {
			seen, synced = s.DepthTime != 0, s.Synced()
			return nil
		})
		if !seen { // no depth event yet to start the sync: let a little through
			srv.Play()
			time.Sleep(2 * time.Millisecond)
			srv.Pause()
		}
		return synced
	})
	srv.Play()
}

// WaitCaughtUp waits until the feed service's first symbol holds trade
// lastID and its synced book is at update lastU (the recording's last
// trade and depth event).
func (f *Feed) WaitCaughtUp(tb testing.TB, lastID, lastU int64) {
	tb.Helper()
	sym := f.Sim.Symbols()[0]
	WaitFor(tb, fmt.Sprintf("trade %d and update %d in the feed", lastID, lastU), 120*time.Second, func() bool {
		var id, u int64
		_ = f.Service.ViewSymbol(sym, func(s *engine.Symbol) error {
			id = s.Flow.Totals().LastID
			if s.Synced() {
				u = s.Book().UpdateID()
			}
			return nil
		})
		return id >= lastID && u == lastU
	})
}

// StopService stops the feed service (once) within 10 s; an error fails
// the test. The publisher goes on until StopPublisher.
func (f *Feed) StopService(tb testing.TB) {
	tb.Helper()
	f.svcOnce.Do(func() { StopService(tb, f.Service) })
}

// StopPublisher ends the publisher's run, which drains its queue first,
// and returns its error (the same on every call).
func (f *Feed) StopPublisher() error {
	f.pubOnce.Do(func() {
		f.cancel()
		f.err = <-f.pubErr
		if f.err != nil {
			f.err = fmt.Errorf("publisher run: %w", f.err)
		}
	})
	return f.err
}
