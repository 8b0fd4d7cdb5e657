package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/mcpserver"
	"github.com/orderflow/orderflow/service"
)

// The query methods answer in-process what the routes answer over HTTP;
// the MCP tools call them directly (Server is a mcpserver.Source). Each
// copies what it needs under the service's data lock and converts after.

var _ mcpserver.Source = (*Server)(nil)

// Limits of the query parameters.
const (
	DefaultBarsLimit   = 10
	DefaultLargeLimit  = 50
	MaxLargeLimit      = 1000
	DefaultTradesLimit = 100
	MaxTradesLimit     = 10_000
	DefaultBookDepth   = 20
	MaxBookDepth       = 1000
	MaxBands           = 16
	MaxBandBPS         = 10_000
	// MaxHistoryFrames bounds the frames of one book history answer (ten
	// minutes at the default one-second interval, the default history).
	MaxHistoryFrames = 600
)

// errBookMetricsOff answers the book-metrics routes of a service that does
// not track them, rather than empty data that would read as "no walls".
var errBookMetricsOff = &Error{Code: "book_metrics_off",
	Message: "book metrics (walls, liquidity, book signals) are off on this service: start it with book metrics on (orderflow run --book-metrics)"}

// errBookHistoryOff answers the book history route when the engine keeps
// none.
var errBookHistoryOff = &Error{Code: "book_history_off", Message: "the book history is off on this service"}

// DefaultBands are the book imbalance bands in basis points.
var DefaultBands = []int{10, 25, 50, 100}

func durations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = client.FormatInterval(d)
	}
	return strings.Join(s, ", ")
}

// pickDuration parses name=v (e.g. "5m") and checks it is one of have;
// empty v gives def.
func pickDuration(name, v string, have []time.Duration, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, badRequest("%s %q: not a duration (e.g. 1m, 5m, 1h)", name, v)
	}
	if !slices.Contains(have, d) {
		return 0, badRequest("%s %q: not configured; available: %s", name, v, durations(have))
	}
	return d, nil
}

// Symbols lists the streamed symbols with their headline numbers.
func (s *Server) Symbols(_ context.Context) (client.Symbols, error) {
	out := client.Symbols{Symbols: []client.SymbolInfo{}}
	names := s.svc.Symbols()
	type row struct {
		info client.SymbolInfo
		last fixed.Dec
	}
	rows := make([]row, len(names))
	for i, n := range names {
		rows[i].info = client.SymbolInfo{Symbol: n, Market: s.market.String()}
	}
	err := s.svc.View(func(e *engine.Engine) error {
		for i := range rows {
			if sym := e.Symbol(rows[i].info.Symbol); sym != nil {
				t := sym.Flow.Totals()
				rows[i].info.Market = sym.Market.String()
				rows[i].info.BookSynced = sym.Synced()
				rows[i].info.Trades, rows[i].info.LastTime, rows[i].last = t.Trades, t.LastTime, t.Last
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, service.ErrNotRunning) {
		return out, err
	}
	for _, r := range rows {
		r.info.Last = client.Dec(r.last)
		out.Symbols = append(out.Symbols, r.info)
	}
	return out, nil
}

// Metrics returns a symbol's totals and rolling windows (q.Window: one of
// them).
func (s *Server) Metrics(_ context.Context, symbol string, q client.MetricsQuery) (client.Metrics, error) {
	var (
		out      client.Metrics
		totals   flow.Totals
		wins     []flow.WindowStats
		th       flow.LargeThreshold
		notional fixed.Dec
	)
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		f := sym.Flow
		have := f.Windows()
		lens := have
		if q.Window != "" {
			d, err := pickDuration("window", q.Window, have, 0)
			if err != nil {
				return err
			}
			lens = []time.Duration{d}
		}
		out = client.Metrics{Symbol: sym.Name, Market: sym.Market.String(), Time: f.Now(), BookSynced: sym.Synced()}
		totals, th, notional = f.Totals(), f.LargeThreshold(), f.Config().LargeNotional
		for _, d := range lens {
			ws, ok := f.Window(d)
			if !ok {
				ws = flow.WindowStats{Window: d}
			}
			wins = append(wins, ws)
		}
		return nil
	})
	if err != nil {
		return client.Metrics{}, err
	}
	out.Totals = client.FromTotals(totals)
	out.Large = client.FromThreshold(th, notional)
	out.Windows = make([]client.Window, len(wins))
	for i, w := range wins {
		out.Windows[i] = client.FromWindow(w)
	}
	return out, nil
}

// ResetCVD starts a symbol's CVD (Totals.CVD) again from zero at exchange
// time at (Unix ms; 0: now, the latest exchange time seen), under the
// service's data lock, and returns the anchor used (see flow.Tracker.ResetCVD).
// The reset lasts as long as the symbol's state: a service restart or a
// symbol removed and added again starts without it.
func (s *Server) ResetCVD(_ context.Context, symbol string, at int64) (client.CVDReset, error) {
	if at < 0 {
		return client.CVDReset{}, badRequest("at %d: want Unix ms, or 0 for now", at)
	}
	var out client.CVDReset
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		out = client.CVDReset{Symbol: sym.Name, CVDResetAt: sym.Flow.ResetCVD(at)}
		return nil
	})
	if err != nil {
		return client.CVDReset{}, err
	}
	s.log.Info("CVD reset", "symbol", out.Symbol, "asked", at, "at", out.CVDResetAt)
	return out, nil
}

