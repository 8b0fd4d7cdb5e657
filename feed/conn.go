// Package feed is orderflow's Binance WebSocket market-stream client.
//
// A Conn owns one logical combined-stream connection
// (<base><path>/stream?streams=a/b/c): it dials, reads frames and hands each
// to a Handler, watches for a stale feed, reconnects with backoff, keeps the
// set of subscribed streams across reconnects, answers pings (the websocket
// library does while reading), and rotates the physical connection
// make-before-break before Binance's 24-hour cut or on a serverShutdown event.
// A Pool spreads many streams over several Conns within Binance's
// per-connection limit and routes USD-M streams to the /public or /market
// path.
//
// Concurrency model: Conn.Run is the only owner of the connection's
// goroutines (one reader per physical connection, plus a dialer during a
// rotation) and returns only after all of them have ended. Subscribe,
// Unsubscribe, ListSubscriptions and Status are safe to call from any
// goroutine while Run runs. Handler calls of one Conn never overlap. Status
// changes are reported through Options.OnStatus from Run's goroutine with no
// lock held.
//
// Binance documentation: spot "WebSocket Streams"
// (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams)
// and USD-M "WebSocket Market Streams"
// (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams).
package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/market"
)

// Handler receives every market-data frame, verbatim, with its local
// receive time. The frame buffer is reused for the next frame once the
// handler returns: copy what must outlive the call. Calls of one Conn never
// overlap; the handler must not block for long (it holds up the reader) and
// must not call Subscribe, Unsubscribe or ListSubscriptions of the same Conn
// (their replies are read by the goroutine running the handler).
type Handler func(frame []byte, recv time.Time)

// State is a Conn's connection state.
type State int32

// Connection states.
const (
	StateConnecting   State = iota // first dial in progress
	StateConnected                 // a connection is up and being read
	StateReconnecting              // the connection was lost; backing off or redialing
	StateClosed                    // Run is not running
)

// String names the state.
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	}
	return "closed"
}

// Defaults used when an Options field is zero.
const (
	DefaultDialTimeout     = 10 * time.Second
	DefaultStaleTimeout    = 60 * time.Second // 3 spot ping intervals
	DefaultReplyTimeout    = 10 * time.Second
	DefaultReadLimit       = 16 << 20 // real depth frames exceed the library's 32 KiB default
	DefaultBackoffMin      = 100 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultMaxAge          = 23*time.Hour + 50*time.Minute // Binance cuts at 24 h
	DefaultHandoverTimeout = 30 * time.Second
	// maxURLStreams bounds the streams put in the connection URL; the rest
	// are subscribed with SUBSCRIBE after connecting, so a full 1024-stream
	// connection does not need a 30 KB URL.
	maxURLStreams = 200
	// subscribeChunk bounds the streams in one SUBSCRIBE message.
	subscribeChunk = 200
	// maxHandoverBytes bounds the frames buffered during a rotation.
	maxHandoverBytes = 64 << 20
)

