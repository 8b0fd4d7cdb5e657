package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// LatencyOptions configures Latency.
type LatencyOptions struct {
	// Rate is the frames written per second (default 20,000).
	Rate int
	// Rounds is how many times the recording is played, each to a fresh
	// service (default 1).
	Rounds int
	// WarmupFrames are written before samples count in each round
	// (default 2,000: the connection's and the snapshot's start-up).
	WarmupFrames int
	// Progress, if set, is called after each round.
	Progress func(round, rounds int)
}

// LatencyResult holds frame-to-metric latencies.
type LatencyResult struct {
	Rate             int
	Frames           int64 // frames written (trades and depth diffs)
	Samples          int   // trades timed
	Missing          int64 // trades written but never seen by OnEvent
	P50, P99, P999   time.Duration
	Max, Mean        time.Duration
	SendLag          time.Duration // how far the writer fell behind its schedule, at worst
	AchievedRate     float64       // frames per second actually written
	BookSynced       bool          // the service's book was in sync at the end of every round
	TradesPerRound   int
	DepthPerRound    int
	WarmupFrames     int
	RoundsCompleted  int
	ServiceTradeSeen int64
}

// latencyFeed is the recording prepared for the writer: the frames of the
// streams the service subscribes (trade and diff depth; bookTicker is not
// subscribed), the trade id each frame carries (-1 for depth) and the
// snapshot body the REST endpoint answers with.
type latencyFeed struct {
	symbol   string
	frames   [][]byte
	tradeID  []int64
	firstID  int64
	nTrades  int
	snapshot []byte
	channel  string // trade channel: "trade" or "aggTrade"
	depth    string // depth channel, e.g. "depth@100ms"
}

func prepareLatencyFeed(c *Corpus) (*latencyFeed, error) {
	f := &latencyFeed{firstID: -1}
	dec := binance.NewDecoder()
	var m binance.Message
	for i := range c.Records {
		r := &c.Records[i]
		if r.Kind == capture.Snapshot {
			if f.snapshot == nil {
				f.snapshot = r.Data
			}
			continue
		}
		if err := dec.Decode(r.Data, &m); err != nil {
			return nil, fmt.Errorf("bench: latency: record %d: %w", i, err)
		}
		var sym string
		switch m.Kind {
		case binance.KindTrade, binance.KindAggTrade:
			sym = m.Trade.Symbol
			if f.firstID < 0 {
				f.firstID = m.Trade.ID
			}
			if m.Trade.ID < f.firstID || m.Trade.ID-f.firstID > 50_000_000 {
				return nil, fmt.Errorf("bench: latency: trade id %d out of range", m.Trade.ID)
			}
			f.tradeID = append(f.tradeID, m.Trade.ID)
			f.nTrades++
			f.channel = binance.ChannelTrade
			if m.Kind == binance.KindAggTrade {
				f.channel = binance.ChannelAggTrade
			}
		case binance.KindDepthUpdate:
			sym = m.Depth.Symbol
			f.tradeID = append(f.tradeID, -1)
			if f.depth == "" {
				f.depth = streamChannel(m.Stream)
			}
		default:
			continue
		}
		if f.symbol == "" {
			f.symbol = sym
		} else if sym != f.symbol {
			return nil, fmt.Errorf("bench: latency: one symbol only, got %s and %s", f.symbol, sym)
		}
		f.frames = append(f.frames, r.Data)
	}
	if f.nTrades == 0 || f.snapshot == nil || f.depth == "" {
		return nil, errors.New("bench: latency: the recording needs trades, depth diffs and a snapshot")
	}
	return f, nil
}

// streamChannel returns the channel of a stream name ("btcusdt@depth@100ms"
// gives "depth@100ms").
func streamChannel(stream string) string {
	if i := strings.IndexByte(stream, '@'); i >= 0 {
		return stream[i+1:]
	}
	return stream
}