// Bars returns the last closed bars of an interval and the open bar.
func (s *Server) Bars(_ context.Context, symbol string, q client.BarsQuery) (client.Bars, error) {
	if q.Limit < 0 {
		return client.Bars{}, badRequest("limit %d: want 1 or more", q.Limit)
	}
	var (
		iv      time.Duration
		bars    []flow.Bar
		cur     flow.Bar
		haveCur bool
	)
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		f := sym.Flow
		have := f.BarIntervals()
		d, err := pickDuration("interval", q.Interval, have, have[0])
		if err != nil {
			return err
		}
		if q.Limit > f.Config().BarHistory {
			return badRequest("limit %d: at most %d bars are kept", q.Limit, f.Config().BarHistory)
		}
		iv = d
		bars = f.Bars(d, cmpOr(q.Limit, DefaultBarsLimit))
		cur, haveCur = f.CurrentBar(d)
		return nil
	})
	if err != nil {
		return client.Bars{}, err
	}
	out := client.Bars{Symbol: strings.ToUpper(symbol), Interval: client.FormatInterval(iv), Bars: make([]client.Bar, len(bars))}
	for i := range bars {
		out.Bars[i] = client.FromBar(&bars[i], q.Footprint)
	}
	if haveCur {
		b := client.FromBar(&cur, q.Footprint)
		out.Current = &b
	}
	return out, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Profile returns the volume profile of the bars starting in [From, To),
// or the session profile when both are zero. With no volume there it
// returns an empty profile.
func (s *Server) Profile(_ context.Context, symbol string, q client.ProfileQuery) (client.Profile, error) {
	if q.From < 0 || q.To < 0 || (q.To != 0 && q.To <= q.From) {
		return client.Profile{}, badRequest("from %d, to %d: want 0 <= from < to (Unix ms; to 0: open)", q.From, q.To)
	}
	var p flow.Profile
	var ok bool
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		if q.From == 0 && q.To == 0 {
			p, ok = sym.Flow.SessionProfile()
		} else {
			p, ok = sym.Flow.Profile(q.From, q.To)
		}
		return nil
	})
	if err != nil {
		return client.Profile{}, err
	}
	if !ok {
		p = flow.Profile{From: q.From, To: q.To}
	}
	return client.FromProfile(strings.ToUpper(symbol), &p), nil
}

