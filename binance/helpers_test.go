package binance

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/orderflow/orderflow/market"
)

// appendPayload re-encodes a decoded message's payload for a market.
func appendPayload(dst []byte, m *Message, kind market.Kind) []byte {
	switch m.Kind {
	case KindAggTrade:
		return AppendAggTrade(dst, &m.Trade, kind)
	case KindTrade:
		return AppendTrade(dst, &m.Trade, kind)
	case KindDepthUpdate:
		return AppendDepthUpdate(dst, &m.Depth, kind)
	case KindBookTicker:
		return AppendBookTicker(dst, &m.Ticker, kind)
	case KindReply:
		return AppendReply(dst, m.Reply.ID, m.Reply.Result)
	case KindError:
		return AppendError(dst, m.Reply.ID, m.Reply.Code, m.Reply.Msg)
	case KindServerShutdown:
		return AppendServerShutdown(dst, m.EventTime)
	}
	panic(fmt.Sprintf("no encoder for %v", m.Kind))
}

// encodable reports the market(s) whose encoding carries every field m has:
// a depth update with "pu" or a bookTicker with "e"/"E"/"T" is USD-M's.
func encodable(m *Message) []market.Kind {
	switch m.Kind {
	case KindDepthUpdate:
		if m.Depth.HasPrev {
			return []market.Kind{market.USDM}
		}
		return []market.Kind{market.Spot}
	case KindBookTicker:
		if m.Event != "" || m.Ticker.EventTime != 0 || m.Ticker.TransactTime != 0 {
			return []market.Kind{market.USDM}
		}
		return []market.Kind{market.Spot}
	}
	return []market.Kind{market.Spot, market.USDM}
}

// canonical returns what an encoding for kind preserves of m: spot depth
// has no "T", USD-M's bookTicker always has "e", and absent reply ids and
// results encode as null.
func canonical(m *Message, kind market.Kind) Message {
	c := *m
	c.Depth.Bids = slices.Clone(m.Depth.Bids)
	c.Depth.Asks = slices.Clone(m.Depth.Asks)
	switch m.Kind {
	case KindDepthUpdate:
		if kind == market.Spot {
			c.Depth.TransactTime = 0
		}
	case KindBookTicker:
		if kind == market.USDM {
			c.Event = "bookTicker" // USD-M's bookTicker carries "e"
		}
	case KindReply, KindError:
		if len(c.Reply.ID) == 0 {
			c.Reply.ID = []byte("null")
		}
		if m.Kind == KindReply && len(c.Reply.Result) == 0 {
			c.Reply.Result = []byte("null")
		}
	}
	return c
}

// messageDiff describes how two messages differ, "" if they do not.
func messageDiff(a, b *Message) string {
	switch {
	case a.Kind != b.Kind:
		return fmt.Sprintf("Kind %v != %v", a.Kind, b.Kind)
	case a.Stream != b.Stream:
		return fmt.Sprintf("Stream %q != %q", a.Stream, b.Stream)
	case a.Event != b.Event:
		return fmt.Sprintf("Event %q != %q", a.Event, b.Event)
	case a.EventTime != b.EventTime:
		return fmt.Sprintf("EventTime %d != %d", a.EventTime, b.EventTime)
	case a.Trade != b.Trade:
		return fmt.Sprintf("Trade %+v != %+v", a.Trade, b.Trade)
	case a.Ticker != b.Ticker:
		return fmt.Sprintf("Ticker %+v != %+v", a.Ticker, b.Ticker)
	case !bytes.Equal(a.Reply.ID, b.Reply.ID) || !bytes.Equal(a.Reply.Result, b.Reply.Result) ||
		a.Reply.Code != b.Reply.Code || a.Reply.Msg != b.Reply.Msg:
		return fmt.Sprintf("Reply {%s %s %d %q} != {%s %s %d %q}", a.Reply.ID, a.Reply.Result, a.Reply.Code, a.Reply.Msg,
			b.Reply.ID, b.Reply.Result, b.Reply.Code, b.Reply.Msg)
	}
	type depthHead struct {
		sym          string
		e, t, u0, u1 int64
		pu           int64
		hasPrev      bool
	}
	head := func(u *market.DepthUpdate) depthHead {
		return depthHead{u.Symbol, u.EventTime, u.TransactTime, u.FirstID, u.FinalID, u.PrevFinalID, u.HasPrev}
	}
	if ha, hb := head(&a.Depth), head(&b.Depth); ha != hb {
		return fmt.Sprintf("Depth %+v != %+v", ha, hb)
	}
	if !slices.Equal(a.Depth.Bids, b.Depth.Bids) || !slices.Equal(a.Depth.Asks, b.Depth.Asks) {
		return "Depth levels differ"
	}
	return ""
}

// snapshotsEqual compares two snapshots field by field.
func snapshotsEqual(a, b *market.DepthSnapshot) bool {
	return a.Symbol == b.Symbol && a.LastUpdateID == b.LastUpdateID && a.EventTime == b.EventTime &&
		a.TransactTime == b.TransactTime && slices.Equal(a.Bids, b.Bids) && slices.Equal(a.Asks, b.Asks)
}

// sampleFrames returns up to n frames of each kind (by Binance's "e", or
// bookTicker) from a recording, and its snapshots.
func sampleFrames(tb testing.TB, file string, n int) (frames map[Kind][][]byte, snapshots [][]byte) {
	tb.Helper()
	frames = map[Kind][][]byte{}
	d := NewDecoder()
	var m Message
	for _, r := range readRecording(tb, file) {
		if r.snapshot {
			snapshots = append(snapshots, r.data)
			continue
		}
		if err := d.Decode(r.data, &m); err != nil {
			tb.Fatalf("%s:%d: %v", file, r.line, err)
		}
		if len(frames[m.Kind]) < n {
			frames[m.Kind] = append(frames[m.Kind], r.data)
		}
	}
	return frames, snapshots
}