// Latency measures the time from writing a trade frame to a loopback
// WebSocket until the trade is in the service's metrics (the service's
// OnEvent hook, which runs right after flow.Tracker.Add under the data
// lock). A writer in this process paces the recording's trade and depth
// frames at opts.Rate and notes each frame's send time just before the
// write; the hook looks the trade up by id. Both clocks are the same
// monotonic clock, so no synchronization error enters.
func Latency(ctx context.Context, c *Corpus, opts LatencyOptions) (*LatencyResult, error) {
	if opts.Rate <= 0 {
		opts.Rate = 20_000
	}
	opts.Rounds = max(opts.Rounds, 1)
	if opts.WarmupFrames <= 0 {
		opts.WarmupFrames = 2000
	}
	feed, err := prepareLatencyFeed(c)
	if err != nil {
		return nil, err
	}
	res := &LatencyResult{Rate: opts.Rate, TradesPerRound: feed.nTrades, DepthPerRound: len(feed.frames) - feed.nTrades,
		WarmupFrames: opts.WarmupFrames, BookSynced: true}
	var all []time.Duration
	var written int64
	var writeTime time.Duration
	for round := range opts.Rounds {
		lat, st, err := latencyRound(ctx, feed, opts)
		if err != nil {
			return nil, fmt.Errorf("bench: latency round %d: %w", round+1, err)
		}
		all = append(all, lat...)
		res.Missing += st.missing
		res.SendLag = max(res.SendLag, st.maxLag)
		res.BookSynced = res.BookSynced && st.synced
		res.ServiceTradeSeen += st.seen
		written += int64(len(feed.frames))
		writeTime += st.writeTime
		res.RoundsCompleted++
		if opts.Progress != nil {
			opts.Progress(round+1, opts.Rounds)
		}
	}
	res.Frames = written
	res.AchievedRate = float64(written) / writeTime.Seconds()
	if len(all) == 0 {
		return res, errors.New("bench: latency: no samples")
	}
	slices.Sort(all)
	res.Samples = len(all)
	pick := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	res.P50, res.P99, res.P999, res.Max = pick(0.50), pick(0.99), pick(0.999), all[len(all)-1]
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	res.Mean = sum / time.Duration(len(all))
	return res, nil
}

type roundStats struct {
	missing   int64
	seen      int64
	maxLag    time.Duration
	synced    bool
	writeTime time.Duration
}

func latencyRound(ctx context.Context, f *latencyFeed, opts LatencyOptions) ([]time.Duration, roundStats, error) {
	var st roundStats
	base := time.Now()
	span := f.tradeID[len(f.tradeID)-1] - f.firstID + 1
	for _, id := range f.tradeID {
		span = max(span, id-f.firstID+1)
	}
	sent := make([]atomic.Int64, span) // send time (ns since base) by trade id; 0: not timed
	recv := make([]int64, span)        // written only by OnEvent (one goroutine at a time, under the service's lock)
	var seen atomic.Int64

	srv, err := newFrameServer(f, base, sent, opts)
	if err != nil {
		return nil, st, err
	}
	defer srv.close()

	ws, rest := srv.urls()
	svc, err := service.New(service.Config{
		Symbols: []string{f.symbol}, Market: market.Spot, WSURL: ws, RESTURL: rest,
		TradeChannel: f.channel, DepthChannel: f.depth, Backfill: -1, LogTrades: -1,
		Logger: slog.New(slog.DiscardHandler),
		OnEvent: func(ev service.Event) {
			if ev.Trade == nil {
				return
			}
			now := time.Since(base).Nanoseconds()
			i := ev.Trade.ID - f.firstID
			if i >= 0 && i < int64(len(recv)) {
				recv[i] = now
				seen.Add(1)
			}
		},
	})
	if err != nil {
		return nil, st, err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, st, err
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return svc.Stop(sctx)
	}
	defer stop()

	// Wait for the writer to finish, then for the last trade to land.
	select {
	case <-srv.done:
	case <-ctx.Done():
		return nil, st, ctx.Err()
	}
	if srv.err != nil {
		return nil, st, srv.err
	}
	deadline := time.Now().Add(5 * time.Second)
	for seen.Load() < int64(f.nTrades) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st.seen = seen.Load()
	err = svc.ViewSymbol(f.symbol, func(s *engine.Symbol) error {
		st.synced = s.Synced()
		return nil
	})
	if err != nil {
		return nil, st, err
	}
	if err := stop(); err != nil {
		return nil, st, err
	}
	st.maxLag = time.Duration(srv.maxLag)
	st.writeTime = srv.writeTime
	lat := make([]time.Duration, 0, f.nTrades)
	for k, id := range f.tradeID {
		if id < 0 || k < opts.WarmupFrames {
			continue
		}
		i := id - f.firstID
		s := sent[i].Load()
		if recv[i] == 0 {
			st.missing++
			continue
		}
		lat = append(lat, time.Duration(recv[i]-s))
	}
	return lat, st, nil
}