// LargeTrades returns the most recent large trades, oldest first.
func (s *Server) LargeTrades(_ context.Context, symbol string, q client.LargeTradesQuery) (client.LargeTrades, error) {
	if q.Limit < 0 || q.Limit > MaxLargeLimit {
		return client.LargeTrades{}, badRequest("limit %d: want 1 to %d", q.Limit, MaxLargeLimit)
	}
	var (
		lts      []flow.LargeTrade
		th       flow.LargeThreshold
		notional fixed.Dec
	)
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		lts = sym.Flow.LargeTrades(cmpOr(q.Limit, DefaultLargeLimit), nil)
		th, notional = sym.Flow.LargeThreshold(), sym.Flow.Config().LargeNotional
		return nil
	})
	if err != nil {
		return client.LargeTrades{}, err
	}
	out := client.LargeTrades{Symbol: strings.ToUpper(symbol), Threshold: client.FromThreshold(th, notional),
		Trades: make([]client.LargeTrade, len(lts))}
	for i := range lts {
		out.Trades[i] = client.FromLarge(&lts[i])
	}
	return out, nil
}

// Trades returns recent trades matching q, oldest first.
func (s *Server) Trades(_ context.Context, symbol string, q client.TradesQuery) (client.Trades, error) {
	fq := flow.TradeQuery{From: q.From, To: q.To, Limit: cmpOr(q.Limit, DefaultTradesLimit)}
	if q.Limit < 0 || q.Limit > MaxTradesLimit {
		return client.Trades{}, badRequest("limit %d: want 1 to %d", q.Limit, MaxTradesLimit)
	}
	if q.From < 0 || q.To < 0 || (q.To != 0 && q.To <= q.From) {
		return client.Trades{}, badRequest("from %d, to %d: want 0 <= from < to (Unix ms; to 0: open)", q.From, q.To)
	}
	for _, p := range []struct {
		name string
		v    client.Decimal
		dst  *fixed.Dec
	}{{"min_qty", q.MinQty, &fq.MinQty}, {"min_notional", q.MinNotional, &fq.MinNotional}} {
		if p.v == "" {
			continue
		}
		d, err := fixed.ParseString(string(p.v))
		if err != nil || d < 0 {
			return client.Trades{}, badRequest("%s %q: want a non-negative decimal with at most 8 decimals", p.name, p.v)
		}
		*p.dst = d
	}
	switch strings.ToLower(q.Side) {
	case "":
	case "buy":
		fq.Side = flow.TakerBuys
	case "sell":
		fq.Side = flow.TakerSells
	default:
		return client.Trades{}, badRequest("side %q: want buy or sell (the taker's side)", q.Side)
	}
	var trades []market.Trade
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		trades = sym.Flow.Trades(fq, nil)
		return nil
	})
	if err != nil {
		return client.Trades{}, err
	}
	out := client.Trades{Symbol: strings.ToUpper(symbol), Count: len(trades), Trades: make([]client.Trade, len(trades))}
	for i := range trades {
		out.Trades[i] = client.FromTrade(&trades[i])
		out.Trades[i].Symbol = ""
	}
	return out, nil
}

// Book returns the top of the local book and the imbalance within bands.
func (s *Server) Book(_ context.Context, symbol string, q client.BookQuery) (client.Book, error) {
	depth := cmpOr(q.Depth, DefaultBookDepth)
	if depth < 1 || depth > MaxBookDepth {
		return client.Book{}, badRequest("depth %d: want 1 to %d", q.Depth, MaxBookDepth)
	}
	bands := q.Bands
	if len(bands) == 0 {
		bands = DefaultBands
	}
	if len(bands) > MaxBands {
		return client.Book{}, badRequest("bands: %d given, at most %d", len(bands), MaxBands)
	}
	for _, b := range bands {
		if b < 1 || b > MaxBandBPS {
			return client.Book{}, badRequest("bands: %d: want 1 to %d basis points", b, MaxBandBPS)
		}
	}
	var out client.Book
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		out = client.FromBook(sym.Name, sym.Book(), sym.Synced(), depth, bands)
		if d := sym.Depth; d != nil && sym.Synced() {
			m := d.Metrics()
			bm := client.FromBookMetrics(&m, d.Walls(market.Buy, nil), d.Walls(market.Sell, nil),
				d.WallsNotReady(market.Buy), d.WallsNotReady(market.Sell))
			out.Metrics = &bm
		}
		return nil
	})
	return out, err
}