// Options configure a Conn. The zero value of a field means its default.
type Options struct {
	// BaseURL is the WebSocket root, e.g. "wss://stream.binance.com:9443" or
	// a simulator's "ws://127.0.0.1:port". Default:
	// binance.DefaultEndpoints(Market).WS.
	BaseURL string
	// Market selects the control-message rate and default URL.
	Market market.Kind
	// Path goes between BaseURL and "/stream": "" on spot, "/public" or
	// "/market" on USD-M. Default on USD-M: binance.StreamPath of the first
	// stream's channel.
	Path string
	// Streams are subscribed at connect ("btcusdt@aggTrade", ...).
	Streams []string
	// Handler receives the frames. Required.
	Handler Handler
	// Logger receives connection events. Default slog.Default().
	Logger *slog.Logger
	// HTTPClient is used for the WebSocket handshake. Default: a client of
	// the Conn's own that never pools connections.
	HTTPClient *http.Client
	// DialTimeout bounds one dial (TCP, TLS and handshake). Default 10 s.
	DialTimeout time.Duration
	// StaleTimeout: with no frame (data or ping) for this long the
	// connection is deemed half-open, closed and redialed. Default 60 s.
	StaleTimeout time.Duration
	// ReplyTimeout bounds the wait for a SUBSCRIBE/UNSUBSCRIBE/LIST reply.
	// Default 10 s.
	ReplyTimeout time.Duration
	// ReadLimit is the largest frame accepted. Default 16 MiB.
	ReadLimit int64
	// BackoffMin and BackoffMax bound the reconnect backoff. Defaults
	// 100 ms and 30 s.
	BackoffMin, BackoffMax time.Duration
	// MaxAge is the connection age at which a replacement is opened
	// proactively. Default 23 h 50 min.
	MaxAge time.Duration
	// HandoverTimeout bounds a rotation's overlap: streams that have not
	// switched to the new connection by then are switched anyway. Default 30 s.
	HandoverTimeout time.Duration
	// ControlRate is the most JSON messages per second this client sends
	// on one connection. Binance counts pings, pongs and JSON messages
	// together (5/s spot, 10/s USD-M); the default leaves one per second for
	// pongs: 4 spot, 9 USD-M.
	ControlRate int
	// DialLimiter is shared by all connections of the process. Default
	// DefaultDialLimiter (300 per 5 min).
	DialLimiter *DialLimiter
	// OnStatus, if set, is called on every state change, from Run's
	// goroutine with no lock held; it must not block.
	OnStatus func(old, new State)
}

// Status is a snapshot of a Conn's state and counters.
type Status struct {
	State State
	// Streams is the number of streams in the current set.
	Streams int
	// Reconnects counts connections lost and redialed; Rotations the
	// make-before-break replacements; Stale the connections closed by the
	// watchdog; DialErrors the failed dials; ServerShutdowns the
	// serverShutdown events seen.
	Reconnects, Rotations, Stale, DialErrors, ServerShutdowns uint64
	// Frames and Bytes count frames received (all connections); Delivered
	// those handed to the Handler; Duplicates those dropped as already
	// delivered during a rotation; ForcedSwitches the streams switched at a
	// rotation's timeout (a gap there is possible: the consumer's sequence
	// checks catch it).
	Frames, Bytes, Delivered, Duplicates, ForcedSwitches uint64
	// ConnectedAt is when the current connection was established; LastFrame
	// when the last frame arrived (zero if none).
	ConnectedAt, LastFrame time.Time
}

// ReplyError is an error reply to a SUBSCRIBE, UNSUBSCRIBE or
// LIST_SUBSCRIPTIONS request ({"error":{"code":2,"msg":"..."},"id":1}).
type ReplyError struct {
	Method string
	Code   int64
	Msg    string
}

// Error implements error.
func (e *ReplyError) Error() string {
	return fmt.Sprintf("feed: %s rejected by server: code %d: %s", e.Method, e.Code, e.Msg)
}

// Errors.
var (
	// ErrRunning is returned by Run when the Conn is already running.
	ErrRunning = errors.New("feed: Conn is already running")
	// ErrTooManyStreams is returned when a connection would carry more than
	// binance.MaxStreamsPerConn streams.
	ErrTooManyStreams = errors.New("feed: too many streams for one connection")
	// ErrNotConnected is returned by ListSubscriptions without a connection.
	ErrNotConnected = errors.New("feed: not connected")
	// errSessionClosed: the connection a request was sent on went away; the
	// stream set will be applied by the next connection.
	errSessionClosed = errors.New("feed: connection closed before the reply")
)

// Conn is one logical combined-stream connection to Binance. Create it with
// NewConn and run it with Run.
type Conn struct {
	opts     Options
	log      *slog.Logger
	interval time.Duration // between two JSON messages on one connection
	backoff  Backoff

	running atomic.Bool
	state   atomic.Int32
	nextSID atomic.Uint64
	nextID  atomic.Int64

	reconnects, rotations, stale, dialErrors, shutdowns atomic.Uint64
	frames, bytes, delivered, dups, forced              atomic.Uint64
	connectedAt, lastFrame                              atomic.Int64

	ctlMu sync.Mutex // serializes Subscribe and Unsubscribe

	mu       sync.Mutex // guards the fields below
	streams  []string   // the desired set, sorted
	version  uint64     // bumped on every change of streams
	active   *session
	cand     *session // the replacement during a rotation, once installed
	pending  map[int64]chan replyMsg
	rotateCh chan struct{} // serverShutdown seen on the active connection
	hoDone   chan struct{} // every stream of a handover has switched

	deliverMu sync.Mutex // serializes Handler calls; guards cur and ho
	cur       *session   // the connection whose frames are delivered
	ho        *handover  // non-nil during a rotation
}

