package bench

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// PushOptions configures a PushFanout.
type PushOptions struct {
	// Subscribers is the number of push clients (default 4).
	Subscribers int
	// Queue is each subscriber's buffer in events (default 4096).
	Queue int
}

// PushStats counts what a PushFanout did.
type PushStats struct {
	Subscribers int
	Delivered   int64 // events encoded by subscribers
	Skipped     int64 // events not queued because a subscriber's queue was full
	Bytes       int64 // JSON bytes encoded
}

// pushEvent is what a subscriber receives: a copy, so the engine's memory
// is never shared with another goroutine.
// The trade travels by value so that publishing a trade allocates nothing.
type pushEvent struct {
	Trade market.Trade
	Bar   *flow.Bar // set for a closed bar
}

// PushFanout stands in for the API's push clients (the HTTP push endpoint
// is not part of the tree yet): the engine's trade and bar-close hooks copy
// each event into every subscriber's bounded queue without blocking (a
// full queue skips the event and counts it, as the style guide asks of the
// hot path), and each subscriber goroutine JSON-encodes what it receives,
// which is the work a push connection does before its socket write.
type PushFanout struct {
	subs    []chan pushEvent
	wg      sync.WaitGroup
	closed  bool
	skipped atomic.Int64
	deliv   atomic.Int64
	bytes   atomic.Int64
}

// NewPushFanout starts the subscriber goroutines; Close stops them.
func NewPushFanout(opts PushOptions) *PushFanout {
	n := opts.Subscribers
	if n <= 0 {
		n = 4
	}
	q := opts.Queue
	if q <= 0 {
		q = 4096
	}
	p := &PushFanout{}
	for range n {
		ch := make(chan pushEvent, q)
		p.subs = append(p.subs, ch)
		p.wg.Add(1)
		go p.consume(ch)
	}
	return p
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(b []byte) (int, error) { w.n += int64(len(b)); return len(b), nil }

func (p *PushFanout) consume(ch <-chan pushEvent) {
	defer p.wg.Done()
	var w countWriter
	enc := json.NewEncoder(&w)
	for ev := range ch {
		before := w.n
		var err error
		if ev.Bar != nil {
			err = enc.Encode(ev.Bar)
		} else {
			err = enc.Encode(&ev.Trade)
		}
		if err == nil {
			p.deliv.Add(1)
		}
		p.bytes.Add(w.n - before)
	}
}

// Configure attaches the fan-out to an engine configuration.
func (p *PushFanout) Configure(cfg *engine.Config) {
	cfg.OnTrade = func(_ *engine.Symbol, t *market.Trade) {
		p.publish(pushEvent{Trade: *t})
	}
	cfg.OnBarClose = func(_ *engine.Symbol, _ time.Duration, b *flow.Bar) {
		c := *b
		c.Footprint = slices.Clone(b.Footprint)
		c.Stacked = slices.Clone(b.Stacked)
		p.publish(pushEvent{Bar: &c})
	}
}

func (p *PushFanout) publish(ev pushEvent) {
	for _, ch := range p.subs {
		select {
		case ch <- ev:
		default:
			p.skipped.Add(1)
		}
	}
}

// Close drains and stops the subscribers and waits for them. Publishing
// after Close panics; the owner stops the engine first.
func (p *PushFanout) Close() {
	if p.closed {
		return
	}
	p.closed = true
	for _, ch := range p.subs {
		close(ch)
	}
	p.wg.Wait()
}

// Stats returns the counters; call after Close for final figures.
func (p *PushFanout) Stats() PushStats {
	return PushStats{Subscribers: len(p.subs), Delivered: p.deliv.Load(), Skipped: p.skipped.Load(), Bytes: p.bytes.Load()}
}