// BookHistory returns frames of the top of the book: those with
// From <= time <= To (To 0: open), or with At the one in force then. At
// most MaxHistoryFrames, the newest, are returned.
func (s *Server) BookHistory(_ context.Context, symbol string, q client.BookHistoryQuery) (client.BookHistory, error) {
	switch {
	case q.From < 0 || q.To < 0 || q.At < 0:
		return client.BookHistory{}, badRequest("from %d, to %d, at %d: want Unix ms, not negative", q.From, q.To, q.At)
	case q.At != 0 && (q.From != 0 || q.To != 0):
		return client.BookHistory{}, badRequest("at %d with from/to: give either at (one frame) or from/to (a range)", q.At)
	case q.To != 0 && q.To < q.From:
		return client.BookHistory{}, badRequest("from %d, to %d: want from <= to (Unix ms; to 0: open)", q.From, q.To)
	case q.Depth < 0 || q.Depth > MaxBookDepth:
		return client.BookHistory{}, badRequest("depth %d: want 1 to %d", q.Depth, MaxBookDepth)
	}
	depth := q.Depth
	if depth == 0 {
		depth = MaxBookDepth // all the history keeps
	}
	from, to := q.From, q.To
	if to == 0 {
		to = math.MaxInt64
	}
	out := client.BookHistory{Symbol: strings.ToUpper(symbol), From: q.From, To: q.To, Frames: []client.BookFrame{}}
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		h := sym.History
		if h == nil {
			return errBookHistoryOff
		}
		if q.At != 0 {
			if f, ok := h.At(q.At); ok {
				out.Frames = append(out.Frames, client.FromFrame(&f, depth))
			}
			return nil
		}
		// Count first, so only the frames answered are converted.
		n := 0
		for range h.Range(from, to) {
			n++
		}
		skip := max(0, n-MaxHistoryFrames)
		out.Truncated = skip > 0
		for f := range h.Range(from, to) {
			if skip > 0 {
				skip--
				continue
			}
			out.Frames = append(out.Frames, client.FromFrame(&f, depth))
		}
		return nil
	})
	if err != nil {
		return client.BookHistory{}, err
	}
	for _, f := range out.Frames {
		out.Depth = max(out.Depth, len(f.Bids), len(f.Asks))
	}
	return out, nil
}

// Walls returns the current walls of both sides and the walls that ended
// at or after q.Since (all kept when 0).
func (s *Server) Walls(_ context.Context, symbol string, q client.WallsQuery) (client.Walls, error) {
	if q.Since < 0 {
		return client.Walls{}, badRequest("since %d: want Unix ms, not negative", q.Since)
	}
	var (
		out        client.Walls
		bids, asks []depthflow.Wall
		ended      []depthflow.EndedWall
	)
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		d := sym.Depth
		if d == nil {
			return errBookMetricsOff
		}
		bidWhy, askWhy := d.WallsNotReady(market.Buy), d.WallsNotReady(market.Sell)
		out = client.Walls{Symbol: sym.Name, Time: d.Metrics().Time, BidReady: bidWhy == 0, AskReady: askWhy == 0,
			BidReason: bidWhy.String(), AskReason: askWhy.String(), Since: q.Since}
		bids, asks, ended = d.Walls(market.Buy, nil), d.Walls(market.Sell, nil), d.EndedWalls(q.Since, nil)
		return nil
	})
	if err != nil {
		return client.Walls{}, err
	}
	out.Bids, out.Asks, out.Ended = make([]client.Wall, len(bids)), make([]client.Wall, len(asks)), make([]client.EndedWall, len(ended))
	for i := range bids {
		out.Bids[i] = client.FromWall(&bids[i])
	}
	for i := range asks {
		out.Asks[i] = client.FromWall(&asks[i])
	}
	for i := range ended {
		out.Ended[i] = client.FromEndedWall(&ended[i])
	}
	return out, nil
}