type replyMsg struct {
	result []byte
	code   int64
	msg    string
	isErr  bool
}

// NewConn validates opts and returns a Conn (not yet running).
func NewConn(opts Options) (*Conn, error) {
	if opts.Handler == nil {
		return nil, errors.New("feed: Options.Handler is required")
	}
	if opts.BaseURL == "" {
		opts.BaseURL = binance.DefaultEndpoints(opts.Market).WS
	}
	if !strings.HasPrefix(opts.BaseURL, "ws://") && !strings.HasPrefix(opts.BaseURL, "wss://") {
		return nil, fmt.Errorf("feed: BaseURL %q: want ws:// or wss://", opts.BaseURL)
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	set, err := normalize(opts.Streams)
	if err != nil {
		return nil, err
	}
	if len(set) > binance.MaxStreamsPerConn {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooManyStreams, len(set), binance.MaxStreamsPerConn)
	}
	if opts.Path == "" && opts.Market == market.USDM && len(set) > 0 {
		opts.Path = binance.StreamPath(opts.Market, channelOf(set[0]))
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		// A transport of the Conn's own, with keep-alives off: a handshake
		// cancelled mid-dial lets net/http finish the dial in the
		// background and pool the connection, which with a shared client
		// would outlive Run by the idle timeout (90 s). With keep-alives
		// off such a connection is closed at once.
		tr := NewTransport()
		tr.DisableKeepAlives = true
		opts.HTTPClient = &http.Client{Transport: tr}
	}
	opts.DialTimeout = orDefault(opts.DialTimeout, DefaultDialTimeout)
	opts.StaleTimeout = orDefault(opts.StaleTimeout, DefaultStaleTimeout)
	opts.ReplyTimeout = orDefault(opts.ReplyTimeout, DefaultReplyTimeout)
	opts.BackoffMin = orDefault(opts.BackoffMin, DefaultBackoffMin)
	opts.BackoffMax = orDefault(opts.BackoffMax, DefaultBackoffMax)
	opts.MaxAge = orDefault(opts.MaxAge, DefaultMaxAge)
	opts.HandoverTimeout = orDefault(opts.HandoverTimeout, DefaultHandoverTimeout)
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = DefaultReadLimit
	}
	if opts.ControlRate <= 0 {
		opts.ControlRate = 4
		if opts.Market == market.USDM {
			opts.ControlRate = 9
		}
	}
	if opts.DialLimiter == nil {
		opts.DialLimiter = DefaultDialLimiter
	}
	c := &Conn{
		opts:     opts,
		log:      opts.Logger.With("url", opts.BaseURL+opts.Path),
		interval: time.Second / time.Duration(opts.ControlRate),
		backoff:  Backoff{Min: opts.BackoffMin, Max: opts.BackoffMax},
		streams:  set,
		pending:  make(map[int64]chan replyMsg),
		rotateCh: make(chan struct{}, 1),
		hoDone:   make(chan struct{}, 1),
	}
	c.state.Store(int32(StateClosed))
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// validStream checks a stream name: Binance names are ASCII without
// spaces, slashes or quotes ("btcusdt@depth@100ms", "!bookTicker").
func validStream(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("feed: stream name %q: want 1 to 128 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == '"' || c == '\\' || c == '?' || c == '&' || c == '#' || c == '%' {
			return fmt.Errorf("feed: stream name %q: invalid character %q at offset %d", s, c, i)
		}
	}
	return nil
}

