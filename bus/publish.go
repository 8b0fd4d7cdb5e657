package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// PublisherConfig configures a Publisher. The zero value (with Market set)
// uses the defaults below.
type PublisherConfig struct {
	// Market is the market of the service whose events are published.
	Market market.Kind
	// TopLevels is the depth of book.top messages. Default 20.
	TopLevels int
	// TopEvery is the least exchange time between two book.top messages
	// of a symbol. Default 100 ms; negative turns book.top off.
	TopEvery time.Duration
	// SnapshotEvery is the exchange time between periodic book.snapshot
	// messages of a symbol. Default 30 s; negative turns periodic
	// snapshots off (those after each sync are always sent).
	SnapshotEvery time.Duration
	// Queue bounds the messages waiting between the service's hook and the
	// sender. The hook never blocks: when the queue is full the message is
	// dropped, counted and logged. Default 65,536.
	Queue int
	// MaxPending bounds the publishes sent and not yet acknowledged by
	// JetStream. Default 4,096.
	MaxPending int
	// AckTimeout is how long a publish waits for its acknowledgement
	// before it counts as failed and is retried. Default 5 s.
	AckTimeout time.Duration
	// Retries is how many times a failed publish is sent again (with its
	// message id, so a publish that did land is not stored twice).
	// Default 5.
	Retries int
	// DrainTimeout bounds how long Run, once its context ends, keeps
	// sending the queued messages and waiting for their acknowledgements.
	// Default 10 s.
	DrainTimeout time.Duration
	// Logger receives dropped and failed publishes. Default slog.Default().
	Logger *slog.Logger
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	if c.TopLevels <= 0 {
		c.TopLevels = 20
	}
	if c.TopEvery == 0 {
		c.TopEvery = 100 * time.Millisecond
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 30 * time.Second
	}
	if c.Queue <= 0 {
		c.Queue = 1 << 16
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 4096
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 5
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Reasons a message is dropped, the label of orderflow_bus_dropped_total.
const (
	DropQueueFull = "queue_full" // the hook found the queue full
	DropRetries   = "retries"    // every retry of a publish failed
	DropShutdown  = "shutdown"   // still queued or unacknowledged when the drain timed out
	DropEncode    = "encode"     // the event could not be encoded
)

var dropReasons = [...]string{DropQueueFull, DropRetries, DropShutdown, DropEncode}

// PublisherStats counts what a Publisher did.
type PublisherStats struct {
	Queued     [numTopics]uint64 // messages accepted by the hook, by topic
	Sent       uint64            // publishes handed to JetStream (retries included)
	Acked      uint64            // publishes JetStream stored
	Duplicates uint64            // publishes JetStream acknowledged as duplicates (already stored)
	Failed     uint64            // publishes that failed (each retry counts)
	Retried    uint64            // publishes sent again after a failure
	Dropped    map[string]uint64 // messages lost, by reason
	Pending    int               // publishes awaiting acknowledgement now
	QueueLen   int               // messages in the queue now
}

type outMsg struct {
	subject string
	id      string
	data    []byte
	topic   Topic
}

// symState is a symbol's publishing state: its subjects and when its last
// book.top and snapshot went out (exchange time).
type symState struct {
	subjects [numTopics]string
	synced   bool // a snapshot was sent (the next one is a resync)
	lastTop  int64
	lastSnap int64
	barSig   map[time.Duration]*client.BarSignalsSent // bar signals sent for each interval's newest bar
}

// Publisher sends a service's events to JetStream. Hook is the service's
// event hook (Service.AddEventHook): it encodes each event under the
// service's data lock (events are valid only there) and queues it without
// blocking. Run sends the queue with asynchronous publishes, at most
// MaxPending unacknowledged, each with its message id (docs/bus.md), and
// retries failures. Messages of one symbol and topic are published in
// order; a retried one can land after later ones (consumers order trades
// by id and chain book deltas by update id).
type Publisher struct {
	cfg   PublisherConfig
	js    jetstream.JetStream
	log   *slog.Logger
	queue chan outMsg
	retry chan *nats.Msg

	mu   sync.Mutex // serialises Hook (one service calls it under its data lock; more may share a publisher)
	syms map[string]*symState

	triesMu sync.Mutex
	// tries counts the attempts of messages that failed at least once.
	tries map[*nats.Msg]int

	queued            [numTopics]atomic.Uint64
	sent, acked, dups atomic.Uint64
	failed, retried   atomic.Uint64
	dropped           [len(dropReasons)]atomic.Uint64
	lastDropLog       atomic.Int64 // unix ns of the last queue-full warning
	// inflight counts publishes sent whose acknowledgement or failure
	// handler has not yet run (the client's own pending count drops
	// before its handler runs, so it cannot tell when counting is done).
	inflight atomic.Int64
	running  atomic.Bool
}

// NewPublisher returns a publisher on nc. It makes its own JetStream
// context (the acknowledgement handlers are per context). The stream must
// exist (EnsureStream).
func NewPublisher(nc *nats.Conn, cfg PublisherConfig) (*Publisher, error) {
	cfg = cfg.withDefaults()
	p := &Publisher{cfg: cfg, log: cfg.Logger.With("component", "bus"), queue: make(chan outMsg, cfg.Queue),
		retry: make(chan *nats.Msg, cfg.MaxPending), syms: map[string]*symState{}, tries: map[*nats.Msg]int{}}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithPublishAsyncErrHandler(p.onError),
		jetstream.WithPublishAsyncAckHandler(p.onAck))
	if err != nil {
		return nil, fmt.Errorf("bus: publisher: %w", err)
	}
	p.js = js
	return p, nil
}

// Hook is the service's event hook: it encodes the event and queues it,
// never blocking. Install it with Service.AddEventHook before Start.
func (p *Publisher) Hook(ev service.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.syms[ev.Symbol]
	if st == nil {
		st = &symState{}
		for t := range numTopics {
			st.subjects[t] = Subject(p.cfg.Market, ev.Symbol, t)
		}
		p.syms[ev.Symbol] = st
	}
	k := p.cfg.Market
	switch {
	case ev.Trade != nil:
		p.enqueue(st, TopicTrades, TradeMsgID(k, ev.Symbol, ev.Trade.ID), AppendTrade(make([]byte, 0, 256), k, ev.Trade))
	case ev.Depth != nil:
		u := ev.Depth
		p.enqueue(st, TopicBookDelta, DeltaMsgID(k, ev.Symbol, u.FinalID),
			AppendBookDelta(make([]byte, 0, 96+40*(len(u.Bids)+len(u.Asks))), k, ev.Symbol, u))
		if ev.Book == nil {
			return
		}
		t := u.EventTime
		if p.cfg.SnapshotEvery > 0 && t-st.lastSnap >= p.cfg.SnapshotEvery.Milliseconds() {
			p.snapshot(st, ev, t, ReasonPeriodic)
		}
		if p.cfg.TopEvery > 0 && t-st.lastTop >= p.cfg.TopEvery.Milliseconds() {
			st.lastTop = t
			p.enqueue(st, TopicBookTop, "", AppendBookTop(nil, k, ev.Symbol, t, ev.Book, p.cfg.TopLevels))
		}
	case ev.Synced && ev.Book != nil:
		reason := ReasonSync
		if st.synced {
			reason = ReasonResync
		}
		st.synced = true
		p.snapshot(st, ev, ev.DepthTime, reason)
		if p.cfg.TopEvery > 0 {
			st.lastTop = ev.DepthTime
			p.enqueue(st, TopicBookTop, "", AppendBookTop(nil, k, ev.Symbol, ev.DepthTime, ev.Book, p.cfg.TopLevels))
		}
	case ev.Bar != nil:
		iv := client.FormatInterval(ev.Interval)
		b := Bar{V: SchemaVersion, Type: TypeBar, Market: k.String(), Time: ev.Bar.End, Bar: client.FromBar(ev.Bar, true)}
		b.Interval = iv
		id := BarMsgID(k, ev.Symbol, iv, ev.Bar.Start)
		if ev.Revised {
			// A revision of a bar already published (late trades amended
			// it): its own id, so the stream's de-duplication keeps it,
			// and only the signals the bar gained.
			id += ".r" + strconv.FormatInt(ev.Bar.LateTrades, 10)
		}
		p.encode(st, TopicBars, id, b)
		if st.barSig == nil {
			st.barSig = map[time.Duration]*client.BarSignalsSent{}
		}
		sent := st.barSig[ev.Interval]
		if sent == nil {
			sent = &client.BarSignalsSent{}
			st.barSig[ev.Interval] = sent
		}
		for _, s := range sent.Next(ev.Bar) {
			p.encode(st, TopicSignals, "", Signal{V: SchemaVersion, Type: TypeSignal, Market: k.String(), Signal: s})
		}
	case ev.Large != nil:
		p.encode(st, TopicLarge, LargeMsgID(k, ev.Symbol, ev.Large.ID),
			Large{V: SchemaVersion, Type: TypeLarge, Market: k.String(), LargeTrade: client.FromLarge(ev.Large)})
	case ev.Signal != nil:
		if !client.IsBookSignal(ev.Signal.Kind) {
			return // bar signals are sent with their bar
		}
		p.encode(st, TopicSignals, "", Signal{V: SchemaVersion, Type: TypeSignal, Market: k.String(), Signal: client.FromBookSignal(ev.Signal)})
	}
}

// BarMsgID is the Nats-Msg-Id of a bar: <market>.<SYMBOL>.b.<interval>.<start ms>.
func BarMsgID(k market.Kind, symbol, interval string, start int64) string {
	return k.String() + "." + symbol + ".b." + interval + "." + strconv.FormatInt(start, 10)
}

// LargeMsgID is the Nats-Msg-Id of a large trade: <market>.<SYMBOL>.l.<id>.
func LargeMsgID(k market.Kind, symbol string, id int64) string { return msgID(k, symbol, 'l', id) }

func (p *Publisher) snapshot(st *symState, ev service.Event, t int64, reason string) {
	st.lastSnap = t
	b := ev.Book
	p.enqueue(st, TopicBookSnapshot, SnapshotMsgID(p.cfg.Market, ev.Symbol, b.UpdateID()),
		AppendBookSnapshot(make([]byte, 0, 64*(b.Len(market.Buy)+b.Len(market.Sell)+4)), p.cfg.Market, ev.Symbol, t, b, reason))
}

func (p *Publisher) encode(st *symState, t Topic, id string, m any) {
	data, err := Encode(m)
	if err != nil {
		p.dropped[3].Add(1)
		p.log.Error("bus: event not published", "topic", t.String(), "err", err)
		return
	}
	p.enqueue(st, t, id, data)
}

func (p *Publisher) enqueue(st *symState, t Topic, id string, data []byte) {
	select {
	case p.queue <- outMsg{subject: st.subjects[t], id: id, data: data, topic: t}:
		p.queued[t].Add(1)
	default:
		p.dropped[0].Add(1)
		// One warning a second at most: a full queue means the bus is
		// down or too slow, and every event would log otherwise.
		now := time.Now().UnixNano()
		if last := p.lastDropLog.Load(); now-last >= int64(time.Second) && p.lastDropLog.CompareAndSwap(last, now) {
			p.log.Warn("bus queue full: events dropped", "topic", t.String(), "dropped", p.dropped[0].Load())
		}
	}
}

func (p *Publisher) onAck(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
	defer p.inflight.Add(-1)
	p.acked.Add(1)
	if ack != nil && ack.Duplicate {
		p.dups.Add(1)
		p.log.Debug("bus: already stored", "subject", m.Subject, "id", m.Header.Get(jetstream.MsgIDHeader))
	}
	p.triesMu.Lock()
	if len(p.tries) > 0 {
		delete(p.tries, m)
	}
	p.triesMu.Unlock()
}

// onError runs on the client's acknowledgement goroutine: count, and hand
// the message back to Run for a retry (never block here).
func (p *Publisher) onError(_ jetstream.JetStream, m *nats.Msg, err error) {
	defer p.inflight.Add(-1) // after a retry is queued, so a drain waits for it
	p.failed.Add(1)
	p.triesMu.Lock()
	n := p.tries[m] + 1
	p.tries[m] = n
	p.triesMu.Unlock()
	if n <= p.cfg.Retries {
		select {
		case p.retry <- m:
			return
		default:
		}
	}
	p.triesMu.Lock()
	delete(p.tries, m)
	p.triesMu.Unlock()
	p.dropped[1].Add(1)
	p.log.Warn("bus publish failed for good", "subject", m.Subject, "id", m.Header.Get(jetstream.MsgIDHeader), "tries", n, "err", err)
}

// Run sends queued messages until ctx ends, then drains: it keeps sending
// what is queued and waits for the acknowledgements, for at most
// DrainTimeout, and counts what is left as dropped. Stop the service first
// so that nothing more is queued. Run returns nil after a drain that lost
// nothing.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("bus: publisher already running")
	}
	defer p.running.Store(false)
	for {
		select {
		case m := <-p.retry:
			p.resend(ctx, m)
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return p.drain()
		case m := <-p.retry:
			p.resend(ctx, m)
		case o := <-p.queue:
			p.send(ctx, p.message(o))
		}
	}
}

