// Package service runs the order-flow pipeline against Binance for a set of
// symbols and owns its lifecycle.
//
// Concurrency model. A Service has one lifecycle lock: Start, Stop and
// Restart hold it for their whole run, so concurrent callers are serialized
// and always leave the service in a consistent state; none of them does
// network I/O while holding it, and Stop's wait is bounded by its budget.
// Each Start creates a run: a fresh engine, fresh stream connections, a
// snapshot worker and a backfill worker, each a task with one goroutine that
// the run owns. Stop cancels the run's context and waits for every task,
// reporting each, within a budget; nothing of a run survives into the next
// one (the run also owns its HTTP transport, closed at Stop).
//
// AddSymbol and RemoveSymbol are serialized with each other by a second
// lock; they change the run's state under the lifecycle lock and then
// subscribe or unsubscribe on the live connections outside it, with a
// context that Stop cancels, so a slow server never holds Stop up.
//
// Stream handlers and the workers feed one engine under the run's data lock
// (the engine is single-threaded by design); readers take the same lock
// briefly through View. State changes (the service's and each
// connection's, book syncs) are announced on the channel Changes returns.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/feed"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/rest"
)

// State is the service's lifecycle state.
type State int32

// Lifecycle states.
const (
	Stopped State = iota
	Starting
	Running
	Stopping
)

// String names the state.
func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Running:
		return "running"
	case Stopping:
		return "stopping"
	}
	return "stopped"
}