// normalize validates names and returns them sorted without duplicates.
func normalize(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if err := validStream(s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// channelOf returns what follows the symbol: "btcusdt@depth@100ms" -> "depth@100ms".
func channelOf(stream string) string {
	if i := strings.IndexByte(stream, '@'); i >= 0 {
		return stream[i+1:]
	}
	return stream
}

// label makes the "Connected to BTCUSDT aggTrades stream" wording.
func label(stream string) (symbol, channel string) {
	sym, ch, ok := strings.Cut(stream, "@")
	if !ok {
		return stream, "market"
	}
	switch ch {
	case "aggTrade":
		ch = "aggTrades"
	case "trade":
		ch = "trades"
	}
	return strings.ToUpper(sym), ch
}

// Status returns the state and counters; every field is read atomically.
func (c *Conn) Status() Status {
	c.mu.Lock()
	n := len(c.streams)
	c.mu.Unlock()
	s := Status{
		State:           State(c.state.Load()),
		Streams:         n,
		Reconnects:      c.reconnects.Load(),
		Rotations:       c.rotations.Load(),
		Stale:           c.stale.Load(),
		DialErrors:      c.dialErrors.Load(),
		ServerShutdowns: c.shutdowns.Load(),
		Frames:          c.frames.Load(),
		Bytes:           c.bytes.Load(),
		Delivered:       c.delivered.Load(),
		Duplicates:      c.dups.Load(),
		ForcedSwitches:  c.forced.Load(),
	}
	if t := c.connectedAt.Load(); t != 0 {
		s.ConnectedAt = time.Unix(0, t)
	}
	if t := c.lastFrame.Load(); t != 0 {
		s.LastFrame = time.Unix(0, t)
	}
	return s
}

// Streams returns the current stream set, sorted.
func (c *Conn) Streams() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.streams)
}

func (c *Conn) setState(s State) {
	old := State(c.state.Swap(int32(s)))
	if old != s && c.opts.OnStatus != nil {
		c.opts.OnStatus(old, s)
	}
}

// Run connects and keeps the connection up until ctx is done, reconnecting
// with backoff after every loss. It returns nil once ctx is done and every
// goroutine it started has ended, or ErrRunning if the Conn is already
// running. A Conn may be run again after Run returned.
func (c *Conn) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	defer c.setState(StateClosed)
	c.setState(StateConnecting)

	// One timer for every backoff wait, as nats.go does.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	attempt := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		c.mu.Lock()
		streams, version := slices.Clone(c.streams), c.version
		c.mu.Unlock()
		s, err := c.dial(ctx, streams, version)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.dialErrors.Add(1)
			c.log.Warn("Binance stream dial failed", "attempt", attempt+1, "err", err)
		} else {
			healthy := c.serve(ctx, s)
			if ctx.Err() != nil {
				return nil
			}
			c.reconnects.Add(1)
			if healthy {
				attempt = 0
			}
		}
		c.setState(StateReconnecting)
		d := c.backoff.Delay(attempt)
		attempt++
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// session is one physical WebSocket connection.
type session struct {
	id      uint64
	ws      *websocket.Conn
	streams []string // the set it was dialed with
	version uint64   // Conn.version at dial
	started time.Time
	done    chan struct{} // closed when its reader has returned
	err     error         // why the reader stopped; read after done
	cancel  context.CancelFunc

	lastSeen atomic.Int64 // Unix ns of the last frame or ping
	gotFrame atomic.Bool

	// Owned by the reader goroutine.
	buf []byte
	dec *binance.Decoder
	msg binance.Message

	sendMu   sync.Mutex
	nextSend time.Time
}

// streamURL builds <base><path>/stream?streams=a/b/c with at most
// maxURLStreams names; it returns the names left for SUBSCRIBE.
func (c *Conn) streamURL(streams []string) (string, []string) {
	u := c.opts.BaseURL + c.opts.Path + "/stream"
	n := min(len(streams), maxURLStreams)
	if n > 0 {
		u += "?streams=" + strings.Join(streams[:n], "/")
	}
	return u, streams[n:]
}