// Liquidity returns the liquidity windows (q.Window: one of them).
func (s *Server) Liquidity(_ context.Context, symbol string, q client.LiquidityQuery) (client.Liquidity, error) {
	var wins []depthflow.LiquidityStats
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		d := sym.Depth
		if d == nil {
			return errBookMetricsOff
		}
		wins = d.LiquidityWindows()
		if q.Window == "" {
			return nil
		}
		have := make([]time.Duration, len(wins))
		for i, w := range wins {
			have[i] = w.Window
		}
		w, err := pickDuration("window", q.Window, have, 0)
		if err != nil {
			return err
		}
		wins = slices.DeleteFunc(wins, func(l depthflow.LiquidityStats) bool { return l.Window != w })
		return nil
	})
	if err != nil {
		return client.Liquidity{}, err
	}
	out := client.Liquidity{Symbol: strings.ToUpper(symbol), Windows: make([]client.LiquidityWindow, len(wins))}
	for i := range wins {
		out.Windows[i] = client.FromLiquidity(&wins[i])
	}
	return out, nil
}

// Signals returns the signals of the last closed bars (q.Limit: how many
// bars; default all kept) and, with book metrics on, the book signals
// (absorption, walls pulled or filled) kept since the first of those bars
// started (all kept without a limit), oldest first.
func (s *Server) Signals(_ context.Context, symbol string, q client.SignalsQuery) (client.Signals, error) {
	if q.Limit < 0 {
		return client.Signals{}, badRequest("limit %d: want 1 or more", q.Limit)
	}
	var (
		iv      time.Duration
		bars    []flow.Bar
		bookSig []depthflow.Signal
		depthOn bool
	)
	err := s.svc.ViewSymbol(symbol, func(sym *engine.Symbol) error {
		have := sym.Flow.BarIntervals()
		d, err := pickDuration("interval", q.Interval, have, have[0])
		if err != nil {
			return err
		}
		iv, bars = d, sym.Flow.Bars(d, q.Limit)
		if sym.Depth != nil {
			depthOn = true
			since := int64(math.MinInt64)
			if q.Limit > 0 && len(bars) > 0 {
				since = bars[0].Start
			}
			bookSig = sym.Depth.Signals(since, nil)
		}
		return nil
	})
	if err != nil {
		return client.Signals{}, err
	}
	out := client.Signals{Symbol: strings.ToUpper(symbol), Interval: client.FormatInterval(iv), Bars: len(bars),
		BookMetrics: depthOn, Signals: []client.Signal{}}
	for i := range bars {
		out.Signals = append(out.Signals, client.BarSignals(&bars[i])...)
	}
	for i := range bookSig {
		if client.IsBookSignal(bookSig[i].Kind) {
			out.Signals = append(out.Signals, client.FromBookSignal(&bookSig[i]))
		}
	}
	// Stable: bar signals keep their order within a bar.
	slices.SortStableFunc(out.Signals, func(a, b client.Signal) int { return cmp.Compare(a.Time, b.Time) })
	if len(out.Signals) == 0 {
		out.Note = fmt.Sprintf("no signal on the %d closed bars examined: signals are delta divergences against the previous bars, exhausted bar extremes and stacked imbalances, judged when a bar closes", len(bars))
		if depthOn {
			out.Note += ", and absorption and walls pulled or filled, judged at every book update"
		}
	}
	return out, nil
}

// --- HTTP handlers: parse, call the query method, answer. ---

func intParam(v url.Values, name string) (int64, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badRequest("%s %q: want an integer", name, s)
	}
	return n, nil
}

// params reads integer parameters into dst in order, stopping at the
// first error.
func params(v url.Values, names []string, dst ...*int64) error {
	for i, n := range names {
		x, err := intParam(v, n)
		if err != nil {
			return err
		}
		*dst[i] = x
	}
	return nil
}