func (p *Publisher) message(o outMsg) *nats.Msg {
	h := nats.Header{"Content-Type": []string{ContentType}}
	if o.id != "" {
		h[jetstream.MsgIDHeader] = []string{o.id}
	}
	return &nats.Msg{Subject: o.subject, Data: o.data, Header: h}
}

func (p *Publisher) resend(ctx context.Context, m *nats.Msg) {
	p.retried.Add(1)
	p.send(ctx, m)
}

// send hands m to JetStream. When MaxPending publishes are unacknowledged
// the client stalls, then refuses; send waits and tries again until ctx
// ends (the queue absorbs the wait).
func (p *Publisher) send(ctx context.Context, m *nats.Msg) bool {
	for {
		p.inflight.Add(1)
		_, err := p.js.PublishMsgAsync(m)
		if err == nil {
			p.sent.Add(1)
			return true
		}
		p.inflight.Add(-1)
		if ctx.Err() != nil {
			p.dropped[2].Add(1)
			return false
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			p.failed.Add(1)
			p.log.Warn("bus publish refused; retrying", "subject", m.Subject, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func (p *Publisher) drain() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case m := <-p.retry:
			p.resend(ctx, m)
			continue
		case o := <-p.queue:
			p.send(ctx, p.message(o))
			continue
		default:
		}
		if p.inflight.Load() == 0 && len(p.retry) == 0 && len(p.queue) == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case m := <-p.retry:
			p.resend(ctx, m)
		case <-ctx.Done():
			lost := uint64(len(p.queue) + len(p.retry) + int(p.inflight.Load()))
			p.dropped[2].Add(lost)
			return fmt.Errorf("bus: publisher drain: %d messages not acknowledged within %s", lost, p.cfg.DrainTimeout)
		}
	}
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() PublisherStats {
	s := PublisherStats{Sent: p.sent.Load(), Acked: p.acked.Load(), Duplicates: p.dups.Load(), Failed: p.failed.Load(),
		Retried: p.retried.Load(), Dropped: map[string]uint64{}, Pending: int(p.inflight.Load()), QueueLen: len(p.queue)}
	for t := range s.Queued {
		s.Queued[t] = p.queued[t].Load()
	}
	for i, r := range dropReasons {
		s.Dropped[r] = p.dropped[i].Load()
	}
	return s
}

var (
	descQueued = prometheus.NewDesc("orderflow_bus_queued_total",
		"Messages queued for the bus, by topic.", []string{"topic"}, nil)
	descSent = prometheus.NewDesc("orderflow_bus_sent_total",
		"Publishes handed to JetStream, retries included.", nil, nil)
	descAcked = prometheus.NewDesc("orderflow_bus_acked_total",
		"Publishes acknowledged by JetStream.", nil, nil)
	descDups = prometheus.NewDesc("orderflow_bus_duplicates_total",
		"Publishes JetStream acknowledged as duplicates of a stored message id.", nil, nil)
	descFailed = prometheus.NewDesc("orderflow_bus_publish_failures_total",
		"Publishes that failed (each attempt counts).", nil, nil)
	descRetried = prometheus.NewDesc("orderflow_bus_retries_total",
		"Publishes sent again after a failure.", nil, nil)
	descDropped = prometheus.NewDesc("orderflow_bus_dropped_total",
		"Messages lost, by reason.", []string{"reason"}, nil)
	descPending = prometheus.NewDesc("orderflow_bus_pending",
		"Publishes awaiting acknowledgement.", nil, nil)
	descQueue = prometheus.NewDesc("orderflow_bus_queue_length",
		"Messages waiting in the publisher's queue.", nil, nil)
)

// Describe implements prometheus.Collector.
func (p *Publisher) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueued, descSent, descAcked, descDups, descFailed, descRetried, descDropped, descPending, descQueue} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (p *Publisher) Collect(ch chan<- prometheus.Metric) {
	s := p.Stats()
	for t := range numTopics {
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.CounterValue, float64(s.Queued[t]), t.String())
	}
	ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(s.Sent))
	ch <- prometheus.MustNewConstMetric(descAcked, prometheus.CounterValue, float64(s.Acked))
	ch <- prometheus.MustNewConstMetric(descDups, prometheus.CounterValue, float64(s.Duplicates))
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(descRetried, prometheus.CounterValue, float64(s.Retried))
	for _, r := range dropReasons {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(s.QueueLen))
}

var _ prometheus.Collector = (*Publisher)(nil)
