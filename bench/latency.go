package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// Pace is how the latency writer keeps its schedule.
type Pace string

// Paces.
const (
	// PaceTimer sleeps until the next frame is due, then writes every
	// frame that is due, back to back. Go's timers wake about 1 ms late on
	// Linux, so at 20,000 frames/s the frames leave in bursts of about 20:
	// cheap for the CPU, hard on the tail latency (a burst queues in the
	// service).
	PaceTimer Pace = "timer"
	// PaceSpin watches the clock without sleeping and writes each frame at
	// its due time. It keeps one CPU busy, so it belongs in a child process
	// (LatencyOptions.Writer), where the operating system, not Go's
	// scheduler, shares the CPUs between the writer and the service.
	PaceSpin Pace = "spin"
)

// LatencyOptions configures Latency.
type LatencyOptions struct {
	// Rate is the frames written per second (default 20,000).
	Rate int
	// Rounds is how many times the recording is played, each to a fresh
	// service and a fresh writer (default 1).
	Rounds int
	// WarmupFrames are written before samples count in each round
	// (default 2,000: the connection's and the snapshot's start-up).
	WarmupFrames int
	// Pace is the writer's pacing (default PaceTimer).
	Pace Pace
	// Push also measures the HTTP push endpoint: the service runs behind
	// the api package's server on loopback and a WebSocket client reads
	// /v1/ws?topics=trades; each trade's arrival there is a second sample.
	Push bool
	// Files are the recordings, for a writer in another process (the
	// corpus passed to Latency must be loaded from the same files).
	Files []string
	// Writer starts the frame writer; nil runs it in this process
	// (InProcessWriter). orderflow bench --latency runs it in a child
	// process.
	Writer WriterStarter
	// WriterCPUs, if set, are the CPUs the writer's process is pinned to
	// (WriterSpec.CPUs; for a writer in another process, see PinProcess).
	WriterCPUs []int
	// BusyPoll is the service's service.Config.BusyPoll: its stream reads
	// spin on the socket this long before sleeping (0: off).
	BusyPoll time.Duration
	// Progress, if set, is called after each round.
	Progress func(round, rounds int)
}

// WriterSpec describes the frame writer of one latency round.
type WriterSpec struct {
	Files []string `json:"files"`
	Rate  int      `json:"rate"`
	Pace  Pace     `json:"pace"`
	// CPUs, if set, are the only CPUs the writer's process may run on
	// (PinProcess), for a writer in a process of its own.
	CPUs []int `json:"cpus,omitempty"`
}

// WriterInfo is where a started writer listens.
type WriterInfo struct {
	WS   string `json:"ws"`
	REST string `json:"rest"`
}

// WriterReport is what a writer tells when it has written every frame.
type WriterReport struct {
	// Sent is each frame's send time (Clock) taken just before its write.
	Sent []int64 `json:"sent"`
	// Lag is each frame's send time minus its due time, in ns.
	Lag []int64 `json:"lag"`
	// WriteNs is the time from the first write to the end of the last.
	WriteNs int64  `json:"write_ns"`
	Err     string `json:"err,omitempty"`
}

// LatencyWriter is a running frame writer: a loopback WebSocket stream
// that plays the recording once the service connects, and the REST
// snapshot.
type LatencyWriter interface {
	Info() WriterInfo
	// Report waits until every frame is written.
	Report(ctx context.Context) (*WriterReport, error)
	Close() error
}

// WriterStarter starts the writer of one round.
type WriterStarter func(ctx context.Context, spec WriterSpec) (LatencyWriter, error)

// Clock is the time base shared by the writer and the service, in ns:
// the wall clock at process start plus the monotonic time since. Two
// processes on one machine read the same kernel clock, so their Clock
// readings compare to within the two start-up readings; within a process
// it is as steady as the monotonic clock.
func Clock() int64 { return clockBase + int64(time.Since(clockStart)) }

// toClock converts a time of this process to Clock.
func toClock(t time.Time) int64 { return clockBase + int64(t.Sub(clockStart)) }

var (
	clockStart = time.Now()
	clockBase  = clockStart.UnixNano()
)

// Percentiles summarizes a latency distribution.
type Percentiles struct {
	Samples             int
	Missing             int64 // trades written but never seen at this point
	P50, P99, P999, Max time.Duration
	Mean                time.Duration
}

func percentiles(all []time.Duration, missing int64) Percentiles {
	p := Percentiles{Samples: len(all), Missing: missing}
	if len(all) == 0 {
		return p
	}
	slices.Sort(all)
	pick := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	p.P50, p.P99, p.P999, p.Max = pick(0.50), pick(0.99), pick(0.999), all[len(all)-1]
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	p.Mean = sum / time.Duration(len(all))
	return p
}

