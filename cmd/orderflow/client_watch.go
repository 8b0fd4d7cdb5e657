package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/orderflow/orderflow/client"
)

// watchView is the live terminal view: it folds push messages into the
// latest state and redraws in place.
type watchView struct {
	symbol  string
	trades  []client.Trade // the last few, newest last
	bar     *client.Bar
	closed  []client.Bar // the last few closed bars
	book    *client.Book
	large   []client.LargeTrade
	signals []client.Signal
	dropped int64
	n       int64
}

const watchKeep = 8

func (v *watchView) apply(ev client.Event) error {
	switch ev.Type {
	case "trade":
		var t client.Trade
		if err := json.Unmarshal(ev.Data, &t); err != nil {
			return err
		}
		v.n++
		v.trades = append(v.trades, t)
		if len(v.trades) > watchKeep {
			v.trades = v.trades[1:]
		}
	case "bar":
		var b client.Bar
		if err := json.Unmarshal(ev.Data, &b); err != nil {
			return err
		}
		if b.Closed {
			v.closed = append(v.closed, b)
			if len(v.closed) > 3 {
				v.closed = v.closed[1:]
			}
			if v.bar != nil && v.bar.Start == b.Start {
				v.bar = nil
			}
		} else {
			v.bar = &b
		}
	case "book":
		var b client.Book
		if err := json.Unmarshal(ev.Data, &b); err != nil {
			return err
		}
		v.book = &b
	case "large":
		var l client.LargeTrade
		if err := json.Unmarshal(ev.Data, &l); err != nil {
			return err
		}
		v.large = append(v.large, l)
		if len(v.large) > 5 {
			v.large = v.large[1:]
		}
	case "signal":
		var s client.Signal
		if err := json.Unmarshal(ev.Data, &s); err != nil {
			return err
		}
		v.signals = append(v.signals, s)
		if len(v.signals) > 5 {
			v.signals = v.signals[1:]
		}
	case "dropped":
		v.dropped += ev.Count
	}
	return nil
}

func barLine(b *client.Bar) string {
	return fmt.Sprintf("%s %s  O %s H %s L %s C %s  vol %s  delta %s  CVD %s  POC %s  %d trades",
		timeMS(b.Start)[11:16], map[bool]string{true: "closed", false: "open  "}[b.Closed], b.Open, b.High, b.Low, b.Close,
		b.Volume, b.Delta, b.CVD, b.POC, b.Trades)
}

// render draws the view; the caller clears the screen before it.
func (v *watchView) render() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "orderflow watch %s  %s  trades seen %d", v.symbol, time.Now().Format("15:04:05"), v.n)
	if v.dropped > 0 {
		fmt.Fprintf(&b, "  (skipped %d messages: this terminal reads too slowly)", v.dropped)
	}
	b.WriteString("\n\nBARS\n")
	for i := range v.closed {
		b.WriteString("  " + barLine(&v.closed[i]) + "\n")
	}
	if v.bar != nil {
		b.WriteString("  " + barLine(v.bar) + "\n")
	}
	if bk := v.book; bk != nil && bk.BestBid != nil && bk.BestAsk != nil {
		fmt.Fprintf(&b, "\nBOOK  bid %s x %s | ask %s x %s  spread %s  microprice %s\n", bk.BestBid.Price, bk.BestBid.Qty,
			bk.BestAsk.Price, bk.BestAsk.Qty, bk.Spread, bk.Microprice)
		for _, x := range bk.Bands {
			fmt.Fprintf(&b, "  within %3d bps: bids %s asks %s imbalance %s\n", x.BPS, x.BidQty, x.AskQty, x.Imbalance)
		}
	}
	b.WriteString("\nTRADES\n")
	for _, t := range v.trades {
		fmt.Fprintf(&b, "  %s %-4s %s @ %s\n", timeMS(t.Time)[11:], strings.ToUpper(t.Side), t.Qty, t.Price)
	}
	if len(v.large) > 0 {
		b.WriteString("\nLARGE\n")
		for _, l := range v.large {
			fmt.Fprintf(&b, "  %s %-4s %s @ %s (%s)\n", timeMS(l.Time)[11:], strings.ToUpper(l.Side), l.Qty, l.Price, l.Notional)
		}
	}
	if len(v.signals) > 0 {
		b.WriteString("\nSIGNALS\n")
		for _, s := range v.signals {
			fmt.Fprintf(&b, "  %s %s at %s\n", timeMS(s.BarStart)[11:16], s.Kind, s.Price)
		}
	}
	return b.String()
}

func runWatch(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "watch", "[SYMBOL] [--refresh 500ms] [--api URL] [--token T] [--json]")
	var af apiFlags
	af.register(fs)
	var symbol string
	fs.StringVar(&symbol, "symbol", "", "symbol (default: the service's first)")
	refresh := fs.Duration("refresh", 500*time.Millisecond, "how often the view is redrawn")
	if err := parseClientFlags(env, fs, args, &symbol); err != nil {
		return err
	}
	if *refresh <= 0 {
		return fmt.Errorf("%w: --refresh must be positive", errUsage)
	}
	c, symbol, err := af.symbolClient(ctx, symbol)
	if err != nil {
		return err
	}
	if af.json {
		// Scripts get the messages as they come, one JSON line each.
		enc := json.NewEncoder(env.stdout)
		err := c.Stream(ctx, []string{symbol}, nil, func(ev client.Event) error { return enc.Encode(ev) })
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// Redraw in place on a terminal; elsewhere print a frame per refresh.
	tty := false
	if f, ok := env.stdout.(*os.File); ok {
		tty = isTerminal(f)
	}
	v := &watchView{symbol: symbol}
	last := time.Time{}
	err = c.Stream(ctx, []string{symbol}, nil, func(ev client.Event) error {
		if err := v.apply(ev); err != nil {
			return fmt.Errorf("watch: %s message: %w", ev.Type, err)
		}
		if now := time.Now(); now.Sub(last) >= *refresh {
			last = now
			if tty {
				fmt.Fprint(env.stdout, "\x1b[H\x1b[2J") // home, clear
			} else {
				fmt.Fprintln(env.stdout, "----")
			}
			fmt.Fprint(env.stdout, v.render())
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil // Ctrl-C: a normal end
	}
	return err
}
