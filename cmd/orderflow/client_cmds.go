package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderflow/orderflow/client"
)

// The client commands read a running service (orderflow run or demo)
// through its HTTP API: human tables by default, --json for scripts.

func init() {
	register(command{name: "status", summary: "show a running service's state, streams and symbols (HTTP API client)", run: runStatus})
	register(command{name: "metrics", summary: "show a symbol's order flow: totals and rolling windows (HTTP API client)", run: runMetrics})
	register(command{name: "trades", summary: "list recent trades, filtered by size or side (HTTP API client)", run: runTrades})
	register(command{name: "book", summary: "show the top of a symbol's order book and its imbalance (HTTP API client)", run: runBook})
	register(command{name: "watch", summary: "live terminal view of trades, bars and the book (HTTP API client, SSE)", run: runWatch})
}

// apiFlags are the flags every client command takes.
type apiFlags struct {
	url   string
	token string
	json  bool
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "api", client.DefaultURL, "URL of the orderflow HTTP API")
	fs.StringVar(&a.token, "token", "", "bearer token of the API")
	fs.BoolVar(&a.json, "json", false, "print JSON instead of a table")
}

func (a *apiFlags) client() (*client.Client, error) {
	c, err := client.New(a.url, client.Options{Token: a.token})
	if err != nil {
		return nil, fmt.Errorf("%w: --api: %v", errUsage, err)
	}
	return c, nil
}

// symbolClient is the API's client and the symbol to ask about: the one
// given, upper-cased, or else the service's first.
func (a *apiFlags) symbolClient(ctx context.Context, symbol string) (*client.Client, string, error) {
	c, err := a.client()
	if err != nil {
		return nil, "", err
	}
	symbol, err = pickSymbol(ctx, c, symbol)
	return c, symbol, err
}

// parseClientFlags parses and takes the symbol from the first positional
// argument, or --symbol, or the service's only symbol.
func parseClientFlags(env *environ, fs *flag.FlagSet, args []string, symbol *string) error {
	// Allow "orderflow metrics BTCUSDT --window 5m": flags after the symbol.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		*symbol = args[0]
		args = args[1:]
	}
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 || (fs.NArg() == 1 && *symbol != "") {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if fs.NArg() == 1 {
		*symbol = fs.Arg(0)
	}
	return nil
}

// pickSymbol returns symbol, or the service's first symbol when empty.
func pickSymbol(ctx context.Context, c *client.Client, symbol string) (string, error) {
	if symbol != "" {
		return strings.ToUpper(symbol), nil
	}
	s, err := c.Symbols(ctx)
	if err != nil {
		return "", err
	}
	if len(s.Symbols) == 0 {
		return "", errors.New("the service streams no symbol")
	}
	return s.Symbols[0].Symbol, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func timeMS(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05.000")
}

func runStatus(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "status", "[--api URL] [--token T] [--json]")
	var af apiFlags
	af.register(fs)
	var none string
	if err := parseClientFlags(env, fs, args, &none); err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if af.json {
		return printJSON(env.stdout, st)
	}
	fmt.Fprintf(env.stdout, "service %s, market %s, started %s\n\n", st.State, st.Market, st.Started)
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SYMBOL\tBOOK\tUPDATE ID\tTRADES\tLAST TRADE\tRESYNCS")
	for _, s := range st.Symbols {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\n", s.Symbol, s.BookState, s.UpdateID, s.Trades, timeMS(s.LastTime), s.Resyncs)
	}
	fmt.Fprintln(tw, "\nSTREAM\tSTATE\tRECONNECTS\tFRAMES\tBYTES\t")
	for _, s := range st.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t\n", s.Name, s.State, s.Reconnects, s.Frames, s.Bytes)
	}
	return tw.Flush()
}

func runMetrics(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "metrics", "[SYMBOL] [--window 5m] [--api URL] [--token T] [--json]")
	var af apiFlags
	af.register(fs)
	window := fs.String("window", "", "one rolling window (1m, 5m, 15m, 1h); default all")
	var symbol string
	if err := parseClientFlags(env, fs, args, &symbol); err != nil {
		return err
	}
	c, symbol, err := af.symbolClient(ctx, symbol)
	if err != nil {
		return err
	}
	m, err := c.Metrics(ctx, symbol, client.MetricsQuery{Window: *window})
	if err != nil {
		return err
	}
	if af.json {
		return printJSON(env.stdout, m)
	}
	t := m.Totals
	fmt.Fprintf(env.stdout, "%s (%s) at %s  book synced: %v\n", m.Symbol, m.Market, timeMS(m.Time), m.BookSynced)
	fmt.Fprintf(env.stdout, "since start: %d trades, volume %s (buy %s, sell %s), delta %s, CVD %s, VWAP %s, last %s\n\n",
		t.Trades, t.Volume, t.BuyVolume, t.SellVolume, t.Delta, t.CVD, t.VWAP, t.Last)
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "WINDOW\tREADY\tTRADES\tVOLUME\tBUY\tSELL\tDELTA\tBUY RATIO\tVWAP\tTRADES/S\t")
	for _, w := range m.Windows {
		fmt.Fprintf(tw, "%s\t%v\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", w.Window, w.Ready, w.Trades, w.Volume, w.BuyVolume,
			w.SellVolume, w.Delta, w.BuyRatio, w.VWAP, w.TradesPerSecond)
	}
	return tw.Flush()
}