// Config configures a Service. Zero fields take the documented defaults.
type Config struct {
	// Symbols to stream, e.g. BTCUSDT. Upper or lower case.
	Symbols []string
	// Market is spot (default) or USD-M.
	Market market.Kind
	// WSURL and RESTURL default to Binance's live endpoints for Market.
	// Pointed at `orderflow sim` they work unchanged.
	WSURL, RESTURL string
	// TradeChannel is "aggTrade" (default) or "trade".
	TradeChannel string
	// DepthChannel is the diff-depth stream, default "depth@100ms".
	DepthChannel string
	// BookTicker also subscribes each symbol's bookTicker stream, so that
	// the engine checks the book against it at every equal update id
	// (engine's continuous self-check; a mismatch resyncs). It costs
	// bandwidth: BTCUSDT sends several bookTickers per trade.
	BookTicker bool
	// DialTimeout bounds one WebSocket dial. Default 10 s.
	DialTimeout time.Duration
	// BusyPoll, when positive, makes the run's connections spin on their
	// socket for up to this long before sleeping (feed.Dialer.BusyPoll):
	// lower and steadier latency from frame to metric for a CPU kept busy
	// while frames come faster than that. Off by default; for a service
	// with a core of its own. No effect with HTTPClient set (its
	// transport dials).
	BusyPoll time.Duration
	// StaleTimeout: no frame for this long means a half-open connection.
	// Default: feed's (60 s).
	StaleTimeout time.Duration
	// StopTimeout is Stop's budget when its context has no earlier
	// deadline. Default 5 s.
	StopTimeout time.Duration
	// SnapshotLimit is the depth of REST snapshots. Default 1000.
	SnapshotLimit int
	// AuditInterval, if positive, runs the book self-audit: every interval
	// each synced symbol's book is compared with a fresh REST snapshot at
	// the same update id (engine.Audit); a difference is counted and
	// resyncs the book. Off by default: against live Binance it spends
	// request weight (a 1000-level spot snapshot weighs 50).
	AuditInterval time.Duration
	// Backfill is how many recent aggregate trades to fetch from REST at
	// start (warm start). Default 1000; negative disables. Gaps after a
	// reconnect are always filled from REST by id (aggTrade channel).
	Backfill int
	// MaxPending bounds the stream trades held while a backfill runs.
	// Default 100,000.
	MaxPending int
	// LogTrades is how many trades per symbol are logged at info
	// ("Trade #1: BUY 0.000240 @ 91,436.75"); the rest go to debug.
	// Default 10; negative logs none at info.
	LogTrades int
	// DepthFlow, if set, turns on the book metrics and combined signals
	// (package depthflow) for every symbol.
	DepthFlow *depthflow.Config
	// WallMinNotional overrides DepthFlow.WallMinNotional per symbol
	// (upper case): a wall floor is in the quote asset, and 500,000 USDT
	// suits BTCUSDT, not a small altcoin. A positive value is the floor, a
	// negative one no floor; zero is refused (it would mean depthflow's
	// default). Symbols not in the map take DepthFlow's; a symbol not
	// streamed yet (added later, or by a shard) is allowed. Needs
	// DepthFlow.
	WallMinNotional map[string]fixed.Dec
	// BookHistoryDepth is the number of levels per side each symbol's
	// book history keeps (the frames behind GET .../book/history and the
	// dashboard's heatmap). Default DefaultBookHistoryDepth (20), at most
	// MaxBookHistoryDepth. Memory grows with it: 600 frames x 2 sides x
	// 16 bytes per level, 4.8 MB per symbol at 250.
	BookHistoryDepth int
	// BarLateness is the allowed lateness of time-driven bar closing
	// (engine.Config.BarLateness): a symbol's bar closes once the latest
	// exchange event time seen on any of its streams is BarLateness past
	// the bar's end, without waiting for a trade of the next bar. A trade
	// arriving later than that (stream skew, a REST gap fill) amends the
	// closed bar, which is reported again as revised. Default
	// DefaultBarLateness; negative turns time-driven closing off (bars
	// close at the next bar's first trade).
	BarLateness time.Duration
	// Flow configures the metrics.
	Flow flow.Config
	// HTTPClient is used for REST and WebSocket handshakes.
	HTTPClient *http.Client
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
	// DataDir, if set, is locked while the service runs, so a second
	// instance on the same directory, in this process or another, fails.
	DataDir string
	// OnEvent, if set, receives every trade accepted and every bar closed,
	// under the data lock: it must not block (push fan-out copies and
	// returns).
	OnEvent func(Event)
	// MaxStreamsPerConn caps the streams of one WebSocket connection; a
	// symbol added to full connections gets a new one. Default
	// DefaultStreamsPerConn (400); maximum binance.MaxStreamsPerConn
	// (1024, spot and USD-M).
	MaxStreamsPerConn int
	// DialLimiter bounds WebSocket connection attempts. Default
	// feed.DefaultDialLimiter, shared by the whole process (Binance allows
	// 300 attempts per 5 minutes per IP).
	DialLimiter *feed.DialLimiter
	// BackoffMin and BackoffMax bound the reconnect backoff. Defaults
	// feed's (100 ms and 30 s).
	BackoffMin, BackoffMax time.Duration
	// ReplyTimeout bounds the wait for a SUBSCRIBE or UNSUBSCRIBE reply.
	// Default feed's (10 s).
	ReplyTimeout time.Duration
	// Sharded lets the service start with no symbols: a shard member
	// (package shard) adds and removes them as it wins and gives up their
	// leases.
	Sharded bool
	// Source, if set, feeds the service instead of Binance (the query tier
	// reading the bus): no stream connection, no REST request; the run's
	// one input task is Source.Run. The fields about streams, REST,
	// backfill and audits are then unused.
	Source Source
	// Capture, if its Dir is set, writes every frame received and every
	// REST snapshot and trade backfill used to capture files, one set per
	// run (see CaptureConfig). A write error (a full disk) stops the
	// capture, never the service; Status.Capture shows it. Unused with a
	// Source (its input is not Binance's).
	Capture CaptureConfig
}

// Book history depth bounds (Config.BookHistoryDepth). The maximum is the
// deepest book the HTTP API serves.
const (
	DefaultBookHistoryDepth = 20
	MaxBookHistoryDepth     = 1000
)

// DefaultBarLateness is the default of Config.BarLateness: Binance's trade
// and depth streams reach us on separate connections, a few hundred
// milliseconds apart at worst in normal operation; two seconds keeps
// revisions rare and still closes a quiet symbol's bar two seconds after
// its end.
const DefaultBarLateness = 2 * time.Second

