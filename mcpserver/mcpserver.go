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
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	BookHistory(ctx context.Context, symbol string, q client.BookHistoryQuery) (client.BookHistory, error)
	Walls(ctx context.Context, symbol string, q client.WallsQuery) (client.Walls, error)
	ResetCVD(ctx context.Context, symbol string, at int64) (client.CVDReset, error)
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
	ToolBookHistory = "get_book_history"
	ToolResetCVD    = "reset_cvd"
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
	mcp.AddTool(s, &mcp.Tool{Name: ToolOrderBook, Description: "Top of the local order book: best bid/ask, spread, mid, microprice, the top levels, and bid/ask depth and imbalance within bands around the mid (basis points). With book metrics on, metrics adds the walls (levels far larger than their neighbours: side, price, qty, since when, how long they stood, ratio to the neighbours) and the band imbalance tracked at every update."}, t.orderBook)
	mcp.AddTool(s, &mcp.Tool{Name: ToolBookHistory, Description: "The order book as it was some minutes ago: the top levels at that time from the book history (one frame per second, the last ten minutes by default) and, with book metrics on, the walls standing then (including those since pulled or filled, with when and why they ended)."}, t.bookHistory)
	mcp.AddTool(s, &mcp.Tool{Name: ToolFootprint, Description: "Recent footprint bars of a symbol: OHLC, volume, delta, CVD, POC, divergence/exhaustion flags, stacked imbalances and, per price, taker buy and sell volume."}, t.footprint)
	mcp.AddTool(s, &mcp.Tool{Name: ToolResetCVD, Description: "Start a symbol's CVD (cumulative volume delta, totals.cvd of get_order_flow) again from zero, now or from an exchange time in the future (Unix ms). Totals.delta still counts since start; totals.cvd_reset_at says where CVD counts from. This changes the service's state for every client."}, t.resetCVD)
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

// BookHistoryArgs select a past moment of the book.
type BookHistoryArgs struct {
	Symbol     string  `json:"symbol" jsonschema:"the symbol, e.g. BTCUSDT"`
	MinutesAgo float64 `json:"minutes_ago,omitempty" jsonschema:"how long before the newest frame, in minutes (e.g. 5); 0 and no at: the newest frame"`
	At         int64   `json:"at,omitempty" jsonschema:"an exact time instead, Unix ms of the exchange clock"`
	Depth      int     `json:"depth,omitempty" jsonschema:"levels per side, default 10, at most what the history keeps (20)"`
}