// dial opens a connection for streams (version is Conn.version they were
// read at). The returned session is not yet read.
func (c *Conn) dial(ctx context.Context, streams []string, version uint64) (*session, error) {
	if err := c.opts.DialLimiter.Wait(ctx); err != nil {
		return nil, fmt.Errorf("feed: waiting for a connection attempt slot: %w", err)
	}
	s := &session{id: c.nextSID.Add(1), streams: streams, version: version, done: make(chan struct{}), dec: binance.NewDecoder()}
	u, _ := c.streamURL(streams)
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	start := time.Now()
	ws, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient: c.opts.HTTPClient,
		OnPingReceived: func(context.Context, []byte) bool {
			s.lastSeen.Store(time.Now().UnixNano())
			return true // the library answers with a pong echoing the payload
		},
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("feed: dial %s%s/stream (%d streams): %w", c.opts.BaseURL, c.opts.Path, len(streams), err)
	}
	ws.SetReadLimit(c.opts.ReadLimit)
	s.ws = ws
	s.started = time.Now()
	s.lastSeen.Store(s.started.UnixNano())
	c.log.Info("Dialed Binance stream connection", "conn", s.id, "streams", len(streams), "duration", s.started.Sub(start))
	for _, st := range streams {
		sym, ch := label(st)
		c.log.Info("Connected to "+sym+" "+ch+" stream", "stream", st, "conn", s.id)
	}
	return s, nil
}

// start runs s's reader and subscribes the streams that did not fit in the
// URL. On error the session is closed and its reader has ended.
func (c *Conn) start(ctx context.Context, s *session) error {
	sctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	go c.readLoop(sctx, s)
	_, rest := c.streamURL(s.streams)
	for len(rest) > 0 {
		n := min(len(rest), subscribeChunk)
		if _, err := c.request(sctx, s, "SUBSCRIBE", rest[:n]); err != nil {
			c.closeSession(s)
			return fmt.Errorf("feed: subscribing %d streams after connect: %w", len(rest), err)
		}
		rest = rest[n:]
	}
	return nil
}

// closeSession closes s at once and waits for its reader to end.
func (c *Conn) closeSession(s *session) {
	s.cancel()
	s.ws.CloseNow()
	<-s.done
}