// DefaultStreamsPerConn is the default of Config.MaxStreamsPerConn: 200
// spot symbols with a trade and a depth stream each. Binance allows 1,024
// streams on a connection, but a full one carries about 20,000 frames/s
// when every symbol is as busy as BTCUSDT, and one reader that is held up
// for a moment (a busy machine, a long book resync) lets the server's
// send queue fill: Binance, and the simulator, drop such a slow consumer,
// and every book on it must resync. Smaller connections share the load
// between several readers and lose fewer books at once; 1,000 symbols take
// 5 of the 300 connection attempts Binance allows per 5 minutes.
const DefaultStreamsPerConn = 400

// Event is what OnEvent receives: one of Trade, Bar, Depth, Synced, Large
// or Signal is set. Pointers are valid only during the call.
type Event struct {
	Symbol   string
	Trade    *market.Trade // a trade accepted into the metrics
	Bar      *flow.Bar     // a closed bar
	Interval time.Duration // the bar's interval
	// Revised is set with Bar when late trades amended the bar after it
	// was reported closed (Bar.LateTrades > 0): it replaces the earlier
	// report of the bar with the same Start.
	Revised bool
	// Received is the local receive time of the WebSocket frame that
	// carried the trade (zero for trades fetched from REST and for bars):
	// how long the service took is time.Since(Received).
	Received time.Time
	// Depth is a depth update just applied to the synced book; Book is the
	// book after it.
	Depth *market.DepthUpdate
	// Synced is set when a snapshot (plus the buffered updates replayed on
	// it) has just made the book synced, at the first sync and every
	// resync; Book is that book.
	Synced bool
	Book   *book.Book
	// DepthTime is the event time (ms) of the last depth update seen for
	// the symbol (with Depth and Synced).
	DepthTime int64
	Large     *flow.LargeTrade  // a large trade
	Signal    *depthflow.Signal // a book signal of depthflow (bar signals come with Bar)
}