// BookAt is the book history tool's answer: the frame in force at Time
// (the newest taken at or before it; absent when the history does not
// reach back that far) and the walls that stood at Time: current walls
// that qualified by then and ended walls that stood across it. WallsKnown
// is false without book metrics.
type BookAt struct {
	Symbol     string             `json:"symbol"`
	Time       int64              `json:"time"`
	Frame      *client.BookFrame  `json:"frame,omitempty"`
	WallsKnown bool               `json:"walls_known"`
	Walls      []client.Wall      `json:"walls,omitempty"`
	Ended      []client.EndedWall `json:"ended,omitempty"`
	Note       string             `json:"note,omitempty"`
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
	Walls   []client.Wall       `json:"walls,omitempty"`
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

// ResetCVDArgs select the symbol and the anchor of a CVD reset.
type ResetCVDArgs struct {
	Symbol string `json:"symbol" jsonschema:"the symbol, e.g. BTCUSDT"`
	At     int64  `json:"at,omitempty" jsonschema:"count trades from this exchange time, Unix ms; omitted or not after the latest time seen: from now"`
}

func (t tools) resetCVD(ctx context.Context, _ *mcp.CallToolRequest, a ResetCVDArgs) (*mcp.CallToolResult, client.CVDReset, error) {
	if err := need(a.Symbol); err != nil {
		return nil, client.CVDReset{}, err
	}
	r, err := t.src.ResetCVD(ctx, a.Symbol, a.At)
	return nil, r, err
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

func (t tools) bookHistory(ctx context.Context, _ *mcp.CallToolRequest, a BookHistoryArgs) (*mcp.CallToolResult, BookAt, error) {
	if err := need(a.Symbol); err != nil {
		return nil, BookAt{}, err
	}
	if a.MinutesAgo < 0 || a.At < 0 || (a.MinutesAgo != 0 && a.At != 0) {
		return nil, BookAt{}, errors.New("give minutes_ago (>= 0) or at (Unix ms), not both")
	}
	out, err := BookAtTime(ctx, t.src, a.Symbol, a.At, a.MinutesAgo, cmp.Or(a.Depth, 10))
	return nil, out, err
}

// BookAtTime returns the book frame and the walls standing at time at
// (Unix ms), or, with at 0, minutesAgo before the newest frame of the
// history.
func BookAtTime(ctx context.Context, src Source, symbol string, at int64, minutesAgo float64, depth int) (BookAt, error) {
	out := BookAt{Symbol: strings.ToUpper(symbol), Time: at}
	if at == 0 {
		newest, err := src.BookHistory(ctx, symbol, client.BookHistoryQuery{At: math.MaxInt64, Depth: 1})
		if err != nil {
			return out, err
		}
		if len(newest.Frames) == 0 {
			out.Note = "the book history is empty: the book has not been synchronized yet"
			return out, nil
		}
		out.Time = newest.Frames[0].Time - int64(minutesAgo*60_000)
	}
	h, err := src.BookHistory(ctx, symbol, client.BookHistoryQuery{At: out.Time, Depth: depth})
	if err != nil {
		return out, err
	}
	if len(h.Frames) == 1 {
		out.Frame = &h.Frames[0]
	} else {
		out.Note = "the book history does not reach back that far"
	}
	w, err := src.Walls(ctx, symbol, client.WallsQuery{})
	switch {
	case client.IsCode(err, "book_metrics_off"):
		out.Note = strings.TrimPrefix(out.Note+"; walls unknown: book metrics are off", "; ")
		return out, nil
	case err != nil:
		return out, err
	}
	out.WallsKnown = true
	for _, cw := range append(w.Bids, w.Asks...) {
		if cw.Since <= out.Time {
			out.Walls = append(out.Walls, cw)
		}
	}
	for _, e := range w.Ended {
		if e.Since <= out.Time && out.Time < e.End {
			out.Ended = append(out.Ended, e)
		}
	}
	return out, nil
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
// book's imbalance within 25 bps, the walls nearest the touch (book
// metrics on), the last large trades, the signals of the last bars and
// the last book signals (absorption, walls pulled or filled). Every number in the text is in the returned fields.
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
		if m := bk.Metrics; m != nil {
			out.Walls = nearestWalls(m.Walls, 2)
			if len(out.Walls) == 0 {
				b.WriteString(" No wall near the touch.")
			} else {
				b.WriteString(" Walls:")
				for i, w := range out.Walls {
					fmt.Fprintf(&b, " %s %s @ %s (stood %ds, %.1fx its neighbours)%s", w.Side, w.Qty, w.Price, w.StoodMS/1000, w.Ratio, sep(i, len(out.Walls)))
				}
			}
		}
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
		var bar, bookSig []client.Signal
		for _, s := range sg.Signals {
			if s.BarStart != 0 {
				bar = append(bar, s)
			} else {
				bookSig = append(bookSig, s)
			}
		}
		if len(bar) > 0 {
			b.WriteString(" Signals on the last bars:")
			for i, s := range bar {
				fmt.Fprintf(&b, " %s at %s (bar %d)%s", s.Kind, s.Price, s.BarStart, sep(i, len(bar)))
			}
		}
		if len(bookSig) > 0 {
			// Counts per kind and the latest of each: a busy book pulls
			// walls by the hundred, which would bury an absorption.
			b.WriteString(" Book signals over those bars:")
			kinds := []string{"absorption", "wall_pulled", "wall_filled"}
			first := true
			for _, k := range kinds {
				n, last := 0, client.Signal{}
				for _, s := range bookSig {
					if s.Kind == k {
						n, last = n+1, s
					}
				}
				if n == 0 {
					continue
				}
				if !first {
					b.WriteString(";")
				}
				first = false
				fmt.Fprintf(&b, " %d %s (last on the %s at %s, volume %s, time %d)", n, k, last.Side, last.Price, last.Volume, last.Time)
			}
			b.WriteString(".")
		}
	}
	out.Text = b.String()
	return out, nil
}

// sep ends item i of n in a list of the summary.
func sep(i, n int) string {
	if i == n-1 {
		return "."
	}
	return ","
}

// nearestWalls keeps the n walls of each side nearest the touch (the
// walls come best price first per side).
func nearestWalls(ws []client.Wall, n int) []client.Wall {
	var out []client.Wall
	count := map[string]int{}
	for _, w := range ws {
		if count[w.Side] < n {
			count[w.Side]++
			out = append(out, w)
		}
	}
	return out
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