// serve reads s until it is lost or ctx is done, rotating make-before-break
// when s gets old or Binance announces a shutdown. It returns only after
// every goroutine it started has ended; healthy says whether the connection
// delivered a frame (so the backoff restarts from its minimum).
func (c *Conn) serve(ctx context.Context, s *session) (healthy bool) {
	c.deliverMu.Lock()
	c.cur = s
	c.deliverMu.Unlock()
	c.mu.Lock()
	c.active = s
	c.mu.Unlock()
	// Drop a stale rotation request left by an earlier connection.
	select {
	case <-c.rotateCh:
	default:
	}
	if err := c.start(ctx, s); err != nil {
		c.log.Warn("Binance stream connection failed after connect", "conn", s.id, "err", err)
		c.detach(s)
		return false
	}
	c.connectedAt.Store(s.started.UnixNano())
	c.setState(StateConnected)

	type dialResult struct {
		s   *session
		err error
	}
	var (
		cand      *session
		candCh    chan dialResult // non-nil while a replacement is being dialed
		candStop  context.CancelFunc
		rotations int // failed replacement dials, for the retry backoff
	)
	staleT := time.NewTimer(c.opts.StaleTimeout)
	defer staleT.Stop()
	ageT := time.NewTimer(c.opts.MaxAge)
	defer ageT.Stop()
	hoT := time.NewTimer(time.Hour)
	hoT.Stop()
	defer hoT.Stop()

	startRotation := func(reason string) {
		if candCh != nil || cand != nil {
			return
		}
		c.log.Info("Opening a replacement Binance stream connection", "conn", s.id, "reason", reason, "age", time.Since(s.started))
		c.prepareHandover(s)
		c.mu.Lock()
		streams, version := slices.Clone(c.streams), c.version
		c.mu.Unlock()
		dctx, stop := context.WithCancel(ctx)
		candStop = stop
		ch := make(chan dialResult, 1)
		candCh = ch
		go func() {
			ns, err := c.dial(dctx, streams, version)
			if err == nil {
				if err = c.start(ctx, ns); err != nil {
					ns = nil
				}
			}
			ch <- dialResult{ns, err}
		}()
	}
	// finish ends a rotation: the candidate becomes the active connection.
	finish := func(forced bool) {
		c.endHandover(cand, forced)
		old := s
		s, cand = cand, nil
		c.mu.Lock()
		c.active, c.cand = s, nil
		c.mu.Unlock()
		c.closeSession(old)
		c.detach(old)
		c.rotations.Add(1)
		c.connectedAt.Store(s.started.UnixNano())
		hoT.Stop()
		ageT.Reset(c.opts.MaxAge)
		staleT.Reset(c.opts.StaleTimeout)
		c.log.Info("Switched to the replacement Binance stream connection", "old", old.id, "conn", s.id, "forced", forced)
	}
	defer func() {
		// Every goroutine this call started ends before it returns.
		if candCh != nil {
			candStop()
			if r := <-candCh; r.s != nil {
				c.closeSession(r.s)
			}
		}
		c.endHandover(nil, false)
		if cand != nil {
			c.closeSession(cand)
			c.detach(cand)
		}
		c.closeSession(s)
		c.detach(s)
		healthy = healthy || s.gotFrame.Load()
	}()

	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			healthy = healthy || s.gotFrame.Load()
			if cand != nil {
				// The old connection died mid-rotation: the new one has
				// been subscribed all along, so switch now.
				finish(true)
				continue
			}
			if ctx.Err() == nil {
				c.log.Warn("Binance stream connection lost", "conn", s.id, "err", s.err, "age", time.Since(s.started))
			}
			return
		case <-staleT.C:
			idle := time.Since(time.Unix(0, s.lastSeen.Load()))
			if idle >= c.opts.StaleTimeout {
				c.stale.Add(1)
				c.log.Warn("No frame from Binance: closing the stale connection", "conn", s.id, "idle", idle)
				s.ws.CloseNow() // the reader ends and s.done fires
				continue
			}
			staleT.Reset(c.opts.StaleTimeout - idle)
		case <-c.rotateCh:
			c.shutdowns.Add(1)
			startRotation("serverShutdown")
		case <-ageT.C:
			startRotation("max age")
		case r := <-candCh:
			candCh, candStop = nil, nil
			if r.err != nil {
				rotations++
				d := c.backoff.Delay(rotations)
				c.log.Warn("Replacement Binance stream connection failed; keeping the old one", "err", r.err, "retry_in", d)
				c.endHandover(nil, false)
				ageT.Reset(d)
				continue
			}
			if !c.beginHandover(r.s) {
				// The stream set changed while dialing: start over so the
				// replacement carries exactly the current set.
				c.closeSession(r.s)
				c.detach(r.s)
				c.endHandover(nil, false)
				startRotation("stream set changed during dial")
				continue
			}
			rotations = 0
			cand = r.s
			hoT.Reset(c.opts.HandoverTimeout)
		case <-c.hoDone:
			if cand != nil {
				finish(false)
			}
		case <-hoT.C:
			if cand != nil {
				c.log.Warn("Rotation handover timed out; switching remaining streams", "conn", cand.id)
				finish(true)
			}
		}
	}
}

// detach clears s from the Conn's pointers once it is closed.
func (c *Conn) detach(s *session) {
	c.mu.Lock()
	if c.active == s {
		c.active = nil
	}
	if c.cand == s {
		c.cand = nil
	}
	c.mu.Unlock()
	c.deliverMu.Lock()
	if c.cur == s {
		c.cur = nil
	}
	c.deliverMu.Unlock()
}

