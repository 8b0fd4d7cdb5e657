package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/orderflow/orderflow/market"
)

// StreamName is the JetStream stream that holds every subject of the bus.
const StreamName = "ORDERFLOW"

// SubjectPrefix is the first token of every subject; the stream's subject
// filter is SubjectPrefix + ".>".
const SubjectPrefix = "orderflow"

// Topic is what a subject carries: its last one or two tokens.
type Topic uint8

// The topics, in the order of docs/bus.md.
const (
	TopicTrades       Topic = iota // one message per trade
	TopicBookDelta                 // each depth diff as applied to the synced book
	TopicBookSnapshot              // the full book after each (re)sync and periodically
	TopicBookTop                   // top-N levels, at most every 100 ms of event time
	TopicBars                      // each closed bar, with its footprint
	TopicLarge                     // each large trade
	TopicSignals                   // each signal
	numTopics
)

var topicNames = [numTopics]string{"trades", "book.delta", "book.snapshot", "book.top", "bars", "large", "signals"}

// typeNames are the "type" field values of each topic's messages.
var typeNames = [numTopics]string{TypeTrade, TypeBookDelta, TypeBookSnapshot, TypeBookTop, TypeBar, TypeLarge, TypeSignal}

// Topics lists every topic.
func Topics() []Topic {
	t := make([]Topic, numTopics)
	for i := range t {
		t[i] = Topic(i)
	}
	return t
}

// String returns the topic's subject suffix, e.g. "book.delta".
func (t Topic) String() string {
	if t < numTopics {
		return topicNames[t]
	}
	return "topic(" + strconv.Itoa(int(t)) + ")"
}

// Type returns the "type" field value of the topic's messages.
func (t Topic) Type() string {
	if t < numTopics {
		return typeNames[t]
	}
	return ""
}

// ParseTopic parses a subject suffix such as "trades" or "book.top".
func ParseTopic(s string) (Topic, error) {
	for i, n := range topicNames {
		if n == s {
			return Topic(i), nil
		}
	}
	return 0, fmt.Errorf("bus: unknown topic %q", s)
}

// Subject returns the subject of a symbol's topic:
// orderflow.<market>.<SYMBOL>.<topic>, e.g. orderflow.spot.BTCUSDT.trades.
// The symbol is upper-cased.
func Subject(k market.Kind, symbol string, t Topic) string {
	return SubjectPrefix + "." + k.String() + "." + strings.ToUpper(symbol) + "." + t.String()
}

// SymbolSubjects returns the wildcard subject of every topic of a symbol:
// orderflow.<market>.<SYMBOL>.>.
func SymbolSubjects(k market.Kind, symbol string) string {
	return SubjectPrefix + "." + k.String() + "." + strings.ToUpper(symbol) + ".>"
}

// MarketSubjects returns the wildcard subject of every symbol of a market
// and topic: orderflow.<market>.*.<topic>.
func MarketSubjects(k market.Kind, t Topic) string {
	return SubjectPrefix + "." + k.String() + ".*." + t.String()
}

// ErrSubject is wrapped by ParseSubject's errors.
var ErrSubject = errors.New("bus: not an orderflow subject")

// ParseSubject splits a subject made by Subject into its market, symbol and
// topic.
func ParseSubject(subj string) (market.Kind, string, Topic, error) {
	rest, ok := strings.CutPrefix(subj, SubjectPrefix+".")
	if !ok {
		return 0, "", 0, fmt.Errorf("%w: %q", ErrSubject, subj)
	}
	mk, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, "", 0, fmt.Errorf("%w: %q: no symbol", ErrSubject, subj)
	}
	k, err := market.ParseKind(mk)
	if err != nil {
		return 0, "", 0, fmt.Errorf("%w: %q: %v", ErrSubject, subj, err)
	}
	sym, top, ok := strings.Cut(rest, ".")
	if !ok || sym == "" || sym != strings.ToUpper(sym) {
		return 0, "", 0, fmt.Errorf("%w: %q: bad symbol", ErrSubject, subj)
	}
	t, err := ParseTopic(top)
	if err != nil {
		return 0, "", 0, fmt.Errorf("%w: %q: %v", ErrSubject, subj, err)
	}
	return k, sym, t, nil
}

// TradeMsgID is the Nats-Msg-Id of a trade: <market>.<SYMBOL>.t.<aggregate
// id>. JetStream drops a second message with the same id within the
// stream's duplicates window, so a reconnecting or failed-over publisher
// never duplicates a trade.
func TradeMsgID(k market.Kind, symbol string, id int64) string {
	return msgID(k, symbol, 't', id)
}

// DeltaMsgID is the Nats-Msg-Id of a book delta: <market>.<SYMBOL>.d.<u>.
func DeltaMsgID(k market.Kind, symbol string, lastUpdateID int64) string {
	return msgID(k, symbol, 'd', lastUpdateID)
}

// SnapshotMsgID is the Nats-Msg-Id of a book snapshot:
// <market>.<SYMBOL>.s.<lastUpdateId>.
func SnapshotMsgID(k market.Kind, symbol string, lastUpdateID int64) string {
	return msgID(k, symbol, 's', lastUpdateID)
}

func msgID(k market.Kind, symbol string, c byte, id int64) string {
	b := make([]byte, 0, 8+len(symbol)+20)
	b = append(b, k.String()...)
	b = append(b, '.')
	for i := 0; i < len(symbol); i++ {
		ch := symbol[i]
		if 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		b = append(b, ch)
	}
	b = append(b, '.', c, '.')
	b = strconv.AppendInt(b, id, 10)
	return string(b)
}
