package bus

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/market"
)

// ErrSchema is wrapped by every decoding error: the message is not a valid
// schema v1 message.
var ErrSchema = errors.New("bus: invalid message")

// Decode decodes one message of any topic: it returns a *Trade,
// *BookDelta, *BookSnapshot, *BookTop, *Bar, *Large or *Signal, by the
// message's "type". It refuses another schema version, an unknown type or
// market, a missing symbol, and fields that are not what the schema says
// (a decimal that is not exact, a side other than buy or sell).
func Decode(data []byte) (any, error) {
	var h struct {
		V    int    `json:"v"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	if h.V != SchemaVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrSchema, h.V, SchemaVersion)
	}
	var m any
	switch h.Type {
	case TypeTrade:
		m = new(Trade)
	case TypeBookDelta:
		m = new(BookDelta)
	case TypeBookSnapshot:
		m = new(BookSnapshot)
	case TypeBookTop:
		m = new(BookTop)
	case TypeBar:
		m = new(Bar)
	case TypeLarge:
		m = new(Large)
	case TypeSignal:
		m = new(Signal)
	default:
		return nil, fmt.Errorf("%w: unknown type %q", ErrSchema, h.Type)
	}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSchema, h.Type, err)
	}
	if err := validate(m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSchema, h.Type, err)
	}
	return m, nil
}

// DecodeTrade decodes a trade message into t.
func DecodeTrade(data []byte, t *Trade) error { return decodeAs(data, TypeTrade, t) }

// DecodeBookDelta decodes a book.delta message into d.
func DecodeBookDelta(data []byte, d *BookDelta) error { return decodeAs(data, TypeBookDelta, d) }

// DecodeBookSnapshot decodes a book.snapshot message into s.
func DecodeBookSnapshot(data []byte, s *BookSnapshot) error {
	return decodeAs(data, TypeBookSnapshot, s)
}

// DecodeBookTop decodes a book.top message into t.
func DecodeBookTop(data []byte, t *BookTop) error { return decodeAs(data, TypeBookTop, t) }

func decodeAs(data []byte, typ string, m any) error {
	if err := json.Unmarshal(data, m); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSchema, typ, err)
	}
	if err := validate(m); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSchema, typ, err)
	}
	if got := typeOf(m); got != typ {
		return fmt.Errorf("%w: type %q, want %q", ErrSchema, got, typ)
	}
	return nil
}

func typeOf(m any) string {
	switch m := m.(type) {
	case *Trade:
		return m.Type
	case *BookDelta:
		return m.Type
	case *BookSnapshot:
		return m.Type
	case *BookTop:
		return m.Type
	case *Bar:
		return m.Type
	case *Large:
		return m.Type
	case *Signal:
		return m.Type
	}
	return ""
}

func validate(m any) error {
	switch m := m.(type) {
	case *Trade:
		if err := m.Header.check(); err != nil {
			return err
		}
		if m.Side != "buy" && m.Side != "sell" {
			return fmt.Errorf("side %q: want buy or sell", m.Side)
		}
		if m.Price <= 0 || m.Qty < 0 {
			return fmt.Errorf("price %s qty %s: want a positive price and a non-negative qty", m.Price, m.Qty)
		}
	case *BookDelta:
		if err := m.Header.check(); err != nil {
			return err
		}
		if m.FirstUpdateID > m.LastUpdateID {
			return fmt.Errorf("first_update_id %d above last_update_id %d", m.FirstUpdateID, m.LastUpdateID)
		}
		if m.TransactionTime < 0 || m.TransactionTime != 0 && m.Market != market.USDM.String() {
			return fmt.Errorf("transaction_time %d: want a positive time on usdm, none on spot", m.TransactionTime)
		}
		if err := checkLevels(m.Bids, m.Asks, true); err != nil {
			return err
		}
	case *BookSnapshot:
		if err := m.Header.check(); err != nil {
			return err
		}
		if m.Reason != ReasonSync && m.Reason != ReasonResync && m.Reason != ReasonPeriodic {
			return fmt.Errorf("reason %q: want sync, resync or periodic", m.Reason)
		}
		if err := checkLevels(m.Bids, m.Asks, false); err != nil {
			return err
		}
	case *BookTop:
		if err := m.Header.check(); err != nil {
			return err
		}
		if err := checkLevels(m.Bids, m.Asks, false); err != nil {
			return err
		}
	case *Bar:
		return checkCommon(m.Type, m.Market, m.Symbol)
	case *Large:
		return checkCommon(m.Type, m.Market, m.Symbol)
	case *Signal:
		return checkCommon(m.Type, m.Market, m.Symbol)
	}
	return nil
}

func (h *Header) check() error {
	if h.V != SchemaVersion {
		return fmt.Errorf("version %d, want %d", h.V, SchemaVersion)
	}
	return checkCommon(h.Type, h.Market, h.Symbol)
}

func checkCommon(typ, mk, symbol string) error {
	if typ == "" {
		return errors.New("no type")
	}
	if _, err := market.ParseKind(mk); err != nil {
		return fmt.Errorf("market %q: %w", mk, err)
	}
	if symbol == "" {
		return errors.New("no symbol")
	}
	return nil
}

// checkLevels refuses negative quantities and non-positive prices; zero
// quantities (removals) only in deltas.
func checkLevels(bids, asks []Level, zeroOK bool) error {
	for _, side := range [2][]Level{bids, asks} {
		for i, l := range side {
			if l[0] <= 0 || l[1] < 0 || (!zeroOK && l[1] == 0) {
				return fmt.Errorf("level %d [%s %s]: bad price or quantity", i, l[0], l[1])
			}
		}
	}
	return nil
}

// Levels converts message levels back to the market's.
func Levels(ls []Level) []market.Level {
	out := make([]market.Level, len(ls))
	for i, l := range ls {
		out[i] = market.Level{Price: l[0], Qty: l[1]}
	}
	return out
}
