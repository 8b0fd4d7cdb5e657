// Package replay runs recorded Binance data through the same pipeline live
// data runs through (decode, book, metrics) as fast as it can, and writes
// the replay output contract: JSON lines of bars and one summary per
// symbol. The contract is used by users' scripts; keep it stable.
package replay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// Options configures a replay.
type Options struct {
	// Files are read together, merged by local receive time, so contiguous
	// files of one symbol and files of several symbols both replay in order.
	Files []string
	// Market fixes the market when MarketKnown; otherwise it is detected
	// from the frames (pu means USD-M).
	Market      market.Kind
	MarketKnown bool
	// Bars, if non-zero, emits one bar line per symbol and interval of
	// trade time.
	Bars time.Duration
	// Footprint adds each bar's footprint and POC to bar lines.
	Footprint bool
	// PriceGroup groups footprint prices (0: the raw trade price).
	PriceGroup fixed.Dec
	// Depth is how many book levels per side the summary shows (default 20).
	Depth int
	// Symbol names the symbol of a CSV whose file name does not.
	Symbol string
	// Progress, if set, is called now and then with bytes done and total.
	Progress func(done, total int64)
	// Logger receives rejected input; nil discards.
	Logger *slog.Logger
}

// Result is what a replay saw, for the human summary and the tests.
type Result struct {
	Records int64
	Stats   engine.Stats
	Engine  *engine.Engine
}

// Run replays opts.Files and writes JSON lines to w.
func Run(ctx context.Context, opts Options, w io.Writer) (*Result, error) {
	if len(opts.Files) == 0 {
		return nil, errors.New("replay: no files")
	}
	if opts.Depth <= 0 {
		opts.Depth = 20
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	readers := make([]capture.Reader, 0, len(opts.Files))
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	for _, f := range opts.Files {
		r, err := capture.Open(f, capture.OpenOptions{Symbol: opts.Symbol})
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		readers = append(readers, r)
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	out := &writer{w: bw, footprint: opts.Footprint}
	fcfg := flow.Config{PriceGroup: opts.PriceGroup}
	if opts.Bars > 0 {
		fcfg.BarIntervals = []time.Duration{opts.Bars}
	}
	ecfg := engine.Config{Market: opts.Market, MarketKnown: opts.MarketKnown, Flow: fcfg, Logger: log}
	if opts.Bars > 0 {
		ecfg.OnBarClose = func(s *engine.Symbol, iv time.Duration, b *flow.Bar) {
			if iv == opts.Bars {
				out.bar(s.Name, b)
			}
		}
	}
	eng := engine.New(ecfg)
	res := &Result{Engine: eng}

	m := newMerger(readers, opts.Files)
	var trades []market.Trade
	var lastProgress time.Time
	var logged int
	for {
		rec, err := m.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// A torn tail or a corrupt line: everything before it has
			// been replayed; report it and stop rather than guess.
			return res, fmt.Errorf("replay: %w", err)
		}
		res.Records++
		if res.Records&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if opts.Progress != nil && time.Since(lastProgress) > 100*time.Millisecond {
				lastProgress = time.Now()
				opts.Progress(m.progress())
			}
		}
		var herr error
		switch rec.Kind {
		case capture.Snapshot:
			herr = eng.HandleSnapshot(rec.Symbol, rec.Data, rec.Market, rec.MarketKnown)
		case capture.Trades:
			herr = handleRESTTrades(eng, rec, &trades)
		case capture.BookReset:
			// The service replaced the connection and started the book
			// over, as Binance's procedure asks; do the same here so the
			// next snapshot is loaded, not ignored as unexpected.
			if s := eng.Symbol(rec.Symbol); s != nil && s.Sync != nil {
				s.Sync.Reset()
			}
		default:
			_, herr = eng.HandleFrame(rec.Data, rec.Market, rec.MarketKnown)
		}
		if herr != nil && logged < 20 {
			logged++
			log.Warn("replay: input rejected", "file", m.file(), "err", herr)
		}
		if out.err != nil {
			return res, fmt.Errorf("replay: write: %w", out.err)
		}
	}
	if opts.Progress != nil {
		opts.Progress(m.progress())
	}
	for _, s := range eng.Symbols() {
		s.Flow.Flush()
	}
	for _, s := range eng.Symbols() {
		out.summary(s, opts.Depth)
	}
	res.Stats = eng.Stats()
	if out.err != nil {
		return res, fmt.Errorf("replay: write: %w", out.err)
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("replay: write: %w", err)
	}
	return res, nil
}

// handleRESTTrades applies a REST aggTrades body the service used (a
// warm start or a gap fill, in the order the service applied it). Ids the
// stream already gave are refused as duplicates by the metrics, as in the
// service, where its sequencer skips them.
func handleRESTTrades(eng *engine.Engine, rec *capture.Record, buf *[]market.Trade) error {
	ts, err := binance.DecodeAggTrades(rec.Data, rec.Symbol, (*buf)[:0])
	*buf = ts
	if err != nil {
		return fmt.Errorf("REST aggTrades %s: %w", rec.Symbol, err)
	}
	if len(ts) > 0 && eng.Symbol(rec.Symbol) == nil {
		eng.AddSymbol(rec.Symbol, rec.Market, rec.MarketKnown)
	}
	var errs []error
	for i := range ts {
		if err := eng.HandleTrade(&ts[i]); err != nil && len(errs) < 3 {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// merger yields the records of several readers in local-time order. Each
// reader's current record stays valid because only the reader whose record
// was consumed is advanced.
type merger struct {
	rs    []capture.Reader
	names []string
	head  []*capture.Record
	done  []bool
	last  int
	init  bool
}

func newMerger(rs []capture.Reader, names []string) *merger {
	return &merger{rs: rs, names: names, head: make([]*capture.Record, len(rs)), done: make([]bool, len(rs)), last: -1}
}

func (m *merger) fill(i int) error {
	rec, err := m.rs[i].Next()
	if err == io.EOF {
		m.done[i], m.head[i] = true, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", m.names[i], err)
	}
	m.head[i] = rec
	return nil
}

func (m *merger) next() (*capture.Record, error) {
	if !m.init {
		m.init = true
		for i := range m.rs {
			if err := m.fill(i); err != nil {
				return nil, err
			}
		}
	} else if m.last >= 0 {
		if err := m.fill(m.last); err != nil {
			return nil, err
		}
	}
	best := -1
	for i, h := range m.head {
		if h != nil && (best < 0 || h.Local < m.head[best].Local) {
			best = i
		}
	}
	m.last = best
	if best < 0 {
		return nil, io.EOF
	}
	return m.head[best], nil
}

func (m *merger) file() string {
	if m.last >= 0 {
		return m.names[m.last]
	}
	return ""
}

func (m *merger) progress() (done, total int64) {
	for _, r := range m.rs {
		if p, ok := r.(interface{ Progress() (int64, int64) }); ok {
			d, t := p.Progress()
			done += d
			total += t
		}
	}
	return done, total
}
