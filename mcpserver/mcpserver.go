// Package mcpserver serves orderflow to LLM agents over the Model Context
// Protocol (github.com/modelcontextprotocol/go-sdk): tools that return the
// order flow of a symbol as compact, number-dense JSON, and a summary tool
// that states it in a few sentences with the numbers behind them.
//
// The tools read a Source: in-process the API server (package api), or a
// running service over HTTP (*client.Client). The same server runs over
// stdio (orderflow mcp) and streamable HTTP (mounted at /mcp by package
// api).
//
// Concurrency: a Server is safe for concurrent sessions; tool handlers only
// call the Source, which is.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/orderflow/orderflow/client"
)

// Source is what the tools read. *client.Client and *api.Server implement
// it.
type Source interface {
	Symbols(ctx context.Context) (client.Symbols, error)
	Metrics(ctx context.Context, symbol string, q client.MetricsQuery) (client.Metrics, error)
	Bars(ctx context.Context, symbol string, q client.BarsQuery) (client.Bars, error)
	LargeTrades(ctx context.Context, symbol string, q client.LargeTradesQuery) (client.LargeTrades, error)
	Book(ctx context.Context, symbol string, q client.BookQuery) (client.Book, error)
	Signals(ctx context.Context, symbol string, q client.SignalsQuery) (client.Signals, error)
}

var _ Source = (*client.Client)(nil)

// Version is reported to MCP clients.
const Version = "0.1.0"

// Tool names.
const (
	ToolOrderFlow   = "get_order_flow"
	ToolLargeTrades = "get_large_trades"
	ToolOrderBook   = "get_order_book"
	ToolFootprint   = "get_footprint"
	ToolSymbols     = "list_symbols"
	ToolSummary     = "summary"
)

// New returns an MCP server whose tools read src.
func New(src Source, log *slog.Logger) *mcp.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "orderflow", Version: Version}, &mcp.ServerOptions{
		Instructions: "Live order flow from Binance market data: trades, taker buy/sell volume, delta, CVD, VWAP, " +
			"rolling windows, footprint bars, large trades and the order book. Decimals are exact strings; " +
			"times are Unix milliseconds of the exchange clock. A taker buy lifted the ask; delta = buy - sell volume.",
		Logger: log,
	})
	t := tools{src: src}
	mcp.AddTool(s, &mcp.Tool{Name: ToolSymbols, Description: "List the streamed symbols with their last price, trade count and book state."}, t.symbols)
	mcp.AddTool(s, &mcp.Tool{Name: ToolOrderFlow, Description: "Order flow of a symbol: totals since start (volume, taker buy/sell volume, delta, CVD, VWAP, high, low, last) and rolling windows (1m, 5m, 15m, 1h by default) with delta, VWAP, buy ratio, trades per second and readiness."}, t.orderFlow)
	mcp.AddTool(s, &mcp.Tool{Name: ToolLargeTrades, Description: "Most recent large (whale) trades of a symbol with side, price, qty, notional and why each was flagged, plus the current size threshold."}, t.largeTrades)
	mcp.AddTool(s, &mcp.Tool{Name: ToolOrderBook, Description: "Top of the local order book: best bid/ask, spread, mid, microprice, the top levels, and bid/ask depth and imbalance within bands around the mid (basis points)."}, t.orderBook)
	mcp.AddTool(s, &mcp.Tool{Name: ToolFootprint, Description: "Recent footprint bars of a symbol: OHLC, volume, delta, CVD, POC, divergence/exhaustion flags, stacked imbalances and, per price, taker buy and sell volume."}, t.footprint)
	mcp.AddTool(s, &mcp.Tool{Name: ToolSummary, Description: "A few sentences stating a symbol's current order flow (trend of delta, pressure, large trades, book imbalance, signals) with the numbers behind them."}, t.summary)
	return s
}

// Handler serves the MCP server over streamable HTTP, stateless (each
// request stands alone, nothing to clean up between them) with JSON
// answers.
func Handler(s *mcp.Server, log *slog.Logger) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true, Logger: log})
}

type tools struct{ src Source }

// SymbolArgs name one symbol.
type SymbolArgs struct {
	Symbol string `json:"symbol" jsonschema:"the symbol, e.g. BTCUSDT"`
}

// OrderFlowArgs select a symbol's flow.
type OrderFlowArgs struct {
	Symbol string `json:"symbol" jsonschema:"the symbol, e.g. BTCUSDT"`
	Window string `json:"window,omitempty" jsonschema:"one rolling window such as 1m, 5m, 15m or 1h; empty for all"`
}

