// Package push fans the service's live events out to many subscribers
// (Server-Sent Events and WebSocket clients of package api): trades, large
// trades, bar updates, book tops and signals, as JSON messages
// (client.Message).
//
// Concurrency model. A Hub has one goroutine, Run, which owns all the work:
// it drains the inbox that the service's event hook (Publish) fills, polls
// the service on a ticker for what has no event (book tops, the open bar,
// large trades, book signals), marshals each message once and offers it to every
// matching subscriber. Publish runs under the service's data lock, so it
// only copies the event into a bounded inbox with a non-blocking send; a
// full inbox counts the event as dropped. Each subscriber has a bounded
// queue: when it is full the message is skipped for that subscriber and
// counted, the subscriber is told how many it missed before its next
// message, and a subscriber whose queue stays full for Options.MaxBehind is
// disconnected. Memory is therefore bounded by the number of subscribers
// times the queue length times the largest message, whatever the clients
// do, and the service never waits for a client.
package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// Topic is a set of message kinds a subscriber wants.
type Topic uint8

// Topics.
const (
	Trades    Topic = 1 << iota // every trade
	Large                       // large trades
	Bars                        // closed bars and the open bar, periodically
	Book                        // the book's top levels, periodically
	Signals                     // signals found on closed bars and book signals (absorption, walls)
	AllTopics = Trades | Large | Bars | Book | Signals
)

var topicNames = []struct {
	name string
	t    Topic
}{{"trades", Trades}, {"large", Large}, {"bars", Bars}, {"book", Book}, {"signals", Signals}}

// ParseTopics reads a comma-separated list of topic names (trades, large,
// bars, book, signals); empty means all.
func ParseTopics(s string) (Topic, error) {
	if strings.TrimSpace(s) == "" {
		return AllTopics, nil
	}
	var t Topic
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(strings.ToLower(part))
		found := false
		for _, n := range topicNames {
			if n.name == part {
				t |= n.t
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("push: topic %q: want trades, large, bars, book or signals", part)
		}
	}
	return t, nil
}

// String lists the topics in t, comma-separated.
func (t Topic) String() string {
	var parts []string
	for _, n := range topicNames {
		if t&n.t != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, ",")
}

