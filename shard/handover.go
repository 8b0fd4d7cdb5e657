package shard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
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
//
// It asks the stream's leader. The stream allows direct gets (consumers
// find snapshots with them), but any replica answers a direct get, and a
// follower can be behind the leader: a new owner told an older trade, or
// none, would re-fetch trades already published or warm-start and lose
// the ids in between.
func LastTradeID(ctx context.Context, js jetstream.JetStream, k market.Kind, symbol string) (int64, error) {
	subj := bus.Subject(k, symbol, bus.TopicTrades)
	msgID, seq, err := lastMsgIDFromLeader(ctx, js, bus.StreamName, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("shard: last trade of %s: %w", symbol, err)
	}
	id, err := parseTradeMsgID(k, symbol, msgID)
	if err != nil {
		return 0, fmt.Errorf("shard: last trade of %s (stream sequence %d): %w", symbol, seq, err)
	}
	return id, nil
}

// lastMsgIDFromLeader returns the Nats-Msg-Id and stream sequence of the
// last message of subject in stream, through the JetStream API's message
// get, which only the stream's leader answers (jetstream's
// GetLastMsgForSubject uses a direct get when the stream allows them).
func lastMsgIDFromLeader(ctx context.Context, js jetstream.JetStream, stream, subject string) (msgID string, seq uint64, err error) {
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return "", 0, err
	}
	resp, err := js.Conn().RequestWithContext(ctx, apiPrefix(js.Options())+"STREAM.MSG.GET."+stream, req)
	if err != nil {
		return "", 0, fmt.Errorf("message get from %s: %w", stream, err)
	}
	var r struct {
		Message *struct {
			Seq     uint64 `json:"seq"`
			Headers []byte `json:"hdrs"` // base64 in JSON
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return "", 0, fmt.Errorf("message get from %s: answer %.200q: %w", stream, resp.Data, err)
	}
	if r.Error != nil {
		if r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return "", 0, jetstream.ErrMsgNotFound
		}
		return "", 0, fmt.Errorf("message get from %s: %w", stream, r.Error)
	}
	if r.Message == nil {
		return "", 0, fmt.Errorf("message get from %s: answer without a message: %.200q", stream, resp.Data)
	}
	if len(r.Message.Headers) == 0 {
		return "", r.Message.Seq, nil
	}
	hdr, err := nats.DecodeHeadersMsg(r.Message.Headers)
	if err != nil {
		return "", r.Message.Seq, fmt.Errorf("message get from %s: headers of sequence %d: %w", stream, r.Message.Seq, err)
	}
	return hdr.Get(jetstream.MsgIDHeader), r.Message.Seq, nil
}

// apiPrefix is the subject prefix of the JetStream API requests of a
// client made with these options (jetstream.New, NewWithAPIPrefix or
// NewWithDomain).
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
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