// readLoop reads s until it fails; it is s's only reader.
//
// The reads themselves take no context: the websocket library arms a
// context.AfterFunc for every read with a cancellable context, an
// allocation and two atomic swaps per frame. Instead ctx's end closes the
// connection once, which ends the read in progress the same way.
func (c *Conn) readLoop(ctx context.Context, s *session) {
	defer close(s.done)
	stop := context.AfterFunc(ctx, func() { s.ws.CloseNow() })
	defer stop()
	for {
		_, r, err := s.ws.Reader(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			s.err = err
			return
		}
		s.buf = s.buf[:0]
		for {
			if len(s.buf) == cap(s.buf) {
				s.buf = append(s.buf, 0)[:len(s.buf)]
			}
			n, err := r.Read(s.buf[len(s.buf):cap(s.buf)])
			s.buf = s.buf[:len(s.buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				s.err = err
				return
			}
		}
		now := time.Now()
		s.lastSeen.Store(now.UnixNano())
		c.lastFrame.Store(now.UnixNano())
		c.frames.Add(1)
		c.bytes.Add(uint64(len(s.buf)))
		c.onFrame(s, s.buf, now)
	}
}

// streamOf returns the stream name of a combined-stream frame
// ({"stream":"btcusdt@trade","data":...}), a sub-slice of frame, or ok=false
// for anything else (replies, errors, raw frames). Binance writes "stream"
// first; other layouts take the slow path, which still works.
func streamOf(frame []byte) (name []byte, ok bool) {
	const prefix = `{"stream":"`
	if !bytes.HasPrefix(frame, []byte(prefix)) {
		return nil, false
	}
	rest := frame[len(prefix):]
	i := bytes.IndexByte(rest, '"')
	if i <= 0 {
		return nil, false
	}
	return rest[:i], true
}

// onFrame routes one frame: replies to their requester, serverShutdown to
// the rotation logic, everything else to the Handler.
func (c *Conn) onFrame(s *session, frame []byte, now time.Time) {
	name, ok := streamOf(frame)
	if !ok || name[0] == '!' {
		// Control frames and "!" streams: decode to see what they are.
		if err := s.dec.Decode(frame, &s.msg); err == nil {
			switch s.msg.Kind {
			case binance.KindReply, binance.KindError:
				c.routeReply(&s.msg)
				return
			case binance.KindServerShutdown:
				c.mu.Lock()
				isActive := c.active == s
				c.mu.Unlock()
				c.log.Info("Binance announced a server shutdown", "conn", s.id, "active", isActive)
				if isActive {
					select {
					case c.rotateCh <- struct{}{}:
					default:
					}
				}
				return
			}
		}
	}
	s.gotFrame.Store(true)
	c.deliver(s, name, frame, now)
}

func (c *Conn) routeReply(m *binance.Message) {
	id, err := strconv.ParseInt(string(m.Reply.ID), 10, 64)
	if err != nil {
		c.log.Warn("Binance reply with an unexpected id", "id", string(m.Reply.ID), "code", m.Reply.Code, "msg", m.Reply.Msg)
		return
	}
	c.mu.Lock()
	ch := c.pending[id]
	c.mu.Unlock()
	if ch == nil {
		return // the requester gave up
	}
	r := replyMsg{result: bytes.Clone(m.Reply.Result), code: m.Reply.Code, msg: m.Reply.Msg, isErr: m.Kind == binance.KindError}
	select {
	case ch <- r:
	default:
	}
}

// send writes one JSON message on s, spaced by the control-message rate.
func (c *Conn) send(ctx context.Context, s *session, msg []byte) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if wait := time.Until(s.nextSend); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-s.done:
			t.Stop()
			return errSessionClosed
		}
	}
	s.nextSend = time.Now().Add(c.interval)
	return s.ws.Write(ctx, websocket.MessageText, msg)
}