func (c *Config) withDefaults() (Config, error) {
	d := *c
	if len(d.Symbols) == 0 && !d.Sharded {
		return d, errors.New("service: no symbols")
	}
	seen := map[string]bool{}
	syms := make([]string, 0, len(d.Symbols))
	for _, s := range d.Symbols {
		s = strings.ToUpper(strings.TrimSpace(s))
		if err := ValidSymbol(s); err != nil {
			return d, err
		}
		if !seen[s] {
			seen[s] = true
			syms = append(syms, s)
		}
	}
	d.Symbols = syms
	ep := binance.DefaultEndpoints(d.Market)
	if d.WSURL == "" {
		d.WSURL = ep.WS
	}
	if d.RESTURL == "" {
		d.RESTURL = ep.REST
	}
	if !strings.HasPrefix(d.WSURL, "ws://") && !strings.HasPrefix(d.WSURL, "wss://") {
		return d, fmt.Errorf("service: WebSocket URL %q: want ws:// or wss://", d.WSURL)
	}
	if u, err := url.Parse(d.RESTURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return d, fmt.Errorf("service: REST URL %q: want http(s)://host[:port]", d.RESTURL)
	}
	if d.TradeChannel == "" {
		d.TradeChannel = binance.ChannelAggTrade
	}
	if d.TradeChannel != binance.ChannelAggTrade && d.TradeChannel != binance.ChannelTrade {
		return d, fmt.Errorf("service: trade channel %q: want aggTrade or trade", d.TradeChannel)
	}
	if d.DepthChannel == "" {
		d.DepthChannel = binance.ChannelDepth100ms
	}
	if !slices.Contains(depthChannels(d.Market), d.DepthChannel) {
		return d, fmt.Errorf("service: depth channel %q: want one of %s", d.DepthChannel, strings.Join(depthChannels(d.Market), ", "))
	}
	if d.MaxStreamsPerConn <= 0 {
		d.MaxStreamsPerConn = DefaultStreamsPerConn
	}
	if d.MaxStreamsPerConn > binance.MaxStreamsPerConn {
		d.MaxStreamsPerConn = binance.MaxStreamsPerConn
	}
	if d.MaxStreamsPerConn < 2 {
		// A USD-M symbol needs one stream per path, a spot symbol two on
		// one connection: fewer than 2 could not place a spot symbol.
		d.MaxStreamsPerConn = 2
	}
	if d.DialTimeout <= 0 {
		d.DialTimeout = 10 * time.Second
	}
	if d.StopTimeout <= 0 {
		d.StopTimeout = 5 * time.Second
	}
	if d.SnapshotLimit <= 0 {
		d.SnapshotLimit = 1000
	}
	if d.BarLateness == 0 {
		d.BarLateness = DefaultBarLateness
	}
	if d.Backfill == 0 {
		d.Backfill = 1000
	}
	if d.MaxPending <= 0 {
		d.MaxPending = 100_000
	}
	if d.LogTrades == 0 {
		d.LogTrades = 10
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if err := d.Flow.Validate(); err != nil {
		return d, fmt.Errorf("service: flow config: %w", err)
	}
	if d.DepthFlow != nil {
		if err := d.DepthFlow.Validate(); err != nil {
			return d, fmt.Errorf("service: book metrics config: %w", err)
		}
	}
	if err := d.checkWallOverrides(); err != nil {
		return d, err
	}
	switch {
	case d.BookHistoryDepth == 0:
		d.BookHistoryDepth = DefaultBookHistoryDepth
	case d.BookHistoryDepth < 0 || d.BookHistoryDepth > MaxBookHistoryDepth:
		return d, fmt.Errorf("service: book history depth %d: want 1..%d levels", d.BookHistoryDepth, MaxBookHistoryDepth)
	}
	var err error
	if d.Capture, err = d.Capture.withDefaults(); err != nil {
		return d, err
	}
	return d, nil
}

// depthChannels lists the diff-depth channels of a market (spot "Diff.
// Depth Stream": 1000 ms or 100 ms; USD-M: 250, 500 or 100 ms). Top-N
// partial depth streams are not diffs and cannot build a book.
func depthChannels(k market.Kind) []string {
	if k == market.USDM {
		return []string{"depth", "depth@100ms", "depth@250ms", "depth@500ms", "depth@0ms"}
	}
	return []string{"depth", "depth@100ms", "depth@1000ms"}
}

// ValidSymbol checks a symbol name: 2 to 20 upper-case letters and digits.
func ValidSymbol(s string) error {
	if len(s) < 2 || len(s) > 20 {
		return fmt.Errorf("service: symbol %q: want 2 to 20 letters or digits", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return fmt.Errorf("service: symbol %q: want letters and digits only", s)
		}
	}
	return nil
}

// Service runs the streams and metrics for a set of symbols. Create it with
// New; the zero value is not usable.
type Service struct {
	cfg   Config
	log   *slog.Logger
	lc    sync.Mutex // held by Start, Stop and Restart for their whole run
	symOp sync.Mutex // serializes AddSymbol and RemoveSymbol; taken before lc
	state atomic.Int32
	cur   atomic.Pointer[run]
	// symbols is the current symbol set, changed by AddSymbol/RemoveSymbol.
	symMu   sync.Mutex
	symbols []string
	changes notifier
}

// notifier is a broadcast: every waiter's channel is closed at the next
// notify. It never blocks and holds no lock while anyone runs code.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

// New checks cfg and returns a stopped Service.
func New(cfg Config) (*Service, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Service{cfg: c, log: c.Logger, symbols: slices.Clone(c.Symbols)}, nil
}

// State returns the lifecycle state.
func (s *Service) State() State { return State(s.state.Load()) }

func (s *Service) setState(st State) {
	if State(s.state.Swap(int32(st))) != st {
		s.changes.notify()
	}
}

// Changes returns a channel that is closed at the next change of the
// service's state, of a connection's state, or of a book's sync state.
// Read Status after it fires and call Changes again for the next one:
// /readyz watchers and tests wait on it instead of polling.
func (s *Service) Changes() <-chan struct{} { return s.changes.wait() }

// Config returns the configuration in force (with defaults filled in).
func (s *Service) Config() Config { return s.cfg }

// Symbols returns the current symbol set.
func (s *Service) Symbols() []string {
	s.symMu.Lock()
	defer s.symMu.Unlock()
	return slices.Clone(s.symbols)
}

// ErrNotRunning is returned by readers when the service is not running.
var ErrNotRunning = errors.New("service: not running")

// ErrUnknownSymbol is returned for a symbol the service does not stream.
var ErrUnknownSymbol = errors.New("service: unknown symbol")

// Start starts the streams. On a running service it does nothing and logs
// so. It returns once every task has been launched (connections complete
// in the background; Status shows their progress).
func (s *Service) Start(ctx context.Context) error {
	s.lc.Lock()
	defer s.lc.Unlock()
	return s.startLocked(ctx)
}

func (s *Service) startLocked(ctx context.Context) error {
	if st := s.State(); st != Stopped {
		s.log.Info("Order flow service already running - skipping reinitialization", "state", st.String())
		return nil
	}
	s.setState(Starting)
	syms := s.Symbols()
	s.log.Info(fmt.Sprintf("Starting order flow service for %d symbols", len(syms)), "symbols", strings.Join(syms, ","),
		"market", s.cfg.Market.String(), "ws", s.cfg.WSURL, "rest", s.cfg.RESTURL)
	r, err := newRun(s, syms)
	if err != nil {
		s.setState(Stopped)
		return err
	}
	if err := r.start(ctx); err != nil {
		s.setState(Stopped)
		return err
	}
	s.cur.Store(r)
	s.setState(Running)
	return nil
}

// Stop cancels every task and waits for each, within the configured
// budget or ctx's deadline, whichever is first. It logs each task as it
// ends and returns an error naming any task that did not end in time; it
// never blocks beyond the budget. Stop on a stopped service does nothing.
func (s *Service) Stop(ctx context.Context) error {
	s.lc.Lock()
	defer s.lc.Unlock()
	return s.stopLocked(ctx)
}

func (s *Service) stopLocked(ctx context.Context) error {
	r := s.cur.Load()
	if r == nil || s.State() != Running {
		s.log.Info("Order flow service not running - nothing to stop")
		return nil
	}
	s.setState(Stopping)
	err := r.stop(ctx, s.cfg.StopTimeout)
	s.cur.Store(nil)
	s.setState(Stopped)
	if err == nil {
		s.log.Info("Order flow service stopped")
	}
	return err
}

// Restart stops the service cleanly, then starts it again with nothing of
// the old run left (new connections, new books, new metrics, re-warmed by
// the backfill).
func (s *Service) Restart(ctx context.Context) error {
	s.lc.Lock()
	defer s.lc.Unlock()
	if err := s.stopLocked(ctx); err != nil {
		// The old run's stuck tasks were cancelled and share nothing with
		// a new run, so starting is still safe; report both.
		return errors.Join(err, s.startLocked(ctx))
	}
	return s.startLocked(ctx)
}

// View runs f with the engine of the current run under the data lock. f
// must be quick and must not keep references to engine state after it
// returns (copy what it needs).
func (s *Service) View(f func(e *engine.Engine) error) error {
	r := s.cur.Load()
	if r == nil {
		return ErrNotRunning
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return f(r.eng)
}

// ViewSymbol runs f with one symbol's state under the data lock.
func (s *Service) ViewSymbol(symbol string, f func(sym *engine.Symbol) error) error {
	symbol = strings.ToUpper(symbol)
	return s.View(func(e *engine.Engine) error {
		sym := e.Symbol(symbol)
		if sym == nil {
			return fmt.Errorf("%w: %s", ErrUnknownSymbol, symbol)
		}
		return f(sym)
	})
}

// Status is a snapshot of the service and its streams.
type Status struct {
	State   string         `json:"state"`
	Market  string         `json:"market"`
	Symbols []SymbolStatus `json:"symbols"`
	Streams []StreamStatus `json:"streams"`
	Engine  engine.Stats   `json:"engine"`
	// Backfill counts trades fetched from REST to warm up or fill gaps,
	// duplicates skipped at the stream/REST seam, and ids that could not
	// be recovered.
	Backfill BackfillStats `json:"backfill"`
	// Capture is the run's capture, nil when off.
	Capture *CaptureStatus `json:"capture,omitempty"`
	Started time.Time      `json:"started,omitzero"`
}

// SymbolStatus is one symbol's state.
type SymbolStatus struct {
	Symbol     string     `json:"symbol"`
	BookSynced bool       `json:"book_synced"`
	BookState  string     `json:"book_state"`
	UpdateID   int64      `json:"update_id"`
	Trades     int64      `json:"trades"`
	LastTrade  int64      `json:"last_trade_id"`
	LastTime   int64      `json:"last_trade_time"`
	Resyncs    uint64     `json:"resyncs"`
	BookStats  book.Stats `json:"-"`
}

// StreamStatus is one connection's state and counters (see feed.Status).
type StreamStatus struct {
	Name string `json:"name"`
	// Path is the URL path the connection lives under: "" on spot,
	// "/public" (depth, bookTicker) or "/market" (trades) on USD-M.
	Path            string    `json:"path"`
	State           string    `json:"state"`
	Streams         int       `json:"streams"`
	Reconnects      uint64    `json:"reconnects"`
	DialErrors      uint64    `json:"dial_errors"`
	Frames          uint64    `json:"frames"`
	Bytes           uint64    `json:"bytes"`
	Rotations       uint64    `json:"rotations"`
	Stale           uint64    `json:"stale"`
	ServerShutdowns uint64    `json:"server_shutdowns"`
	ConnectedAt     time.Time `json:"connected_at,omitzero"`
	LastFrame       time.Time `json:"last_frame,omitzero"`
}

// BackfillStats counts REST trade recovery.
type BackfillStats struct {
	Fetched    int64 `json:"fetched"`
	Duplicates int64 `json:"duplicates"`
	Missing    int64 `json:"missing"`
	Requests   int64 `json:"requests"`
	Errors     int64 `json:"errors"`
}

// Status returns the service's state, per-symbol and per-stream.
func (s *Service) Status() Status {
	st := Status{State: s.State().String(), Market: s.cfg.Market.String()}
	r := s.cur.Load()
	if r == nil {
		return st
	}
	st.Started = r.started
	if r.sink != nil {
		st.Streams = append(st.Streams, r.sink.status())
	}
	if r.cap != nil {
		st.Capture = r.cap.status()
	}
	for _, c := range r.connList() {
		cs := c.conn.Status()
		st.Streams = append(st.Streams, StreamStatus{Name: c.name, Path: c.path, State: cs.State.String(), Streams: cs.Streams,
			Reconnects: cs.Reconnects, DialErrors: cs.DialErrors, Frames: cs.Frames, Bytes: cs.Bytes, Rotations: cs.Rotations,
			Stale: cs.Stale, ServerShutdowns: cs.ServerShutdowns, ConnectedAt: cs.ConnectedAt, LastFrame: cs.LastFrame})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st.Engine = r.eng.Stats()
	st.Backfill = r.bf
	for _, name := range r.symbols {
		ss := SymbolStatus{Symbol: name}
		if sym := r.eng.Symbol(name); sym != nil {
			t := sym.Flow.Totals()
			ss.Trades, ss.LastTrade, ss.LastTime = t.Trades, t.LastID, t.LastTime
			if sym.Sync != nil {
				ss.BookSynced = sym.Sync.Synced()
				ss.BookState = sym.Sync.State().String()
				ss.UpdateID = sym.Sync.Book().UpdateID()
				ss.BookStats = sym.Sync.Stats()
				for c, n := range ss.BookStats.Resyncs {
					if book.Cause(c) != book.CauseInitial {
						ss.Resyncs += n
					}
				}
			}
		}
		st.Symbols = append(st.Symbols, ss)
	}
	return st
}

// Ready says whether every stream is connected and every book synced.
func (st Status) Ready() bool {
	if st.State != Running.String() || len(st.Streams) == 0 {
		return false
	}
	for _, c := range st.Streams {
		if c.State != feed.StateConnected.String() {
			return false
		}
	}
	for _, s := range st.Symbols {
		if !s.BookSynced {
			return false
		}
	}
	return true
}

// restClient builds the REST client a run uses.
//
// Its snapshot gate starts snapshots, two at a time, at the pace the
// weight budget allows for their size: a 100-level spot snapshot weighs 5,
// so 20 a second fit in 6,000 a minute and 1,000 books sync in under a
// minute. Heavier ones (a 1,000-level one weighs 50: 2 a second) start
// 250 ms apart as before and the weight limiter, which keeps every request,
// backfills included, within the budget, paces them once the budget is
// spent.
func (s *Service) restClient(hc *http.Client) (*rest.Client, error) {
	return rest.New(rest.Options{BaseURL: s.cfg.RESTURL, Market: s.cfg.Market, HTTPClient: hc, Logger: s.log,
		SnapshotGate: rest.NewSnapshotGate(snapshotWorkers, snapshotSpacing(s.cfg.Market, s.cfg.SnapshotLimit))})
}

// snapshotWorkers is how many depth snapshots a run fetches at once: two
// keep the pace of the gate when a request takes longer than its spacing
// (a 100 ms round trip against a 50 ms spacing).
const snapshotWorkers = 2

// snapshotSpacing is the time between snapshot starts at which a market's
// per-minute weight budget pays for snapshots of the given depth, at most
// maxSnapshotSpacing: heavier snapshots are left to the weight limiter,
// which lets a resync of a few books go at once and paces a long one.
func snapshotSpacing(k market.Kind, limit int) time.Duration {
	budget := binance.SpotWeightPerMinute
	if k == market.USDM {
		budget = binance.USDMWeightPerMinute
	}
	return min(maxSnapshotSpacing, time.Minute*time.Duration(binance.DepthWeight(k, limit))/time.Duration(budget))
}

// maxSnapshotSpacing is the gate's spacing for heavy snapshots (rest's
// default gate).
const maxSnapshotSpacing = 250 * time.Millisecond

// AddSymbol adds a symbol. On a running service it creates the symbol's
// engine state, asks for its backfill and book snapshot, and subscribes its
// streams live on the existing connections of their path (a new connection
// when those are full), without touching the other symbols' streams; it
// returns once the server has confirmed the subscription. On a stopped
// service it changes the set the next Start streams. Adding a symbol
// already present does nothing. If the server refuses the streams, or ctx
// ends before the reply, the symbol is removed again and the error
// returned.
func (s *Service) AddSymbol(ctx context.Context, symbol string) error {
	return s.addSymbol(ctx, symbol, 0)
}

// AddSymbolFrom adds a symbol as AddSymbol does, but instead of the warm
// start (the latest Backfill trades) it fetches every aggregate trade
// after afterTradeID from REST, then continues with the stream, so no id
// after afterTradeID is missing or repeated. A sharded instance taking a
// symbol over passes the last trade id its predecessor published on the
// bus. afterTradeID <= 0 is AddSymbol. It needs the aggTrade channel
// (other channels' ids cannot be fetched by id); on a stopped service the
// symbol is added without the start point (the next Start warm-starts).
func (s *Service) AddSymbolFrom(ctx context.Context, symbol string, afterTradeID int64) error {
	if afterTradeID > 0 && s.cfg.TradeChannel != binance.ChannelAggTrade {
		return fmt.Errorf("service: add symbol %s from trade id %d: needs the aggTrade channel, not %s", symbol, afterTradeID, s.cfg.TradeChannel)
	}
	return s.addSymbol(ctx, symbol, max(afterTradeID, 0))
}

func (s *Service) addSymbol(ctx context.Context, symbol string, after int64) error {
	sym := strings.ToUpper(strings.TrimSpace(symbol))
	if err := ValidSymbol(sym); err != nil {
		return err
	}
	s.symOp.Lock()
	defer s.symOp.Unlock()
	s.lc.Lock()
	s.symMu.Lock()
	if slices.Contains(s.symbols, sym) {
		s.symMu.Unlock()
		s.lc.Unlock()
		return nil
	}
	s.symbols = append(s.symbols, sym)
	s.symMu.Unlock()
	r := s.cur.Load()
	if r == nil || s.State() != Running {
		s.lc.Unlock()
		s.log.Info("Symbol added; it streams from the next start", "symbol", sym)
		return nil
	}
	subs, err := r.addSymbol(sym, after)
	s.lc.Unlock()
	s.changes.notify()
	s.log.Info("Adding symbol to the running service", "symbol", sym)
	if err == nil {
		err = r.control(ctx, subs, true)
	}
	if err == nil {
		r.subscribed(sym)
		return nil
	}
	if r.ctx.Err() != nil {
		// The run ended (Stop or Restart) during the request: the symbol
		// stays in the set, and a restarted run already streams it.
		return nil
	}
	// Refused, or ctx ended: roll back so the service does not keep a
	// symbol whose streams may not be subscribed.
	s.lc.Lock()
	s.symMu.Lock()
	s.symbols = slices.DeleteFunc(s.symbols, func(x string) bool { return x == sym })
	s.symMu.Unlock()
	var unsubs []connStreams
	if s.cur.Load() == r {
		unsubs = r.removeSymbol(sym)
	}
	s.lc.Unlock()
	s.changes.notify()
	uctx, cancel := context.WithTimeout(r.ctx, s.cfg.StopTimeout)
	defer cancel()
	if uerr := r.control(uctx, unsubs, false); uerr != nil && r.ctx.Err() == nil {
		s.log.Warn("unsubscribing a refused symbol failed", "symbol", sym, "err", uerr)
	}
	return fmt.Errorf("service: add symbol %s: %w", sym, err)
}

// RemoveSymbol removes a symbol. On a running service it drops the
// symbol's engine state and unsubscribes its streams live (a connection
// left without streams is closed), without touching the other symbols'
// streams; frames of the symbol still in flight are counted as
// UnknownSymbol. On a stopped service it changes the set the next Start
// streams. It returns ErrUnknownSymbol for a symbol not in the set.
func (s *Service) RemoveSymbol(ctx context.Context, symbol string) error {
	sym := strings.ToUpper(strings.TrimSpace(symbol))
	s.symOp.Lock()
	defer s.symOp.Unlock()
	s.lc.Lock()
	s.symMu.Lock()
	if !slices.Contains(s.symbols, sym) {
		s.symMu.Unlock()
		s.lc.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownSymbol, sym)
	}
	s.symbols = slices.DeleteFunc(s.symbols, func(x string) bool { return x == sym })
	s.symMu.Unlock()
	r := s.cur.Load()
	if r == nil || s.State() != Running {
		s.lc.Unlock()
		s.log.Info("Symbol removed", "symbol", sym)
		return nil
	}
	unsubs := r.removeSymbol(sym)
	s.lc.Unlock()
	s.changes.notify()
	s.log.Info("Removing symbol from the running service", "symbol", sym)
	if err := r.control(ctx, unsubs, false); err != nil && r.ctx.Err() == nil {
		return fmt.Errorf("service: remove symbol %s: %w", sym, err)
	}
	return nil
}

// checkWallOverrides validates WallMinNotional and normalizes its keys to
// upper case (a copy: the caller's map is not changed).
func (d *Config) checkWallOverrides() error {
	if len(d.WallMinNotional) == 0 {
		return nil
	}
	if d.DepthFlow == nil {
		return errors.New("service: per-symbol wall floors without book metrics (DepthFlow)")
	}
	m := make(map[string]fixed.Dec, len(d.WallMinNotional))
	for sym, v := range d.WallMinNotional {
		s := strings.ToUpper(strings.TrimSpace(sym))
		if err := ValidSymbol(s); err != nil {
			return fmt.Errorf("service: wall floor of %q: %w", sym, err)
		}
		if _, dup := m[s]; dup {
			return fmt.Errorf("service: wall floor of %s given twice", s)
		}
		if v == 0 {
			return fmt.Errorf("service: wall floor of %s: 0; want a positive notional, or negative for no floor", s)
		}
		c := *d.DepthFlow
		c.WallMinNotional = v
		if err := c.Validate(); err != nil {
			return fmt.Errorf("service: wall floor of %s: %w", s, err)
		}
		m[s] = v
	}
	d.WallMinNotional = m
	return nil
}

// depthFlowSymbol applies the per-symbol overrides to a symbol's copy of
// the book metrics configuration (engine.Config.DepthFlowSymbol).
func (c *Config) depthFlowSymbol(symbol string, dc *depthflow.Config) {
	if v, ok := c.WallMinNotional[symbol]; ok {
		dc.WallMinNotional = v
	}
}
