package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/feed"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/rest"
	"github.com/orderflow/orderflow/service"
	"golang.org/x/sync/errgroup"
)

func init() {
	register(command{name: "record", summary: "record raw Binance frames and depth snapshots to a capture file", run: runRecord})
}

// recorder writes frames and snapshots to one capture file. After every
// (re)connect it fetches one depth snapshot per symbol once that symbol's
// first diff has been written, as Binance's book procedure needs, so a
// replay of the file can sync the book.
type recorder struct {
	log    *slog.Logger
	kind   market.Kind
	rc     *rest.Client
	limit  int
	mu     sync.Mutex
	w      *capture.Writer
	err    error           // sticky write error: recording stopped
	want   map[string]bool // symbols whose next diff asks for a snapshot
	snapCh chan string
	frames int64
}

func (r *recorder) write(rec *capture.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if err := r.w.Write(rec); err != nil {
		r.err = err
		r.log.Error("recording stopped", "err", err)
		return
	}
	r.frames++
}

func (r *recorder) onFrame(frame []byte, recv time.Time) {
	r.write(&capture.Record{Kind: capture.Frame, Local: recv.UnixNano(), Market: r.kind, MarketKnown: true, Data: frame})
	// A depth frame names its stream first: "{"stream":"btcusdt@depth...".
	i := strings.Index(string(frame[:min(len(frame), 64)]), "@depth")
	if i < 0 {
		return
	}
	const prefix = `{"stream":"`
	if !strings.HasPrefix(string(frame), prefix) {
		return
	}
	sym := strings.ToUpper(string(frame[len(prefix):i]))
	r.mu.Lock()
	ask := r.want[sym]
	if ask {
		delete(r.want, sym)
	}
	r.mu.Unlock()
	if ask {
		select {
		case r.snapCh <- sym:
		default:
			r.log.Warn("snapshot queue full; symbol will wait for the next reconnect", "symbol", sym)
		}
	}
}

func (r *recorder) snapshots(ctx context.Context) error {
	var snap market.DepthSnapshot
	var body []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case sym := <-r.snapCh:
			if err := r.rc.DepthSnapshot(ctx, sym, r.limit, &snap); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.log.Warn("snapshot failed; will retry at the next diff", "symbol", sym, "err", err)
				r.mu.Lock()
				r.want[sym] = true
				r.mu.Unlock()
				continue
			}
			body = binance.AppendDepthSnapshot(body[:0], &snap, r.kind)
			r.write(&capture.Record{Kind: capture.Snapshot, Local: time.Now().UnixNano(), Symbol: sym, Market: r.kind, MarketKnown: true, Data: body})
			r.log.Info("snapshot recorded", "symbol", sym, "last_update_id", snap.LastUpdateID)
		}
	}
}

// flusher cuts a block every second so a quiet stream's last frames reach
// the disk (and survive a crash) without waiting for the next frame.
func (r *recorder) flusher(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		r.mu.Lock()
		if r.err == nil {
			if err := r.w.Flush(); err != nil {
				r.err = err
				r.log.Error("recording stopped", "err", err)
			}
		}
		r.mu.Unlock()
	}
}

func runRecord(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "record", "--out FILE [--symbols BTCUSDT] [--market spot|usdm] [--ws-url URL --rest-url URL] [--duration D]")
	out := fs.String("out", "", "capture file to append to (created if missing)")
	symbols := fs.String("symbols", "BTCUSDT", "comma-separated symbols")
	marketFlag := fs.String("market", "spot", "market: spot or usdm")
	wsURL := fs.String("ws-url", "", "WebSocket base URL (default: Binance live)")
	restURL := fs.String("rest-url", "", "REST base URL (default: Binance live)")
	streams := fs.String("streams", "aggTrade,depth@100ms,bookTicker", "channels to record for each symbol")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	limit := fs.Int("snapshot-limit", 1000, "depth snapshot levels")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	kind, err := market.ParseKind(*marketFlag)
	if err != nil {
		return fmt.Errorf("%w: --market: %v", errUsage, err)
	}
	var syms []string
	for _, s := range strings.Split(*symbols, ",") {
		s = strings.ToUpper(strings.TrimSpace(s))
		if err := service.ValidSymbol(s); err != nil {
			return fmt.Errorf("%w: --symbols: %v", errUsage, err)
		}
		syms = append(syms, s)
	}
	log, err := lf.logger(env.stderr)
	if err != nil {
		return err
	}
	w, err := capture.Create(*out, capture.WriterOptions{Logger: log})
	if err != nil {
		return err
	}
	rc, err := rest.New(rest.Options{BaseURL: *restURL, Market: kind, Logger: log})
	if err != nil {
		w.Close()
		return err
	}
	r := &recorder{log: log, kind: kind, rc: rc, limit: *limit, w: w, want: map[string]bool{}, snapCh: make(chan string, len(syms)+1)}
	onConnect := func(old, new feed.State) {
		if new == feed.StateConnected {
			r.mu.Lock()
			for _, s := range syms {
				r.want[s] = true
			}
			r.mu.Unlock()
		}
	}
	groups := map[string][]string{}
	for _, s := range syms {
		for _, ch := range strings.Split(*streams, ",") {
			ch = strings.TrimSpace(ch)
			groups[binance.StreamPath(kind, ch)] = append(groups[binance.StreamPath(kind, ch)], binance.StreamName(s, ch))
		}
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	g, gctx := errgroup.WithContext(ctx)
	for path, st := range groups {
		c, err := feed.NewConn(feed.Options{BaseURL: *wsURL, Market: kind, Path: path, Streams: st, Handler: r.onFrame, Logger: log, OnStatus: onConnect})
		if err != nil {
			w.Close()
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		g.Go(func() error { return c.Run(gctx) })
	}
	g.Go(func() error { return r.snapshots(gctx) })
	g.Go(func() error { return r.flusher(gctx) })
	runErr := g.Wait()
	if errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
		runErr = nil
	}
	cerr := w.Close()
	log.Info("recording closed", "file", *out, "frames", r.frames, "stats", fmt.Sprintf("%+v", w.Stats()))
	return errors.Join(runErr, r.err, cerr)
}
