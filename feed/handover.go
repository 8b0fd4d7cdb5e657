package feed

import (
	"bytes"
	"slices"
	"time"

	"github.com/orderflow/orderflow/binance"
)

// Make-before-break rotation.
//
// Binance cuts every connection after 24 hours and announces planned cuts
// with serverShutdown. Before the old connection goes, Conn dials a
// replacement with the same streams and, for a while, reads both. What the
// Handler sees stays one gapless, duplicate-free sequence per stream:
//
//   - Each market-data event carries a per-stream increasing identity:
//     aggTrade "a", trade "t", depthUpdate "u", bookTicker "u". During the
//     handover (and only then) frames are decoded to read it.
//   - A stream keeps coming from the old connection until the new one has
//     caught up with it: the new connection has received an event the old
//     one already delivered. Events the new connection receives earlier are
//     held back (in order), because the old connection may still have older
//     events in flight that must come first.
//   - At the switch, held-back events newer than the last delivered one are
//     delivered, the rest dropped as duplicates (counted); from then on the
//     stream comes from the new connection only.
//   - A switched stream is done once the new connection has itself reached
//     the last delivered id (until then its frames may still be duplicates
//     and are filtered). When every stream is done the old connection is
//     closed and frames flow unfiltered again. Streams
//     that stay silent (or carry no identity) switch at the first frame of
//     the new connection or at HandoverTimeout.
//
// Depth batches are cut by the server per connection; if the two connections
// batch differently, the first new diff may overlap the last old one
// (U <= last u < u). The spot sync rule accepts that; on USD-M its pu may not
// match the previous u and the consumer resyncs, as it must for any pu break.
type handover struct {
	c        *Conn
	old, new *session
	streams  map[string]*hoStream
	left     int // streams not yet done
	bytes    int // held-back bytes
}

type hoStream struct {
	switched bool  // the new connection is the source; old frames are dropped
	done     bool  // the new connection has passed the last delivered id: no duplicate can follow
	oldSeen  bool  // the old connection delivered an event with identity during the handover
	oldMax   int64 // highest identity delivered from the old connection
	last     int64 // highest identity delivered in all
	held     []heldFrame
}

type heldFrame struct {
	id   int64
	data []byte
	recv time.Time
}

// prepareHandover starts tracking what the old connection delivers, before
// the replacement is dialed: an event the replacement can receive happened
// after it subscribed, so after this point; everything older is known to
// have come from the old connection.
func (c *Conn) prepareHandover(old *session) {
	c.mu.Lock()
	streams := slices.Clone(c.streams)
	c.mu.Unlock()
	select { // drop a leftover completion signal
	case <-c.hoDone:
	default:
	}
	h := &handover{c: c, old: old, streams: make(map[string]*hoStream, len(streams))}
	for _, s := range streams {
		h.add(s)
	}
	c.deliverMu.Lock()
	c.ho = h
	c.deliverMu.Unlock()
}

// beginHandover installs the replacement ns next to the old connection. It
// returns false if the stream set changed since ns was dialed.
func (c *Conn) beginHandover(ns *session) bool {
	c.mu.Lock()
	if c.version != ns.version {
		c.mu.Unlock()
		return false
	}
	c.cand = ns
	c.mu.Unlock()
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	if c.ho == nil {
		return false
	}
	c.ho.new = ns
	c.ho.checkDone()
	return true
}

// endHandover finishes the handover: with ns set, every stream not yet
// switched switches now (held-back frames are delivered) and ns becomes the
// delivering connection; with ns nil the handover is abandoned and the old
// connection stays. forced counts the streams switched without catching up.
func (c *Conn) endHandover(ns *session, forced bool) {
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	h := c.ho
	if h == nil {
		return
	}
	c.ho = nil
	if ns == nil {
		return
	}
	for _, st := range h.streams {
		if !st.switched {
			if forced {
				c.forced.Add(1)
			}
			h.switchStream(st)
		}
	}
	c.cur = ns
}

func (h *handover) add(stream string) {
	if _, ok := h.streams[stream]; !ok {
		h.streams[stream] = &hoStream{}
		h.left++
	}
}

func (h *handover) remove(stream string) {
	if st, ok := h.streams[stream]; ok {
		if !st.done {
			h.left--
		}
		for _, f := range st.held {
			h.bytes -= len(f.data)
		}
		delete(h.streams, stream)
	}
}