// LatencyResult holds frame-to-metric latencies.
type LatencyResult struct {
	Rate   int
	Pace   Pace
	Child  bool  // the writer ran in another process
	Frames int64 // frames written (trades and depth diffs)
	// API is frame write to the trade in the service's metrics (the Go
	// API: the service's event hook, right after flow.Tracker.Add under
	// the data lock). Push is frame write to the trade message read by a
	// WebSocket client of /v1/ws (zero Samples without LatencyOptions.Push).
	API, Push Percentiles
	// API in two parts: Wire is frame write to the service's read of it
	// (loopback, the kernel, waking the reader, frames queued ahead);
	// Apply is that read to the trade in the metrics (decode, data lock,
	// sequencing, book and metrics: the service's own time).
	Wire, Apply Percentiles
	// WriterLag is how late the writer wrote frames against their
	// schedule (send time minus due time): what of the latency is the
	// harness's. Its P999 and Max matter most: a late frame is followed by
	// a burst of catching-up frames.
	WriterLag        Percentiles
	AchievedRate     float64 // frames per second actually written
	BookSynced       bool    // the service's book was in sync at the end of every round
	TradesPerRound   int
	DepthPerRound    int
	WarmupFrames     int
	RoundsCompleted  int
	ServiceTradeSeen int64
	PushDropped      int64 // trades the push hub skipped or dropped (queue or inbox full)
	// PushBeforeRead counts trades a push client got before the service
	// had read the frame carrying them (same clock): impossible unless the
	// measurement is wrong, so it must be 0.
	PushBeforeRead int64
	// Runtime is what this process did while the writer wrote: Go
	// scheduler latency, collections, allocations, CPU and context
	// switches.
	Runtime RuntimeStats
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
	span     int64 // last trade id - firstID + 1
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
			f.span = max(f.span, m.Trade.ID-f.firstID+1)
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
// event hook, which runs right after flow.Tracker.Add under the data
// lock) and, with opts.Push, until a WebSocket client of the HTTP push
// endpoint has read it. The writer (in this process or, with opts.Writer,
// in another) paces the recording's trade and depth frames at opts.Rate
// and notes each frame's send time (Clock) just before the write; the
// hook and the push client note the arrival time of each trade by id.
func Latency(ctx context.Context, c *Corpus, opts LatencyOptions) (*LatencyResult, error) {
	if opts.Rate <= 0 {
		opts.Rate = 20_000
	}
	opts.Rounds = max(opts.Rounds, 1)
	if opts.WarmupFrames <= 0 {
		opts.WarmupFrames = 2000
	}
	if opts.Pace == "" {
		opts.Pace = PaceTimer
	}
	if opts.Pace != PaceTimer && opts.Pace != PaceSpin {
		return nil, fmt.Errorf("bench: latency: pace %q: want timer or spin", opts.Pace)
	}
	feed, err := prepareLatencyFeed(c)
	if err != nil {
		return nil, err
	}
	start := opts.Writer
	if start == nil {
		start = func(ctx context.Context, spec WriterSpec) (LatencyWriter, error) { return startFrameServer(feed, spec) }
	}
	res := &LatencyResult{Rate: opts.Rate, Pace: opts.Pace, Child: opts.Writer != nil, TradesPerRound: feed.nTrades,
		DepthPerRound: len(feed.frames) - feed.nTrades, WarmupFrames: opts.WarmupFrames, BookSynced: true}
	var apiLat, pushLat, lag, wire, apply []time.Duration
	var apiMissing, pushMissing int64
	var writeTime time.Duration
	var rt rtAccum
	for round := range opts.Rounds {
		st, err := latencyRound(ctx, feed, opts, start)
		if err != nil {
			return nil, fmt.Errorf("bench: latency round %d: %w", round+1, err)
		}
		apiLat = append(apiLat, st.api...)
		wire = append(wire, st.wire...)
		apply = append(apply, st.apply...)
		pushLat = append(pushLat, st.push...)
		lag = append(lag, st.lag...)
		apiMissing += st.apiMissing
		pushMissing += st.pushMissing
		res.BookSynced = res.BookSynced && st.synced
		res.ServiceTradeSeen += st.seen
		res.PushDropped += st.pushDropped
		res.PushBeforeRead += st.pushBeforeRead
		res.Frames += int64(len(feed.frames))
		writeTime += st.writeTime
		rt.add(st.rtFrom, st.rtTo, int64(len(feed.frames)))
		res.RoundsCompleted++
		if opts.Progress != nil {
			opts.Progress(round+1, opts.Rounds)
		}
	}
	res.AchievedRate = float64(res.Frames) / writeTime.Seconds()
	res.API = percentiles(apiLat, apiMissing)
	res.Wire = percentiles(wire, 0)
	res.Apply = percentiles(apply, 0)
	res.WriterLag = percentiles(lag, 0)
	res.Runtime = rt.stats()
	if opts.Push {
		res.Push = percentiles(pushLat, pushMissing)
	}
	if res.API.Samples == 0 {
		return res, errors.New("bench: latency: no samples")
	}
	return res, nil
}

type roundStats struct {
	api, push, lag, wire, apply []time.Duration
	apiMissing, pushMissing     int64
	seen, pushDropped           int64
	pushBeforeRead              int64
	synced                      bool
	writeTime                   time.Duration
	rtFrom, rtTo                rtSample // from the service's start to the writer's report
}

func latencyRound(ctx context.Context, f *latencyFeed, opts LatencyOptions, start WriterStarter) (roundStats, error) {
	var st roundStats
	recv := make([]int64, f.span) // arrival (Clock) by trade id - firstID; written only by the hook, under the service's lock
	read := make([]int64, f.span) // the frame's receive time in the service (Clock), same
	var seen atomic.Int64

	w, err := start(ctx, WriterSpec{Files: opts.Files, Rate: opts.Rate, Pace: opts.Pace, CPUs: opts.WriterCPUs})
	if err != nil {
		return st, fmt.Errorf("start writer: %w", err)
	}
	defer w.Close()

	ws, rest := w.Info().WS, w.Info().REST
	svc, err := service.New(service.Config{
		Symbols: []string{f.symbol}, Market: market.Spot, WSURL: ws, RESTURL: rest,
		TradeChannel: f.channel, DepthChannel: f.depth, Backfill: -1, LogTrades: -1,
		Logger: slog.New(slog.DiscardHandler), BusyPoll: opts.BusyPoll,
		OnEvent: func(ev service.Event) {
			if ev.Trade == nil {
				return
			}
			now := Clock()
			i := ev.Trade.ID - f.firstID
			if i >= 0 && i < int64(len(recv)) {
				recv[i] = now
				if !ev.Received.IsZero() {
					read[i] = toClock(ev.Received)
				}
				seen.Add(1)
			}
		},
	})
	if err != nil {
		return st, err
	}
	var pc *pushClient
	if opts.Push {
		if pc, err = startPushClient(ctx, svc, f); err != nil {
			return st, err
		}
		defer pc.close()
	}
	st.rtFrom = takeRTSample()
	if err := svc.Start(ctx); err != nil {
		return st, err
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

	rep, err := w.Report(ctx)
	st.rtTo = takeRTSample()
	if err != nil {
		return st, err
	}
	if len(rep.Sent) != len(f.frames) || len(rep.Lag) != len(f.frames) {
		return st, fmt.Errorf("writer reported %d send times for %d frames", len(rep.Sent), len(f.frames))
	}
	// The last trades land after their writes, later on a busy machine:
	// wait while they still come (at most a minute), until 5 s pass
	// without one.
	done := func() bool {
		return seen.Load() >= int64(f.nTrades) && (pc == nil || pc.seen.Load()+pc.dropped() >= int64(f.nTrades))
	}
	progress := func() int64 {
		n := seen.Load()
		if pc != nil {
			n += pc.seen.Load()
		}
		return n
	}
	last, lastAt, end := progress(), time.Now(), time.Now().Add(time.Minute)
	for !done() && time.Since(lastAt) < 5*time.Second && time.Now().Before(end) {
		time.Sleep(5 * time.Millisecond)
		if n := progress(); n != last {
			last, lastAt = n, time.Now()
		}
	}
	st.seen = seen.Load()
	err = svc.ViewSymbol(f.symbol, func(s *engine.Symbol) error {
		st.synced = s.Synced()
		return nil
	})
	if err != nil {
		return st, err
	}
	if pc != nil {
		st.pushDropped = pc.dropped()
		pc.close()
	}
	if err := stop(); err != nil {
		return st, err
	}
	st.writeTime = time.Duration(rep.WriteNs)
	for k, id := range f.tradeID {
		if k < opts.WarmupFrames {
			continue
		}
		st.lag = append(st.lag, time.Duration(rep.Lag[k]))
		if id < 0 {
			continue
		}
		i := id - f.firstID
		sent := rep.Sent[k]
		if recv[i] == 0 {
			st.apiMissing++
		} else {
			st.api = append(st.api, time.Duration(recv[i]-sent))
			if read[i] != 0 {
				st.wire = append(st.wire, time.Duration(read[i]-sent))
				st.apply = append(st.apply, time.Duration(recv[i]-read[i]))
			}
		}
		if pc != nil {
			if at := pc.recv[i]; at == 0 {
				st.pushMissing++
			} else {
				st.push = append(st.push, time.Duration(at-sent))
				if read[i] != 0 && at < read[i] {
					st.pushBeforeRead++
				}
			}
		}
	}
	return st, nil
}

// pushClient serves the service's HTTP API on loopback and reads
// /v1/ws?topics=trades as a client would, noting each trade's arrival.
type pushClient struct {
	srv    *api.Server
	hs     *http.Server
	conn   *websocket.Conn
	recv   []int64 // arrival (Clock) by trade id - firstID; read after close
	seen   atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func startPushClient(ctx context.Context, svc *service.Service, f *latencyFeed) (*pushClient, error) {
	srv := api.New(svc, api.Options{RateLimit: -1, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, err
	}
	p := &pushClient{srv: srv, hs: &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}, recv: make([]int64, f.span)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.hs.Serve(ln)
	}()
	var cctx context.Context
	cctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	dctx, dcancel := context.WithTimeout(cctx, 10*time.Second)
	defer dcancel()
	c, _, err := websocket.Dial(dctx, "ws://"+ln.Addr().String()+"/v1/ws?topics=trades&symbols="+f.symbol, nil)
	if err != nil {
		p.close()
		return nil, fmt.Errorf("push client: %w", err)
	}
	c.SetReadLimit(1 << 20)
	p.conn = c
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.read(cctx, f)
	}()
	return p, nil
}

// read notes the arrival of every trade message. A trade message is
// {"type":"trade","symbol":..,"data":{"symbol":..,"id":N,...}}.
//
// The client runs in the service's process, so it must not add garbage
// of its own to what the measurement sees: it reads into one buffer,
// without a context per read (close ends a read in progress by closing
// the connection), and finds the id without decoding the whole message.
func (p *pushClient) read(ctx context.Context, f *latencyFeed) {
	var buf []byte
	for {
		_, r, err := p.conn.Reader(context.Background())
		if err != nil {
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		now := Clock()
		id, ok := pushTradeID(buf)
		if !ok {
			continue
		}
		if i := id - f.firstID; i >= 0 && i < int64(len(p.recv)) {
			p.recv[i] = now
			p.seen.Add(1)
		}
	}
}

// pushTradeID returns the trade id of a push trade message, or false for
// any other message. The fast path reads the layout the hub writes
// ({"type":"trade",..."data":{..."id":N,...}}); anything else is decoded.
func pushTradeID(b []byte) (int64, bool) {
	const typ, data, idKey = `{"type":"trade",`, `"data":{`, `"id":`
	if !bytes.HasPrefix(b, []byte(typ)) {
		if !bytes.Contains(b, []byte(`"trade"`)) {
			return 0, false // not a trade, whatever the layout
		}
		var msg struct {
			Type string `json:"type"`
			Data struct {
				ID int64 `json:"id"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &msg) != nil || msg.Type != "trade" {
			return 0, false
		}
		return msg.Data.ID, true
	}
	d := bytes.Index(b, []byte(data))
	if d < 0 {
		return 0, false
	}
	k := bytes.Index(b[d:], []byte(idKey))
	if k < 0 {
		return 0, false
	}
	var id int64
	digits := 0
	for _, c := range b[d+k+len(idKey):] {
		if c < '0' || c > '9' || digits > 18 {
			break
		}
		id = id*10 + int64(c-'0')
		digits++
	}
	return id, digits > 0
}

func (p *pushClient) dropped() int64 {
	st := p.srv.Hub().Stats()
	return int64(st.Dropped + st.InboxDropped)
}

// close ends the client, the hub and the server, and waits for them.
func (p *pushClient) close() {
	p.once.Do(func() {
		if p.conn != nil {
			_ = p.conn.CloseNow()
		}
		p.cancel()
		p.srv.Close()
		_ = p.hs.Close()
		p.wg.Wait()
	})
}

// frameServer is a loopback Binance stand-in: one WebSocket stream that
// plays the feed's frames at a fixed rate once a client connects, and the
// recorded REST depth snapshot.
type frameServer struct {
	f      *latencyFeed
	spec   WriterSpec
	ln     net.Listener
	hs     *http.Server
	once   sync.Once
	done   chan struct{} // closed when rep is complete
	rep    WriterReport
	wg     sync.WaitGroup
	cancel context.CancelFunc
	ctx    context.Context
}

// InProcessWriter starts the frame writer of a latency round in this
// process, for the files of spec.
func InProcessWriter(ctx context.Context, spec WriterSpec) (LatencyWriter, error) {
	c, err := Load(spec.Files)
	if err != nil {
		return nil, err
	}
	f, err := prepareLatencyFeed(c)
	if err != nil {
		return nil, err
	}
	return startFrameServer(f, spec)
}

func startFrameServer(f *latencyFeed, spec WriterSpec) (*frameServer, error) {
	if spec.Rate <= 0 {
		return nil, fmt.Errorf("bench: latency writer: rate %d", spec.Rate)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &frameServer{f: f, spec: spec, ln: ln, done: make(chan struct{})}
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

func (s *frameServer) Info() WriterInfo {
	a := s.ln.Addr().String()
	return WriterInfo{WS: "ws://" + a, REST: "http://" + a}
}

func (s *frameServer) Report(ctx context.Context) (*WriterReport, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.rep.Err != "" {
		return nil, errors.New(s.rep.Err)
	}
	return &s.rep, nil
}

func (s *frameServer) Close() error {
	s.cancel()
	_ = s.hs.Close()
	s.wg.Wait()
	return nil
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
	if err := s.play(ctx, c); err != nil {
		s.rep.Err = err.Error()
	}
	close(s.done)
	if s.rep.Err == "" {
		// Keep the connection open until the round ends, as Binance
		// would, so the service does not see a disconnect.
		<-ctx.Done()
	}
}

// play writes the frames on schedule: frame k is due at start + k/rate.
// Each frame's send time is taken just before its write, so a late writer
// does not count against the service; how late it ran is in rep.Lag.
func (s *frameServer) play(ctx context.Context, c *websocket.Conn) error {
	n := len(s.f.frames)
	s.rep.Sent = make([]int64, n)
	s.rep.Lag = make([]int64, n)
	interval := float64(time.Second) / float64(s.spec.Rate)
	// The writes take no context: with a cancellable one the websocket
	// library arms a timer and an AfterFunc per write, garbage whose
	// collections make the writer late. ctx's end closes the connection
	// instead, which ends a write in progress.
	stop := context.AfterFunc(ctx, func() { _ = c.CloseNow() })
	defer stop()
	start := Clock()
	for k, fr := range s.f.frames {
		due := start + int64(float64(k)*interval)
		now := Clock()
		if d := due - now; d > 0 {
			if s.spec.Pace == PaceSpin {
				for now < due {
					now = Clock()
				}
			} else {
				time.Sleep(time.Duration(d))
				now = Clock()
			}
		}
		s.rep.Sent[k] = now
		s.rep.Lag[k] = now - due
		if err := c.Write(context.Background(), websocket.MessageText, fr); err != nil {
			return fmt.Errorf("write frame %d: %w", k, err)
		}
	}
	s.rep.WriteNs = Clock() - start
	return nil
}

// ServeLatencyWriter runs the frame writer of one latency round until ctx
// ends: it writes its WriterInfo as one JSON line to w, plays the frames
// once the service connects, then writes the WriterReport as a second
// line. It is the child side of a WriterStarter that runs the writer in
// another process.
func ServeLatencyWriter(ctx context.Context, spec WriterSpec, w io.Writer) error {
	if len(spec.CPUs) > 0 {
		if err := PinProcess(spec.CPUs); err != nil {
			return err
		}
	}
	lw, err := InProcessWriter(ctx, spec)
	if err != nil {
		return err
	}
	defer lw.Close()
	enc := json.NewEncoder(w)
	if err := enc.Encode(lw.Info()); err != nil {
		return err
	}
	rep, err := lw.Report(ctx)
	if err != nil {
		rep = &WriterReport{Err: err.Error()}
	}
	if err := enc.Encode(rep); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// ReadWriterLines reads a child writer's two JSON lines from r: info at
// once, then the report through the returned function.
func ReadWriterLines(r io.Reader) (WriterInfo, func() (*WriterReport, error), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var info WriterInfo
	line, err := br.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &info)
	}
	if err != nil {
		return info, nil, fmt.Errorf("bench: latency writer: %w", err)
	}
	return info, func() (*WriterReport, error) {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("bench: latency writer report: %w", err)
		}
		var rep WriterReport
		if err := json.Unmarshal(line, &rep); err != nil {
			return nil, fmt.Errorf("bench: latency writer report: %w", err)
		}
		if rep.Err != "" {
			return nil, fmt.Errorf("bench: latency writer: %s", rep.Err)
		}
		return &rep, nil
	}, nil
}