// checkParams refuses parameters the route does not take, so a typo
// ("windw=5m") is an error, not a silent default.
func checkParams(v url.Values, allowed ...string) error {
	for k := range v {
		if !slices.Contains(allowed, k) {
			return badRequest("unknown parameter %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func (s *Server) answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) symbols(w http.ResponseWriter, r *http.Request) {
	out, err := s.Symbols(r.Context())
	s.answer(w, out, err)
}

// symbolAdder and symbolRemover are the service methods adding and
// removing symbols at run time, used when the service has them.
type symbolAdder interface {
	AddSymbol(ctx context.Context, symbol string) error
}

type symbolRemover interface {
	RemoveSymbol(ctx context.Context, symbol string) error
}

func (s *Server) addSymbol(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Symbol string `json:"symbol"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, s.log, err)
			return
		}
		writeError(w, s.log, badRequest("body: want {\"symbol\":\"ETHUSDT\"}: %v", err))
		return
	}
	sym := strings.ToUpper(strings.TrimSpace(body.Symbol))
	if err := service.ValidSymbol(sym); err != nil {
		writeError(w, s.log, badRequest("%v", err))
		return
	}
	a, ok := any(s.svc).(symbolAdder)
	if !ok {
		writeError(w, s.log, &Error{Code: "not_implemented", Message: "adding symbols at run time is not supported by this service yet: restart with --symbols"})
		return
	}
	if err := a.AddSymbol(r.Context(), sym); err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"symbol": sym, "status": "added"})
}

func (s *Server) removeSymbol(w http.ResponseWriter, r *http.Request) {
	sym := strings.ToUpper(r.PathValue("symbol"))
	if !slices.Contains(s.svc.Symbols(), sym) {
		writeError(w, s.log, fmt.Errorf("%w: %s", service.ErrUnknownSymbol, sym))
		return
	}
	rm, ok := any(s.svc).(symbolRemover)
	if !ok {
		writeError(w, s.log, &Error{Code: "not_implemented", Message: "removing symbols at run time is not supported by this service yet: restart with --symbols"})
		return
	}
	if err := rm.RemoveSymbol(r.Context(), sym); err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"symbol": sym, "status": "removed"})
}

// resetCVD answers POST /v1/symbols/{symbol}/cvd/reset with an optional
// body {"at": unix_ms}.
func (s *Server) resetCVD(w http.ResponseWriter, r *http.Request) {
	var body struct {
		At int64 `json:"at"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, s.log, err)
			return
		}
		writeError(w, s.log, badRequest("body: want nothing or {\"at\":1723161905800} (Unix ms): %v", err))
		return
	}
	out, err := s.ResetCVD(r.Context(), r.PathValue("symbol"), body.At)
	s.answer(w, out, err)
}

func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := checkParams(v, "window"); err != nil {
		writeError(w, s.log, err)
		return
	}
	out, err := s.Metrics(r.Context(), r.PathValue("symbol"), client.MetricsQuery{Window: v.Get("window")})
	s.answer(w, out, err)
}