// frameServer is a loopback Binance stand-in: one WebSocket stream that
// plays the feed's frames at a fixed rate once a client connects, and the
// recorded REST depth snapshot.
type frameServer struct {
	f      *latencyFeed
	ln     net.Listener
	hs     *http.Server
	base   time.Time
	sent   []atomic.Int64
	opts   LatencyOptions
	once   sync.Once
	done   chan struct{}
	err    error
	maxLag int64
	// writeTime is the time from the first write to the last.
	writeTime time.Duration
	wg        sync.WaitGroup
	cancel    context.CancelFunc
	ctx       context.Context
}

func newFrameServer(f *latencyFeed, base time.Time, sent []atomic.Int64, opts LatencyOptions) (*frameServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &frameServer{f: f, ln: ln, base: base, sent: sent, opts: opts, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v3/depth", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-MBX-USED-WEIGHT-1M", "50")
		_, _ = w.Write(f.snapshot)
	})
	mux.HandleFunc("/stream", s.stream)
	s.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.hs.Serve(ln)
	}()
	return s, nil
}

func (s *frameServer) urls() (ws, rest string) {
	a := s.ln.Addr().String()
	return "ws://" + a, "http://" + a
}

func (s *frameServer) close() {
	s.cancel()
	_ = s.hs.Close()
	s.wg.Wait()
}

// stream serves the first connection the frames; later ones (a reconnect
// would spoil the measurement) get nothing and the round reports missing
// trades.
func (s *frameServer) stream(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	first := false
	s.once.Do(func() { first = true })
	ctx := c.CloseRead(s.ctx) // answers pings, drops anything else
	if !first {
		<-ctx.Done()
		return
	}
	s.err = s.play(ctx, c)
	close(s.done)
	if s.err == nil {
		// Keep the connection open until the round ends, as Binance
		// would, so the service does not see a disconnect.
		<-ctx.Done()
	}
}

// play writes the frames on schedule: frame k at start + k/rate. Sleeping
// is too coarse for 50 µs gaps, so the last stretch before each frame is
// a spin that yields the processor.
func (s *frameServer) play(ctx context.Context, c *websocket.Conn) error {
	interval := time.Second / time.Duration(s.opts.Rate)
	start := time.Now()
	for k, fr := range s.f.frames {
		due := start.Add(time.Duration(k) * interval)
		for {
			d := time.Until(due)
			if d <= 0 {
				s.maxLag = max(s.maxLag, int64(-d))
				break
			}
			if d > 200*time.Microsecond {
				time.Sleep(d - 100*time.Microsecond)
			} else {
				runtime.Gosched()
			}
		}
		if id := s.f.tradeID[k]; id >= 0 {
			s.sent[id-s.f.firstID].Store(time.Since(s.base).Nanoseconds())
		}
		if err := c.Write(ctx, websocket.MessageText, fr); err != nil {
			return fmt.Errorf("write frame %d: %w", k, err)
		}
	}
	s.writeTime = time.Since(start)
	return nil
}