// Options configure a Hub. Zero fields take the defaults documented on
// each.
type Options struct {
	// Queue is each subscriber's queue length in messages (default 256).
	Queue int
	// Inbox is how many events Publish can hand to the hub before it
	// drops them (default 16384): a burst of trades between two turns of
	// the hub.
	Inbox int
	// MaxBehind: a subscriber whose queue has been full this long is
	// disconnected (default 10 s).
	MaxBehind time.Duration
	// BookInterval is how often book tops are sent (default 250 ms); it is
	// also how often large trades are looked for.
	BookInterval time.Duration
	// BarInterval is how often the open bar is sent (default 1 s).
	BarInterval time.Duration
	// BookDepth is the number of levels per side in book messages
	// (default 10).
	BookDepth int
	// BookBands are the imbalance bands of book messages in basis points
	// (default 10, 25, 50, 100).
	BookBands []int
	// Logger receives subscriber disconnects. Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Queue, 256)
	def(&o.Inbox, 16384)
	def(&o.BookDepth, 10)
	if o.MaxBehind <= 0 {
		o.MaxBehind = 10 * time.Second
	}
	if o.BookInterval <= 0 {
		o.BookInterval = 250 * time.Millisecond
	}
	if o.BarInterval <= 0 {
		o.BarInterval = time.Second
	}
	if len(o.BookBands) == 0 {
		o.BookBands = []int{10, 25, 50, 100}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stats count what the hub did.
type Stats struct {
	Subscribers  int    // connected now
	Published    uint64 // events Publish took in
	InboxDropped uint64 // events Publish dropped because the inbox was full
	Sent         uint64 // messages queued to subscribers
	Dropped      uint64 // messages skipped because a subscriber's queue was full
	Kicked       uint64 // subscribers disconnected for staying behind
}

// ErrStopped is returned by Subscribe once the hub has stopped.
var ErrStopped = errors.New("push: hub stopped")

// event is what Publish copies into the inbox.
type event struct {
	symbol string
	trade  market.Trade
	bar    *flow.Bar // closed bar without footprint; nil for a trade
}

// Hub fans events out to subscribers. Create it with New, run it with Run.
type Hub struct {
	svc   *service.Service
	opts  Options
	log   *slog.Logger
	inbox chan event

	nsubs   atomic.Int32 // Publish's fast path: nobody listens
	running atomic.Bool

	mu      sync.Mutex
	subs    map[*Sub]struct{}
	stopped bool

	published, inboxDropped, sent, dropped, kicked atomic.Uint64

	// owned by Run
	lastLarge map[string]int64
	lastSig   map[string]sigMark
	barSig    map[barKey]*client.BarSignalsSent // bar signals sent for the newest bar
}

// barKey names one bar series: a symbol's interval.
type barKey struct {
	symbol   string
	interval time.Duration
}

// sigMark is how far a symbol's book signals have been sent: the tracker
// that emitted them (a symbol removed and added again has a new one), its
// count of signals emitted and the time of the newest sent.
type sigMark struct {
	tracker *depthflow.Tracker
	total   int64
	time    int64
}

// New returns a hub reading svc.
func New(svc *service.Service, opts Options) *Hub {
	o := opts.withDefaults()
	return &Hub{svc: svc, opts: o, log: o.Logger, inbox: make(chan event, o.Inbox), subs: map[*Sub]struct{}{},
		lastLarge: map[string]int64{}, lastSig: map[string]sigMark{}, barSig: map[barKey]*client.BarSignalsSent{}}
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{Subscribers: int(h.nsubs.Load()), Published: h.published.Load(), InboxDropped: h.inboxDropped.Load(),
		Sent: h.sent.Load(), Dropped: h.dropped.Load(), Kicked: h.kicked.Load()}
}

// Publish is the service's event hook (service.Config.OnEvent or
// Service.AddEventHook). It copies the event and never blocks: with no
// subscriber it returns at once; with a full inbox it counts a drop.
func (h *Hub) Publish(ev service.Event) {
	if h.nsubs.Load() == 0 {
		return
	}
	e := event{symbol: ev.Symbol}
	switch {
	case ev.Trade != nil:
		e.trade = *ev.Trade
	case ev.Bar != nil:
		// The bar is valid only during the call; the footprint, the large
		// part, is not pushed, so it is not copied either.
		b := *ev.Bar
		b.Footprint = nil
		b.Stacked = slices.Clone(b.Stacked)
		e.bar = &b
	default:
		return
	}
	h.published.Add(1)
	select {
	case h.inbox <- e:
	default:
		h.inboxDropped.Add(1)
	}
}

// Sub is one subscriber. Read messages from C until Done is closed.
type Sub struct {
	h       *Hub
	symbols map[string]bool // empty: every symbol
	topics  Topic
	ch      chan []byte
	done    chan struct{}
	once    sync.Once

	dropped     atomic.Int64 // not yet reported to the client
	droppedAll  atomic.Int64
	behindSince atomic.Int64 // unix ns when the queue was first found full, 0 if not behind
	kickedFlag  atomic.Bool
}

// Subscribe registers a subscriber for symbols (empty: all) and topics.
// The caller must Close it.
func (h *Hub) Subscribe(symbols []string, topics Topic) (*Sub, error) {
	s := &Sub{h: h, symbols: map[string]bool{}, topics: topics, ch: make(chan []byte, h.opts.Queue),
		done: make(chan struct{})}
	for _, sym := range symbols {
		s.symbols[strings.ToUpper(sym)] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, ErrStopped
	}
	h.subs[s] = struct{}{}
	h.nsubs.Add(1)
	return s, nil
}

// C delivers the subscriber's messages, each a JSON client.Message.
func (s *Sub) C() <-chan []byte { return s.ch }

// Done is closed when the subscriber is disconnected: by Close, by the hub
// stopping, or for staying behind (Kicked).
func (s *Sub) Done() <-chan struct{} { return s.done }

// Kicked reports whether the hub disconnected the subscriber for staying
// behind.
func (s *Sub) Kicked() bool { return s.kickedFlag.Load() }

// TakeDropped returns how many messages were skipped since the last call,
// and resets the count: the writer tells the client before its next
// message (client.Message{Type: "dropped", Count: n}).
func (s *Sub) TakeDropped() int64 { return s.dropped.Swap(0) }

// Dropped returns how many messages were skipped in all.
func (s *Sub) Dropped() int64 { return s.droppedAll.Load() }

// Wrote tells the hub the writer delivered a message: once the queue is
// back under half full, the subscriber is no longer behind.
func (s *Sub) Wrote() {
	if len(s.ch) < cap(s.ch)/2 {
		s.behindSince.Store(0)
	}
}

// Close unregisters the subscriber. It is idempotent.
func (s *Sub) Close() {
	s.h.mu.Lock()
	if _, ok := s.h.subs[s]; ok {
		delete(s.h.subs, s)
		s.h.nsubs.Add(-1)
	}
	s.h.mu.Unlock()
	s.once.Do(func() { close(s.done) })
}

func (s *Sub) wants(t Topic, symbol string) bool {
	return s.topics&t != 0 && (len(s.symbols) == 0 || s.symbols[symbol])
}

// offer queues msg without blocking; a full queue skips it for this
// subscriber. It returns true when the subscriber has been full for
// MaxBehind and must be disconnected.
func (s *Sub) offer(msg []byte, now time.Time) (kick bool) {
	select {
	case s.ch <- msg:
		s.h.sent.Add(1)
		return false
	default:
	}
	s.dropped.Add(1)
	s.droppedAll.Add(1)
	s.h.dropped.Add(1)
	since := s.behindSince.Load()
	if since == 0 {
		s.behindSince.Store(now.UnixNano())
		return false
	}
	if now.Sub(time.Unix(0, since)) >= s.h.opts.MaxBehind && s.kickedFlag.CompareAndSwap(false, true) {
		s.h.kicked.Add(1)
		s.h.log.Warn("push: disconnecting a subscriber that stays behind", "dropped", s.droppedAll.Load(),
			"behind", now.Sub(time.Unix(0, since)).Round(time.Millisecond))
		return true
	}
	return false
}

// fanout offers one message to every subscriber that wants it.
func (h *Hub) fanout(t Topic, symbol string, m client.Message) {
	h.offerAll(t, symbol, m.Type, func() ([]byte, error) { return json.Marshal(m) })
}

// offerAll offers the message encode returns (called once, only if a
// subscriber wants it) to every subscriber that wants topic t for symbol.
func (h *Hub) offerAll(t Topic, symbol, typ string, encode func() ([]byte, error)) {
	var kick []*Sub
	h.mu.Lock()
	var msg []byte
	now := time.Now()
	for s := range h.subs {
		if !s.wants(t, symbol) {
			continue
		}
		if msg == nil {
			b, err := encode()
			if err != nil {
				h.mu.Unlock()
				h.log.Error("push: encode message", "type", typ, "err", err)
				return
			}
			msg = b
		}
		if s.offer(msg, now) {
			kick = append(kick, s)
		}
	}
	h.mu.Unlock()
	for _, s := range kick { // Close takes h.mu
		s.Close()
	}
}

// wanted reports which symbols some subscriber wants topic t for; all is
// true when a subscriber wants every symbol.
func (h *Hub) wanted(t Topic) (syms map[string]bool, all bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	syms = map[string]bool{}
	for s := range h.subs {
		if s.topics&t == 0 {
			continue
		}
		if len(s.symbols) == 0 {
			all = true
		}
		for sym := range s.symbols {
			syms[sym] = true
		}
	}
	return syms, all
}

// Run runs the hub until ctx ends; then it disconnects every subscriber
// and returns. It returns only after everything it started has ended (it
// starts nothing but its own loop). A Hub runs once.
func (h *Hub) Run(ctx context.Context) error {
	if !h.running.CompareAndSwap(false, true) {
		return errors.New("push: hub already ran")
	}
	defer h.stop()
	book := time.NewTicker(h.opts.BookInterval)
	defer book.Stop()
	bar := time.NewTicker(h.opts.BarInterval)
	defer bar.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-h.inbox:
			h.handle(&e)
		case <-book.C:
			h.pollLarge()
			h.pollSignals()
			h.pollBooks()
		case <-bar.C:
			h.pollBars()
		}
	}
}