// checkDone signals Run's loop once every stream has switched.
func (h *handover) checkDone() {
	if h.left <= 0 {
		select {
		case h.c.hoDone <- struct{}{}:
		default:
		}
	}
}

// switchStream makes the new connection the source of st, delivering the
// held-back frames that are newer than what was delivered.
func (h *handover) switchStream(st *hoStream) {
	for _, f := range st.held {
		h.bytes -= len(f.data)
		if st.oldSeen && f.id <= st.last {
			h.c.dups.Add(1)
			continue
		}
		h.c.emit(f.data, f.recv)
		st.last = f.id
		st.oldSeen = true
	}
	st.switched = true
	switch {
	case !st.oldSeen:
		h.markDone(st) // nothing delivered during the handover: nothing to duplicate
	case len(st.held) > 0:
		h.newFrame(st, st.held[len(st.held)-1].id)
	}
	st.held = nil
}

// newFrame notes that the new connection reached id on st.
func (h *handover) newFrame(st *hoStream, id int64) {
	if !st.done && st.switched && (!st.oldSeen || id >= st.last) {
		h.markDone(st)
	}
}

func (h *handover) markDone(st *hoStream) {
	if !st.done {
		st.done = true
		h.left--
		h.checkDone()
	}
}

// identity returns the per-stream increasing id of a market-data frame.
func identity(s *session, frame []byte) (int64, bool) {
	if err := s.dec.Decode(frame, &s.msg); err != nil {
		return 0, false
	}
	switch s.msg.Kind {
	case binance.KindAggTrade, binance.KindTrade:
		return s.msg.Trade.ID, true
	case binance.KindDepthUpdate:
		return s.msg.Depth.FinalID, true
	case binance.KindBookTicker:
		return s.msg.Ticker.UpdateID, true
	}
	return 0, false
}

// deliver hands a frame of s to the Handler, or holds or drops it during a
// handover. name is the frame's stream (nil for a raw frame).
func (c *Conn) deliver(s *session, name, frame []byte, now time.Time) {
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	h := c.ho
	if h == nil {
		if s == c.cur {
			c.emit(frame, now)
		}
		return
	}
	if s != h.old && (h.new == nil || s != h.new) {
		return
	}
	st := h.streams[string(name)] // no allocation: map lookup by converted bytes
	if st == nil {
		// Not a stream of the set (raw frame, just unsubscribed): the new
		// connection is the source.
		if s == h.new {
			c.emit(frame, now)
		}
		return
	}
	id, ok := identity(s, frame)
	if !ok {
		if s == h.new {
			if !st.switched {
				h.switchStream(st)
			}
			h.markDone(st)
			c.emit(frame, now)
		} else if !st.switched {
			c.emit(frame, now)
		}
		return
	}
	if s == h.old {
		if st.switched {
			c.dups.Add(1)
			return
		}
		c.emit(frame, now)
		st.oldSeen, st.oldMax, st.last = true, id, id
		if len(st.held) > 0 && st.held[0].id <= id {
			h.switchStream(st) // the new connection has caught up
		}
		return
	}
	// From the new connection.
	if st.switched {
		if st.oldSeen && id <= st.last {
			c.dups.Add(1)
			h.newFrame(st, id)
			return
		}
		c.emit(frame, now)
		st.last, st.oldSeen = id, true
		h.newFrame(st, id)
		return
	}
	if st.oldSeen && id <= st.oldMax {
		c.dups.Add(1) // caught up: everything after this is news
		h.switchStream(st)
		h.newFrame(st, id)
		return
	}
	st.held = append(st.held, heldFrame{id: id, data: bytes.Clone(frame), recv: now})
	h.bytes += len(frame)
	if h.bytes > maxHandoverBytes {
		// The old connection has fallen hopelessly behind: switch all.
		for _, o := range h.streams {
			if !o.switched {
				c.forced.Add(1)
				h.switchStream(o)
			}
			h.markDone(o)
		}
	}
}

// emit calls the Handler. deliverMu held.
func (c *Conn) emit(frame []byte, now time.Time) {
	c.delivered.Add(1)
	c.opts.Handler(frame, now)
}
