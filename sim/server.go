package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/market"
)

// Config configures a Server. The zero value of every field means its
// documented default.
type Config struct {
	// Files are the recordings to replay (see LoadRecording), read in
	// order: give a symbol's contiguous files oldest first.
	Files []string
	// Recording is an already loaded recording; it replaces Files and can
	// be shared by several servers.
	Recording *Recording
	// Market is "", "spot" or "usdm"; "" detects it from the recording.
	Market string
	// Speed divides recorded time: 1 (the default, also for 0) replays at
	// the recorded pace, 100 a hundred times faster. A negative Speed
	// replays as fast as the slowest subscriber reads: nothing is dropped,
	// the replay waits instead.
	Speed float64
	// Loop replays the recording again and again, shifted so that times and
	// ids keep increasing (see the package documentation).
	Loop bool
	// Fanout serves N renamed copies of every recorded symbol (BTCUSDT,
	// BTC0001USDT, BTC0002USDT, ...), each a complete independent stream.
	// Default 1.
	Fanout int
	// Paused starts the replay paused (the clock stands at the first
	// event) until Play; tests connect and subscribe first.
	Paused bool
	// Addr is the listen address. Default "127.0.0.1:0".
	Addr string
	// Logger receives the simulator's logs. Default: discard.
	Logger *slog.Logger
	// PingInterval is how often the server pings each connection: default
	// 20 s on spot, 3 min on USD-M, as Binance does.
	PingInterval time.Duration
	// PongTimeout closes a connection that has not answered a ping within
	// it: default 1 min on spot, 10 min on USD-M.
	PongTimeout time.Duration
	// MaxStreamsPerConn limits the streams of one connection. Default 1024.
	MaxStreamsPerConn int
	// ControlRate is the number of incoming messages (pings, pongs, JSON
	// requests) per second a connection may send before it is disconnected:
	// default 5 on spot, 10 on USD-M.
	ControlRate int
	// WeightLimit is the REST weight budget per WeightWindow: default 6000
	// on spot, 2400 on USD-M.
	WeightLimit int
	// WeightWindow is the REST weight accounting window, counted in fixed
	// windows from Start. Default 1 min.
	WeightWindow time.Duration
	// SendQueue is the number of frames queued per connection. Default 4096.
	SendQueue int
	// WriteTimeout bounds one frame write. Default 10 s.
	WriteTimeout time.Duration
}

// loopGap is the recorded-time pause between two loop rounds.
const loopGap = 1000 // ms

// Server is a running simulator. Create it with New, then Start.
type Server struct {
	cfg    Config
	rec    *Recording
	log    *slog.Logger
	kind   market.Kind
	syms   []*symState
	bySym  map[string]*copyState // upper-case symbol name of every copy
	topics map[string]*topic     // every accepted stream name (aliases too)
	all    []*topic              // canonical topics, for Stats
	clock  *clock
	faults Faults
	stats  stats
	weight weightMeter

	mu      sync.Mutex
	started bool
	closed  bool
	conns   map[*conn]struct{}
	nextID  int64
	ln      net.Listener
	hs      *http.Server
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	done    chan struct{} // closed when the replay ends (not looping)
}

// symState is the mutable state of one recorded symbol, shared by its
// fanout copies: they replay the same events, so their books are the same.
type symState struct {
	src    *symData
	mu     sync.RWMutex
	book   simBook
	lastU  int64 // u of the last depth event applied: the snapshot's lastUpdateId
	lastT  int64 // T of that event (USD-M snapshots carry it)
	hist   []aggEv
	copies []*copyState
}

// copyState is one served symbol name (a recorded symbol or a fanout copy).
type copyState struct {
	ss     *symState
	name   string
	lower  string
	enc    enc
	topics [numChannels]*topic
}

// topic is one stream of one served symbol.
type topic struct {
	stream string // canonical name, e.g. "btcusdt@depth@100ms"
	ch     int
	cs     *copyState
	subs   atomic.Pointer[[]sub] // copy-on-write under Server.mu
	sent   atomic.Int64
	armed  atomic.Bool // a fault is pending: take the slow path
	// Fault state, guarded by Faults.mu.
	skip, dup, reorder int
	held               []byte
}

type sub struct {
	c      *conn
	stream string // the name the client subscribed with
}