// LargeTradesArgs select large trades.
type LargeTradesArgs struct {
	Symbol string `json:"symbol" jsonschema:"the symbol, e.g. BTCUSDT"`
	Limit  int    `json:"limit,omitempty" jsonschema:"how many of the most recent, default 20, at most 1000"`
}

// OrderBookArgs select the book view.
type OrderBookArgs struct {
	Symbol string `json:"symbol" jsonschema:"the symbol, e.g. BTCUSDT"`
	Depth  int    `json:"depth,omitempty" jsonschema:"levels per side, default 10, at most 1000"`
	Bands  []int  `json:"bands,omitempty" jsonschema:"imbalance bands in basis points of the mid, default 10, 25, 50, 100"`
}

// FootprintArgs select footprint bars.
type FootprintArgs struct {
	Symbol   string `json:"symbol" jsonschema:"the symbol, e.g. BTCUSDT"`
	Interval string `json:"interval,omitempty" jsonschema:"a configured bar interval, default 1m"`
	Limit    int    `json:"limit,omitempty" jsonschema:"closed bars, most recent, default 1 (a busy minute has hundreds of prices)"`
}

// Summary is the summary tool's answer: Text states the flow; the other
// fields are the numbers it quotes.
type Summary struct {
	Symbol  string              `json:"symbol"`
	Text    string              `json:"text"`
	Window  client.Window       `json:"window"`
	Totals  client.Totals       `json:"totals"`
	Book    *BookTop            `json:"book,omitempty"`
	Large   []client.LargeTrade `json:"large,omitempty"`
	Signals []client.Signal     `json:"signals,omitempty"`
}

// BookTop is the part of the book the summary quotes.
type BookTop struct {
	BestBid   client.Decimal `json:"best_bid"`
	BestAsk   client.Decimal `json:"best_ask"`
	Spread    client.Decimal `json:"spread"`
	BandBPS   int            `json:"band_bps"`
	Imbalance client.Decimal `json:"imbalance"`
}

func need(symbol string) error {
	if strings.TrimSpace(symbol) == "" {
		return errors.New("symbol is required, e.g. BTCUSDT (list_symbols lists them)")
	}
	return nil
}

func (t tools) symbols(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, client.Symbols, error) {
	s, err := t.src.Symbols(ctx)
	return nil, s, err
}

func (t tools) orderFlow(ctx context.Context, _ *mcp.CallToolRequest, a OrderFlowArgs) (*mcp.CallToolResult, client.Metrics, error) {
	if err := need(a.Symbol); err != nil {
		return nil, client.Metrics{}, err
	}
	m, err := t.src.Metrics(ctx, a.Symbol, client.MetricsQuery{Window: a.Window})
	return nil, m, err
}

func (t tools) largeTrades(ctx context.Context, _ *mcp.CallToolRequest, a LargeTradesArgs) (*mcp.CallToolResult, client.LargeTrades, error) {
	if err := need(a.Symbol); err != nil {
		return nil, client.LargeTrades{}, err
	}
	if a.Limit == 0 {
		a.Limit = 20
	}
	l, err := t.src.LargeTrades(ctx, a.Symbol, client.LargeTradesQuery{Limit: a.Limit})
	return nil, l, err
}

func (t tools) orderBook(ctx context.Context, _ *mcp.CallToolRequest, a OrderBookArgs) (*mcp.CallToolResult, client.Book, error) {
	if err := need(a.Symbol); err != nil {
		return nil, client.Book{}, err
	}
	if a.Depth == 0 {
		a.Depth = 10
	}
	b, err := t.src.Book(ctx, a.Symbol, client.BookQuery{Depth: a.Depth, Bands: a.Bands})
	return nil, b, err
}

func (t tools) footprint(ctx context.Context, _ *mcp.CallToolRequest, a FootprintArgs) (*mcp.CallToolResult, client.Bars, error) {
	if err := need(a.Symbol); err != nil {
		return nil, client.Bars{}, err
	}
	if a.Limit == 0 {
		a.Limit = 1
	}
	b, err := t.src.Bars(ctx, a.Symbol, client.BarsQuery{Interval: a.Interval, Limit: a.Limit, Footprint: true})
	return nil, b, err
}

func (t tools) summary(ctx context.Context, _ *mcp.CallToolRequest, a SymbolArgs) (*mcp.CallToolResult, Summary, error) {
	if err := need(a.Symbol); err != nil {
		return nil, Summary{}, err
	}
	s, err := Summarize(ctx, t.src, a.Symbol)
	return nil, s, err
}