func (s *Server) getBars(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var limit int64
	err := checkParams(v, "interval", "limit", "footprint")
	if err == nil {
		err = params(v, []string{"limit"}, &limit)
	}
	fp := false
	if err == nil && v.Get("footprint") != "" {
		fp, err = strconv.ParseBool(v.Get("footprint"))
		if err != nil {
			err = badRequest("footprint %q: want true or false", v.Get("footprint"))
		}
	}
	if err == nil && (limit < 0 || limit > 1<<20) {
		err = badRequest("limit %d: want 1 or more", limit)
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	out, err := s.Bars(r.Context(), r.PathValue("symbol"), client.BarsQuery{Interval: v.Get("interval"), Limit: int(limit), Footprint: fp})
	s.answer(w, out, err)
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var q client.ProfileQuery
	err := checkParams(v, "from", "to")
	if err == nil {
		err = params(v, []string{"from", "to"}, &q.From, &q.To)
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	out, err := s.Profile(r.Context(), r.PathValue("symbol"), q)
	s.answer(w, out, err)
}

func (s *Server) getLargeTrades(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var limit int64
	err := checkParams(v, "limit")
	if err == nil {
		err = params(v, []string{"limit"}, &limit)
	}
	if err == nil && (limit < 0 || limit > MaxLargeLimit) {
		err = badRequest("limit %d: want 1 to %d", limit, MaxLargeLimit)
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	out, err := s.LargeTrades(r.Context(), r.PathValue("symbol"), client.LargeTradesQuery{Limit: int(limit)})
	s.answer(w, out, err)
}

func (s *Server) getTrades(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := client.TradesQuery{MinQty: client.Decimal(v.Get("min_qty")), MinNotional: client.Decimal(v.Get("min_notional")),
		Side: v.Get("side")}
	var limit int64
	err := checkParams(v, "from", "to", "min_qty", "min_notional", "side", "limit")
	if err == nil {
		err = params(v, []string{"from", "to", "limit"}, &q.From, &q.To, &limit)
	}
	if err == nil && (limit < 0 || limit > MaxTradesLimit) {
		err = badRequest("limit %d: want 1 to %d", limit, MaxTradesLimit)
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	q.Limit = int(limit)
	out, err := s.Trades(r.Context(), r.PathValue("symbol"), q)
	s.answer(w, out, err)
}

func (s *Server) getBook(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var depth int64
	var q client.BookQuery
	err := checkParams(v, "depth", "bands")
	if err == nil {
		err = params(v, []string{"depth"}, &depth)
	}
	if err == nil && (depth < 0 || depth > MaxBookDepth) {
		err = badRequest("depth %d: want 1 to %d", depth, MaxBookDepth)
	}
	if err == nil && v.Get("bands") != "" {
		for _, part := range strings.Split(v.Get("bands"), ",") {
			n, perr := strconv.Atoi(strings.TrimSpace(part))
			if perr != nil {
				err = badRequest("bands %q: want comma-separated basis points, e.g. 10,25,50,100", v.Get("bands"))
				break
			}
			q.Bands = append(q.Bands, n)
		}
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	q.Depth = int(depth)
	out, err := s.Book(r.Context(), r.PathValue("symbol"), q)
	s.answer(w, out, err)
}

func (s *Server) getSignals(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var limit int64
	err := checkParams(v, "interval", "limit")
	if err == nil {
		err = params(v, []string{"limit"}, &limit)
	}
	if err == nil && (limit < 0 || limit > 1<<20) {
		err = badRequest("limit %d: want 1 or more", limit)
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	out, err := s.Signals(r.Context(), r.PathValue("symbol"), client.SignalsQuery{Interval: v.Get("interval"), Limit: int(limit)})
	s.answer(w, out, err)
}

func (s *Server) getBookHistory(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var q client.BookHistoryQuery
	var depth int64
	err := checkParams(v, "from", "to", "at", "depth")
	if err == nil {
		err = params(v, []string{"from", "to", "at", "depth"}, &q.From, &q.To, &q.At, &depth)
	}
	if err == nil && (depth < 0 || depth > MaxBookDepth) {
		err = badRequest("depth %d: want 1 to %d", depth, MaxBookDepth)
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	q.Depth = int(depth)
	out, err := s.BookHistory(r.Context(), r.PathValue("symbol"), q)
	s.answer(w, out, err)
}

func (s *Server) getWalls(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var q client.WallsQuery
	err := checkParams(v, "since")
	if err == nil {
		err = params(v, []string{"since"}, &q.Since)
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	out, err := s.Walls(r.Context(), r.PathValue("symbol"), q)
	s.answer(w, out, err)
}

func (s *Server) getLiquidity(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := checkParams(v, "window"); err != nil {
		writeError(w, s.log, err)
		return
	}
	out, err := s.Liquidity(r.Context(), r.PathValue("symbol"), client.LiquidityQuery{Window: v.Get("window")})
	s.answer(w, out, err)
}