// New loads the recordings and prepares a server; it does not listen yet.
func New(cfg Config) (*Server, error) {
	rec := cfg.Recording
	if rec == nil {
		var err error
		if rec, err = LoadRecording(cfg.Market, cfg.Files...); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, rec: rec, kind: rec.market, log: cfg.Logger,
		bySym: map[string]*copyState{}, topics: map[string]*topic{}, conns: map[*conn]struct{}{}, done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	c := &s.cfg
	if c.Speed == 0 {
		c.Speed = 1
	}
	if c.Fanout <= 0 {
		c.Fanout = 1
	}
	if c.Fanout > 9999 {
		return nil, fmt.Errorf("sim: Fanout %d: at most 9999 copies", c.Fanout)
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	usdm := s.kind == market.USDM
	def := func(d *time.Duration, spot, fut time.Duration) {
		if *d <= 0 {
			*d = spot
			if usdm {
				*d = fut
			}
		}
	}
	def(&c.PingInterval, 20*time.Second, 3*time.Minute)
	def(&c.PongTimeout, time.Minute, 10*time.Minute)
	def(&c.WeightWindow, time.Minute, time.Minute)
	def(&c.WriteTimeout, 10*time.Second, 10*time.Second)
	if c.MaxStreamsPerConn <= 0 {
		c.MaxStreamsPerConn = 1024
	}
	if c.ControlRate <= 0 {
		c.ControlRate = 5
		if usdm {
			c.ControlRate = 10
		}
	}
	if c.WeightLimit <= 0 {
		c.WeightLimit = 6000
		if usdm {
			c.WeightLimit = 2400
		}
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 4096
	}
	s.faults.s = s
	s.stats.init()
	for _, sd := range rec.syms {
		ss := &symState{src: sd, lastU: sd.bridge, lastT: sd.bridgT}
		ss.book = sd.start.clone()
		for k := range c.Fanout {
			name := fanoutName(sd.name, k)
			cs := &copyState{ss: ss, name: name, lower: strings.ToLower(name),
				enc: enc{kind: s.kind, sym: name, pw: sd.priceW, qw: sd.qtyW}}
			for ch := range numChannels {
				if !sd.has[ch] {
					continue
				}
				chName := channelNames[ch]
				if ch == chDepth {
					chName = sd.depthName
				}
				t := &topic{stream: cs.lower + "@" + chName, ch: ch, cs: cs}
				t.subs.Store(&[]sub{})
				cs.topics[ch] = t
				s.all = append(s.all, t)
				s.topics[t.stream] = t
				if ch == chDepth {
					// The simulator does not re-throttle: every depth speed
					// serves the recorded diffs, which chain the same way.
					for _, alias := range []string{"depth", "depth@100ms", "depth@250ms", "depth@500ms", "depth@1000ms", "depth@0ms"} {
						if _, ok := s.topics[cs.lower+"@"+alias]; !ok {
							s.topics[cs.lower+"@"+alias] = t
						}
					}
				}
			}
			ss.copies = append(ss.copies, cs)
			if _, dup := s.bySym[name]; dup {
				return nil, fmt.Errorf("sim: fanout name %s collides with a recorded symbol", name)
			}
			s.bySym[name] = cs
		}
		s.syms = append(s.syms, ss)
		if sd.derivedAgg {
			s.log.Info("serving @aggTrade derived from @trade", "symbol", sd.name, "aggTrades", len(sd.aggs), "trades", len(sd.trades), "firstAggID", sd.aggs[0].id)
		}
	}
	s.clock = newClock(c.Speed, rec.first, c.Paused)
	return s, nil
}

// quoteAssets are the quote currencies fanoutName and exchangeInfo
// recognise at the end of a symbol, longest first.
var quoteAssets = []string{"FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BRL", "AUD", "EUR", "TRY", "BTC", "ETH", "BNB"}

// splitSymbol splits a symbol into base and quote assets ("" quote when
// the quote is not recognised).
func splitSymbol(sym string) (base, quote string) {
	for _, q := range quoteAssets {
		if len(sym) > len(q) && strings.HasSuffix(sym, q) {
			return sym[:len(sym)-len(q)], q
		}
	}
	return sym, ""
}

// fanoutName names copy k of a symbol: copy 0 is the symbol itself, copy k
// inserts a four-digit number before the quote asset (BTC0001USDT).
func fanoutName(sym string, k int) string {
	if k == 0 {
		return sym
	}
	base, quote := splitSymbol(sym)
	return fmt.Sprintf("%s%04d%s", base, k, quote)
}

// Start listens and starts the replay. ctx bounds nothing but the start;
// call Close to stop.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("sim: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("sim: listen: %w", err)
	}
	s.started = true
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.weight.init(s.cfg.WeightLimit, s.cfg.WeightWindow)
	s.hs = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, netConnKey{}, c)
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.replay(s.ctx)
	}()
	s.log.Info("simulator listening", "addr", ln.Addr().String(), "market", s.kind.String(), "symbols", len(s.bySym), "speed", s.cfg.Speed)
	return nil
}

type netConnKey struct{}

// Run starts the server and blocks until ctx ends, then closes it.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// Close stops the replay, closes every connection and returns once every
// goroutine the server started has ended. Live WebSocket connections are
// closed without a close handshake.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.started || s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	s.mu.Unlock()
	// Shutdown waits for REST handlers (hung ones end with s.ctx); hijacked
	// WebSocket connections are tracked by s.wg instead.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.hs.Shutdown(ctx)
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("sim: close: %w", err)
	}
	return nil
}

// Addr returns the listen address (valid after Start).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the WebSocket and HTTP base URLs, e.g. "ws://127.0.0.1:4321"
// and "http://127.0.0.1:4321". USD-M stream paths go under /public or
// /market of the WebSocket base.
func (s *Server) URL() (ws, http string) {
	a := s.ln.Addr().String()
	return "ws://" + a, "http://" + a
}

// Market returns the market the server simulates.
func (s *Server) Market() market.Kind { return s.kind }

// Symbols returns every served symbol name, fanout copies included.
func (s *Server) Symbols() []string {
	var out []string
	for _, ss := range s.syms {
		for _, cs := range ss.copies {
			out = append(out, cs.name)
		}
	}
	return out
}

// Now returns the replay clock: the exchange time the replay stands at
// (shifted past earlier rounds when looping).
func (s *Server) Now() time.Time { return time.UnixMilli(s.clock.now()) }

// Play resumes a paused replay.
func (s *Server) Play() { s.clock.setPaused(false) }

// Pause stops the replay clock; connections stay open and REST answers.
func (s *Server) Pause() { s.clock.setPaused(true) }

// Done is closed when a replay without Loop has published every event.
func (s *Server) Done() <-chan struct{} { return s.done }

// Faults returns the fault injection hooks.
func (s *Server) Faults() *Faults { return &s.faults }

// track registers a new connection unless the server is closing.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started {
		return false
	}
	s.nextID++
	c.id = s.nextID
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.stats.connOpened()
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.stats.connClosed()
	s.wg.Done()
}

// liveConns returns the open connections.
func (s *Server) liveConns() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}