func (h *Hub) stop() {
	h.mu.Lock()
	h.stopped = true
	subs := make([]*Sub, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}

func (h *Hub) handle(e *event) {
	if e.bar == nil {
		h.offerAll(Trades, e.symbol, "trade", func() ([]byte, error) {
			if b, ok := appendTradeMessage(make([]byte, 0, 192), e.symbol, &e.trade); ok {
				return b, nil
			}
			return json.Marshal(client.Message{Type: "trade", Symbol: e.symbol, Data: client.FromTrade(&e.trade)})
		})
		return
	}
	h.fanout(Bars, e.symbol, client.Message{Type: "bar", Symbol: e.symbol, Data: client.FromBar(e.bar, false)})
	// A revision (late trades amended the closed bar) goes out marked
	// revised, with only the signals the bar gained.
	k := barKey{e.symbol, e.bar.Interval}
	sent := h.barSig[k]
	if sent == nil {
		sent = &client.BarSignalsSent{}
		h.barSig[k] = sent
	}
	for _, sig := range sent.Next(e.bar) {
		h.fanout(Signals, e.symbol, client.Message{Type: "signal", Symbol: e.symbol, Data: sig})
	}
}

// symbolsFor lists the service's symbols some subscriber wants t for.
func (h *Hub) symbolsFor(t Topic) []string {
	want, all := h.wanted(t)
	if !all && len(want) == 0 {
		return nil
	}
	var out []string
	for _, sym := range h.svc.Symbols() {
		if all || want[sym] {
			out = append(out, sym)
		}
	}
	return out
}

func (h *Hub) pollBooks() {
	for _, sym := range h.symbolsFor(Book) {
		var b client.Book
		err := h.svc.ViewSymbol(sym, func(s *engine.Symbol) error {
			b = client.FromBook(s.Name, s.Book(), s.Synced(), h.opts.BookDepth, h.opts.BookBands)
			if d := s.Depth; d != nil && s.Synced() {
				m := d.Metrics()
				bm := client.FromBookMetrics(&m, d.Walls(market.Buy, nil), d.Walls(market.Sell, nil),
					d.WallsNotReady(market.Buy), d.WallsNotReady(market.Sell))
				b.Metrics = &bm
			}
			return nil
		})
		if err == nil && b.Synced {
			h.fanout(Book, sym, client.Message{Type: "book", Symbol: sym, Data: b})
		}
	}
}

func (h *Hub) pollBars() {
	for _, sym := range h.symbolsFor(Bars) {
		var b flow.Bar
		var ok bool
		err := h.svc.ViewSymbol(sym, func(s *engine.Symbol) error {
			if ivs := s.Flow.BarIntervals(); len(ivs) > 0 {
				b, ok = s.Flow.CurrentBar(ivs[0])
			}
			return nil
		})
		if err == nil && ok {
			h.fanout(Bars, sym, client.Message{Type: "bar", Symbol: sym, Data: client.FromBar(&b, false)})
		}
	}
}

// pollLarge sends the large trades flagged since the last look. The first
// look at a symbol only notes where the list ends, so a new subscriber is
// not flooded with history (GET .../large-trades has it).
func (h *Hub) pollLarge() {
	syms := h.symbolsFor(Large)
	for sym := range h.lastLarge {
		if !slices.Contains(syms, sym) {
			delete(h.lastLarge, sym) // nobody listens: start afresh for the next one
		}
	}
	for _, sym := range syms {
		last, seen := h.lastLarge[sym]
		var fresh []flow.LargeTrade
		err := h.svc.ViewSymbol(sym, func(s *engine.Symbol) error {
			n := 64
			for {
				got := s.Flow.LargeTrades(n, nil)
				if len(got) < n || (len(got) > 0 && got[0].ID <= last) {
					fresh = got
					return nil
				}
				n *= 4
			}
		})
		if err != nil {
			continue
		}
		if !seen {
			h.lastLarge[sym] = 0
			if len(fresh) > 0 {
				h.lastLarge[sym] = fresh[len(fresh)-1].ID
			}
			continue
		}
		for i := range fresh {
			if fresh[i].ID <= last {
				continue
			}
			h.fanout(Large, sym, client.Message{Type: "large", Symbol: sym, Data: client.FromLarge(&fresh[i])})
			h.lastLarge[sym] = fresh[i].ID
		}
	}
}

// signalLookback is how far before the newest sent signal the next look
// starts: bar signals (stamped with the bar's end) can land in depthflow's
// list slightly out of time order, and the emitted count, not the time,
// says which are new.
const signalLookback = 5 * 60 * 1000

// pollSignals sends the book signals (absorption, walls pulled or filled)
// emitted since the last look; the bar signals go out with their bar
// (handle). Like pollLarge, the first look at a symbol only notes where
// the list ends. Signals that fell out of depthflow's bounded list before
// a look are counted as dropped.
func (h *Hub) pollSignals() {
	syms := h.symbolsFor(Signals)
	for sym := range h.lastSig {
		if !slices.Contains(syms, sym) {
			delete(h.lastSig, sym)
		}
	}
	for _, sym := range syms {
		mark, seen := h.lastSig[sym]
		var (
			fresh []depthflow.Signal
			cur   sigMark
		)
		err := h.svc.ViewSymbol(sym, func(s *engine.Symbol) error {
			d := s.Depth
			if d == nil {
				return nil
			}
			cur.tracker = d
			for _, n := range d.Stats().Signals {
				cur.total += n
			}
			if !seen {
				return nil
			}
			if mark.tracker != d {
				mark = sigMark{tracker: d} // a new tracker: all its signals are new
			}
			cur.time = mark.time
			if cur.total > mark.total {
				fresh = d.Signals(mark.time-signalLookback, nil)
			}
			return nil
		})
		if err != nil || cur.tracker == nil {
			continue
		}
		if !seen {
			h.lastSig[sym] = cur
			continue
		}
		n := int(cur.total - mark.total) // emitted since the last look, newest last
		if n > len(fresh) {
			h.dropped.Add(uint64(n - len(fresh)))
			n = len(fresh)
		}
		for i := len(fresh) - n; i < len(fresh); i++ {
			sg := &fresh[i]
			cur.time = max(cur.time, sg.Time)
			if client.IsBookSignal(sg.Kind) {
				h.fanout(Signals, sym, client.Message{Type: "signal", Symbol: sym, Data: client.FromBookSignal(sg)})
			}
		}
		h.lastSig[sym] = cur
	}
}

// Trade messages are the push path's bulk (one per trade, where the
// other kinds come a few per second), so they are written by hand: the
// reflecting encoder and client.FromTrade's strings cost about a dozen
// allocations per trade, and the collections they bring pause the service's
// reader too. The bytes are those json.Marshal gives for
// client.Message{Type: "trade", Symbol: symbol, Data: client.FromTrade(t)}
// (TestTradeMessageMatchesJSON).
var sideNames = [...]string{market.Buy: client.Side(market.Buy), market.Sell: client.Side(market.Sell)}

// appendTradeMessage appends t's trade message for symbol, one allocation
// at most (dst's growth). It returns false when a symbol needs JSON
// escaping or the side is unknown; the caller then marshals.
func appendTradeMessage(dst []byte, symbol string, t *market.Trade) ([]byte, bool) {
	side := t.TakerSide()
	if !plainJSON(symbol) || !plainJSON(t.Symbol) || int(side) >= len(sideNames) || sideNames[side] == "" {
		return nil, false
	}
	dst = append(dst, `{"type":"trade"`...)
	if symbol != "" {
		dst = append(append(append(dst, `,"symbol":"`...), symbol...), '"')
	}
	dst = append(dst, `,"data":{`...)
	if t.Symbol != "" {
		dst = append(append(append(dst, `"symbol":"`...), t.Symbol...), `",`...)
	}
	dst = strconv.AppendInt(append(dst, `"id":`...), t.ID, 10)
	dst = strconv.AppendInt(append(dst, `,"time":`...), t.Time, 10)
	dst = append(append(append(dst, `,"side":"`...), sideNames[side]...), '"')
	dst = append(t.Price.AppendText(append(dst, `,"price":"`...)), '"')
	dst = append(t.Qty.AppendText(append(dst, `,"qty":"`...)), '"')
	dst = append(fixed.MulDec(t.Price, t.Qty).AppendScaled(append(dst, `,"notional":"`...), 2*fixed.Scale), '"')
	return append(dst, "}}"...), true
}

// plainJSON reports whether s can go into a JSON string as it is, with
// the bytes encoding/json writes: letters, digits and a few punctuation
// marks (symbols are upper-case letters and digits).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