// request sends method(params) on s and waits for its reply.
func (c *Conn) request(ctx context.Context, s *session, method string, params []string) ([]byte, error) {
	id := c.nextID.Add(1)
	ch := make(chan replyMsg, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.send(ctx, s, binance.AppendRequest(nil, method, params, id)); err != nil {
		select {
		case <-s.done:
			return nil, errSessionClosed
		default:
		}
		return nil, fmt.Errorf("feed: send %s: %w", method, err)
	}
	t := time.NewTimer(c.opts.ReplyTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.isErr {
			return nil, &ReplyError{Method: method, Code: r.code, Msg: r.msg}
		}
		return r.result, nil
	case <-s.done:
		return nil, errSessionClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("feed: waiting for %s reply: %w", method, ctx.Err())
	case <-t.C:
		return nil, fmt.Errorf("feed: no reply to %s (id %d) within %v", method, id, c.opts.ReplyTimeout)
	}
}

// Subscribe adds streams to the set and, when connected, subscribes them
// live (on the replacement connection too during a rotation), waiting for
// the reply. On an error reply the streams are removed from the set again
// and a *ReplyError is returned. Without a connection, or if it drops before
// the reply, the streams are kept and subscribed by the next connection.
func (c *Conn) Subscribe(ctx context.Context, streams ...string) error {
	add, err := normalize(streams)
	if err != nil {
		return err
	}
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	c.mu.Lock()
	add = slices.DeleteFunc(add, func(s string) bool { _, found := slices.BinarySearch(c.streams, s); return found })
	if len(c.streams)+len(add) > binance.MaxStreamsPerConn {
		n := len(c.streams)
		c.mu.Unlock()
		return fmt.Errorf("%w: %d + %d > %d", ErrTooManyStreams, n, len(add), binance.MaxStreamsPerConn)
	}
	if len(add) == 0 {
		c.mu.Unlock()
		return nil
	}
	c.streams = append(c.streams, add...)
	slices.Sort(c.streams)
	c.version++
	sessions := c.liveSessions()
	c.mu.Unlock()
	c.deliverMu.Lock()
	if c.ho != nil {
		for _, s := range add {
			c.ho.add(s)
		}
	}
	c.deliverMu.Unlock()

	err = c.requestAll(ctx, sessions, "SUBSCRIBE", add)
	var re *ReplyError
	if errors.As(err, &re) {
		c.mu.Lock()
		c.streams = slices.DeleteFunc(c.streams, func(s string) bool { return slices.Contains(add, s) })
		c.version++
		c.mu.Unlock()
	}
	return err
}

// Unsubscribe removes streams from the set and, when connected, unsubscribes
// them live. Frames of those streams already in flight may still be
// delivered.
func (c *Conn) Unsubscribe(ctx context.Context, streams ...string) error {
	del, err := normalize(streams)
	if err != nil {
		return err
	}
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	c.mu.Lock()
	del = slices.DeleteFunc(del, func(s string) bool { _, found := slices.BinarySearch(c.streams, s); return !found })
	if len(del) == 0 {
		c.mu.Unlock()
		return nil
	}
	c.streams = slices.DeleteFunc(c.streams, func(s string) bool { return slices.Contains(del, s) })
	c.version++
	sessions := c.liveSessions()
	c.mu.Unlock()
	c.deliverMu.Lock()
	if c.ho != nil {
		for _, s := range del {
			c.ho.remove(s)
		}
		c.ho.checkDone()
	}
	c.deliverMu.Unlock()
	return c.requestAll(ctx, sessions, "UNSUBSCRIBE", del)
}

// liveSessions returns the connections a live request goes to. mu held.
func (c *Conn) liveSessions() []*session {
	var out []*session
	for _, s := range []*session{c.active, c.cand} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (c *Conn) requestAll(ctx context.Context, sessions []*session, method string, params []string) error {
	for _, s := range sessions {
		for p := params; len(p) > 0; {
			n := min(len(p), subscribeChunk)
			_, err := c.request(ctx, s, method, p[:n])
			if errors.Is(err, errSessionClosed) {
				break // the next connection is dialed with the current set
			}
			if err != nil {
				return fmt.Errorf("feed: %s %d streams on connection %d: %w", method, len(params), s.id, err)
			}
			p = p[n:]
		}
	}
	return nil
}

// ListSubscriptions asks the server which streams the current connection
// carries (LIST_SUBSCRIPTIONS).
func (c *Conn) ListSubscriptions(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	s := c.active
	c.mu.Unlock()
	if s == nil {
		return nil, ErrNotConnected
	}
	res, err := c.request(ctx, s, "LIST_SUBSCRIPTIONS", nil)
	if err != nil {
		return nil, fmt.Errorf("feed: LIST_SUBSCRIPTIONS: %w", err)
	}
	var out []string
	if err := json.Unmarshal(res, &out); err != nil {
		return nil, fmt.Errorf("feed: LIST_SUBSCRIPTIONS: decode result %q: %w", res, err)
	}
	return out, nil
}