// Summarize states the order flow of symbol in a few sentences: the
// shortest complete window (else the longest partial one), the totals, the
// book's imbalance within 25 bps, the last large trades and the signals of
// the last bars. Every number in the text is in the returned fields.
func Summarize(ctx context.Context, src Source, symbol string) (Summary, error) {
	m, err := src.Metrics(ctx, symbol, client.MetricsQuery{})
	if err != nil {
		return Summary{}, err
	}
	out := Summary{Symbol: m.Symbol, Totals: m.Totals}
	if len(m.Windows) > 0 {
		out.Window = m.Windows[len(m.Windows)-1]
		for _, w := range m.Windows {
			if w.Ready {
				out.Window = w
				break
			}
		}
	}
	var b strings.Builder
	w := out.Window
	fmt.Fprintf(&b, "%s last %s.", m.Symbol, m.Totals.Last)
	if w.Window != "" {
		state := "complete"
		if !w.Ready {
			state = fmt.Sprintf("partial, %ds seen", w.CoveredMS/1000)
		}
		fmt.Fprintf(&b, " Over the last %s (%s): %d trades, volume %s, taker buys %s vs sells %s, delta %s (%s), buy ratio %s, VWAP %s.",
			w.Window, state, w.Trades, w.Volume, w.BuyVolume, w.SellVolume, w.Delta, pressure(w.Delta, w.Volume), w.BuyRatio, w.VWAP)
	}
	fmt.Fprintf(&b, " Since start: %d trades, delta %s, CVD %s, VWAP %s, range %s-%s.",
		m.Totals.Trades, m.Totals.Delta, m.Totals.CVD, m.Totals.VWAP, m.Totals.Low, m.Totals.High)
	if bk, err := src.Book(ctx, symbol, client.BookQuery{Depth: 1, Bands: []int{25}}); err == nil && bk.Synced && bk.BestBid != nil && bk.BestAsk != nil {
		top := &BookTop{BestBid: bk.BestBid.Price, BestAsk: bk.BestAsk.Price, Spread: bk.Spread}
		if len(bk.Bands) > 0 {
			top.BandBPS, top.Imbalance = bk.Bands[0].BPS, bk.Bands[0].Imbalance
			fmt.Fprintf(&b, " Book: bid %s / ask %s (spread %s); within %d bps bids %s vs asks %s, imbalance %s (%s).",
				top.BestBid, top.BestAsk, top.Spread, top.BandBPS, bk.Bands[0].BidQty, bk.Bands[0].AskQty, top.Imbalance, lean(top.Imbalance))
		}
		out.Book = top
	} else if err == nil {
		b.WriteString(" Book: not synchronized.")
	}
	if lt, err := src.LargeTrades(ctx, symbol, client.LargeTradesQuery{Limit: 3}); err == nil {
		out.Large = lt.Trades
		if len(lt.Trades) > 0 {
			b.WriteString(" Last large trades:")
			for i, l := range lt.Trades {
				sep := ","
				if i == len(lt.Trades)-1 {
					sep = "."
				}
				fmt.Fprintf(&b, " %s %s @ %s (%s notional)%s", l.Side, l.Qty, l.Price, l.Notional, sep)
			}
		}
	}
	if sg, err := src.Signals(ctx, symbol, client.SignalsQuery{Limit: 5}); err == nil {
		out.Signals = sg.Signals
		if len(sg.Signals) > 0 {
			b.WriteString(" Signals on the last bars:")
			for i, s := range sg.Signals {
				sep := ","
				if i == len(sg.Signals)-1 {
					sep = "."
				}
				fmt.Fprintf(&b, " %s at %s (bar %d)%s", s.Kind, s.Price, s.BarStart, sep)
			}
		}
	}
	out.Text = b.String()
	return out, nil
}

// pressure words the share of delta in volume.
func pressure(delta, volume client.Decimal) string {
	d, err1 := delta.Rat()
	v, err2 := volume.Rat()
	if err1 != nil || err2 != nil || v.Sign() == 0 {
		return "no trades"
	}
	share := new(big.Rat).Quo(d, v) // in [-1, 1]
	f, _ := share.Float64()
	switch {
	case f >= 0.2:
		return "strong buying"
	case f > 0.05:
		return "buyers lead"
	case f <= -0.2:
		return "strong selling"
	case f < -0.05:
		return "sellers lead"
	}
	return "balanced"
}

func lean(imb client.Decimal) string {
	f := imb.Float64()
	switch {
	case f > 0.2:
		return "bids heavier"
	case f < -0.2:
		return "asks heavier"
	}
	return "balanced"
}