func runTrades(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "trades", "[--symbol S] [--min-notional 100000] [--min-qty Q] [--side buy|sell] [--limit N] [--api URL] [--json]")
	var af apiFlags
	af.register(fs)
	var symbol string
	fs.StringVar(&symbol, "symbol", "", "symbol (default: the service's first)")
	minNotional := fs.String("min-notional", "", "keep trades with price*qty at least this (quote units)")
	minQty := fs.String("min-qty", "", "keep trades with qty at least this")
	side := fs.String("side", "", "buy (taker buys) or sell")
	limit := fs.Int("limit", 20, "most recent matches")
	if err := parseClientFlags(env, fs, args, &symbol); err != nil {
		return err
	}
	c, symbol, err := af.symbolClient(ctx, symbol)
	if err != nil {
		return err
	}
	tr, err := c.Trades(ctx, symbol, client.TradesQuery{MinNotional: client.Decimal(*minNotional),
		MinQty: client.Decimal(*minQty), Side: *side, Limit: *limit})
	if err != nil {
		return err
	}
	if af.json {
		return printJSON(env.stdout, tr)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TIME (UTC)\tID\tSIDE\tPRICE\tQTY\tNOTIONAL\t")
	for _, x := range tr.Trades {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", timeMS(x.Time), x.ID, strings.ToUpper(x.Side), x.Price, x.Qty, x.Notional)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%d trades of %s\n", tr.Count, tr.Symbol)
	return nil
}

func runBook(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "book", "[SYMBOL] [--depth N] [--bands 10,25,50,100] [--api URL] [--json]")
	var af apiFlags
	af.register(fs)
	var symbol string
	fs.StringVar(&symbol, "symbol", "", "symbol (default: the service's first)")
	depth := fs.Int("depth", 10, "levels per side")
	bandsFlag := fs.String("bands", "", "imbalance bands in basis points, e.g. 10,25,50,100")
	if err := parseClientFlags(env, fs, args, &symbol); err != nil {
		return err
	}
	var bands []int
	if *bandsFlag != "" {
		for _, p := range strings.Split(*bandsFlag, ",") {
			var n int
			if _, err := fmt.Sscanf(strings.TrimSpace(p), "%d", &n); err != nil {
				return fmt.Errorf("%w: --bands %q: want comma-separated integers", errUsage, *bandsFlag)
			}
			bands = append(bands, n)
		}
	}
	c, symbol, err := af.symbolClient(ctx, symbol)
	if err != nil {
		return err
	}
	b, err := c.Book(ctx, symbol, client.BookQuery{Depth: *depth, Bands: bands})
	if err != nil {
		return err
	}
	if af.json {
		return printJSON(env.stdout, b)
	}
	printBook(env.stdout, &b)
	return nil
}

func printBook(w io.Writer, b *client.Book) {
	fmt.Fprintf(w, "%s book at update %d (synced %v): spread %s, mid %s, microprice %s\n", b.Symbol, b.UpdateID, b.Synced,
		b.Spread, b.Mid, b.Microprice)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BID QTY\tBID\tASK\tASK QTY\t")
	for i := 0; i < max(len(b.Bids), len(b.Asks)); i++ {
		var bp, bq, ap, aq client.Decimal
		if i < len(b.Bids) {
			bp, bq = b.Bids[i].Price, b.Bids[i].Qty
		}
		if i < len(b.Asks) {
			ap, aq = b.Asks[i].Price, b.Asks[i].Qty
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", bq, bp, ap, aq)
	}
	fmt.Fprintln(tw, "\nBAND (BPS)\tBID QTY\tASK QTY\tIMBALANCE\t")
	for _, x := range b.Bands {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t\n", x.BPS, x.BidQty, x.AskQty, x.Imbalance)
	}
	_ = tw.Flush()
}
