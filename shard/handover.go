package shard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// LastTradeID returns the aggregate id of the last trade of a symbol on
// the bus (the last message of its .trades subject in the ORDERFLOW
// stream), read from its Nats-Msg-Id (bus.TradeMsgID). It returns 0 when
// the stream holds no trade of the symbol (none published yet, or all
// older than the retention).
func LastTradeID(ctx context.Context, js jetstream.JetStream, k market.Kind, symbol string) (int64, error) {
	st, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		return 0, fmt.Errorf("shard: last trade of %s: stream %s: %w", symbol, bus.StreamName, err)
	}
	subj := bus.Subject(k, symbol, bus.TopicTrades)
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("shard: last trade of %s: %w", symbol, err)
	}
	id, err := parseTradeMsgID(k, symbol, m.Header.Get(jetstream.MsgIDHeader))
	if err != nil {
		return 0, fmt.Errorf("shard: last trade of %s (stream sequence %d): %w", symbol, m.Sequence, err)
	}
	return id, nil
}

// parseTradeMsgID reads the aggregate id from a trade's message id.
func parseTradeMsgID(k market.Kind, symbol, msgID string) (int64, error) {
	prefix := strings.TrimSuffix(bus.TradeMsgID(k, symbol, 0), "0")
	rest, ok := strings.CutPrefix(msgID, prefix)
	if !ok {
		return 0, fmt.Errorf("message id %q: want %s<aggregate id>", msgID, prefix)
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("message id %q: bad aggregate id", msgID)
	}
	return id, nil
}

// SymbolSet is what a Member starts and stops: *service.Service.
type SymbolSet interface {
	AddSymbol(ctx context.Context, symbol string) error
	AddSymbolFrom(ctx context.Context, symbol string, afterTradeID int64) error
	RemoveSymbol(ctx context.Context, symbol string) error
}

// ServiceHooks returns the Acquire and Release callbacks that run a
// service's symbols from the leases: a won symbol continues after the
// last trade its previous owner published on the bus (fetched from REST
// by id, so no aggregate id is missing), or warm-starts when the bus has
// none; a symbol given up or lost is removed.
func ServiceHooks(svc SymbolSet, js jetstream.JetStream, k market.Kind) (acquire, release func(context.Context, string) error) {
	acquire = func(ctx context.Context, sym string) error {
		last, err := LastTradeID(ctx, js, k, sym)
		if err != nil {
			return err // not knowing where to continue: give the lease back
		}
		if last == 0 {
			return svc.AddSymbol(ctx, sym)
		}
		return svc.AddSymbolFrom(ctx, sym, last)
	}
	release = func(ctx context.Context, sym string) error {
		err := svc.RemoveSymbol(ctx, sym)
		if errors.Is(err, service.ErrUnknownSymbol) {
			return nil // not running it: nothing to stop
		}
		return err
	}
	return acquire, release
}
