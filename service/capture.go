package service

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/market"
)

// Capture defaults.
const (
	// DefaultCaptureFileBytes rotates a capture file at 256 MiB (some
	// hours of one busy symbol's streams, compressed).
	DefaultCaptureFileBytes = 256 << 20
	// DefaultCaptureFileAge rotates a capture file after an hour.
	DefaultCaptureFileAge = time.Hour
	// DefaultCaptureQueue bounds the records waiting for the capture
	// writer: some seconds of a busy symbol set.
	DefaultCaptureQueue = 16384
)

// CaptureConfig turns on the capture of everything a run feeds its engine,
// in the capture format (package capture), so that `orderflow replay` of
// the files reproduces the run's metrics. The zero value means off.
type CaptureConfig struct {
	// Dir, if set, receives one file set per run:
	// <Dir>/run-<start UTC>-<NNNN>.ofcap, NNNN counting rotations from
	// 0001. It is created if missing; New fails if it cannot be.
	Dir string
	// MaxFileBytes starts the next file once the current one has this many
	// bytes on disk. Default DefaultCaptureFileBytes.
	MaxFileBytes int64
	// MaxFileAge starts the next file once the current one is this old.
	// Default DefaultCaptureFileAge.
	MaxFileAge time.Duration
	// Queue bounds the records waiting for the writer goroutine; the
	// receive path never waits for the disk: a record that finds the queue
	// full is dropped and counted (CaptureStatus.Dropped). Default
	// DefaultCaptureQueue.
	Queue int
}

func (c *CaptureConfig) withDefaults() (CaptureConfig, error) {
	d := *c
	if d.Dir == "" {
		return d, nil
	}
	if d.MaxFileBytes <= 0 {
		d.MaxFileBytes = DefaultCaptureFileBytes
	}
	if d.MaxFileAge <= 0 {
		d.MaxFileAge = DefaultCaptureFileAge
	}
	if d.Queue <= 0 {
		d.Queue = DefaultCaptureQueue
	}
	if err := checkCaptureDir(d.Dir); err != nil {
		return d, err
	}
	return d, nil
}

// checkCaptureDir creates dir if missing and checks that a file can be
// created in it, so a wrong --capture fails before anything starts.
func checkCaptureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("service: capture directory %q cannot be created: %w", dir, unwrapPath(err))
	}
	f, err := os.CreateTemp(dir, ".orderflow-capture-check-*")
	if err != nil {
		return fmt.Errorf("service: capture directory %q is not writable: %w", dir, unwrapPath(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// unwrapPath drops an *os.PathError's path (the message names it already).
func unwrapPath(err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// CaptureStatus reports a run's capture. Nothing the run received goes
// unaccounted: every record is written, dropped (queue full) or lost
// (capture stopped by a write error).
type CaptureStatus struct {
	// Active is true while records are written; false once a write error
	// stopped the capture (the service keeps running).
	Active bool   `json:"active"`
	Dir    string `json:"dir"`
	// File is the file being written ("" once stopped).
	File string `json:"file,omitempty"`
	// Files counts the files of this run (rotations + 1).
	Files int64 `json:"files"`
	// Records counts records written to the files (in blocks handed to
	// the operating system).
	Records int64 `json:"records"`
	// Bytes counts bytes written to the files, headers included.
	Bytes int64 `json:"bytes"`
	// Dropped counts records not written because the writer's queue was
	// full (the disk could not keep up).
	Dropped int64 `json:"dropped"`
	// Lost counts records not written because the capture had stopped
	// after a write error, including the records of the block that failed.
	Lost int64 `json:"lost"`
	// Errors counts write errors (each one stops the capture; at most one
	// per run).
	Errors int64 `json:"errors"`
	// Error is the write error that stopped the capture.
	Error string `json:"error,omitempty"`
}

// capItem is one record on its way to the writer goroutine.
type capItem struct {
	kind   capture.RecordKind
	local  int64
	symbol string
	buf    *[]byte // from capturer.pool
}

// heldKey names a stream aggTrade held by the sequencer.
type heldKey struct {
	symbol string
	id     int64
}

// capturer writes a run's input to its capture files. The hooks run with
// the run's data lock held, in the order the engine sees its input, and
// only copy and queue; one writer goroutine, owned by the run and waited
// for at Stop, compresses, writes and rotates.
type capturer struct {
	cfg    CaptureConfig
	log    *slog.Logger
	market market.Kind
	notify func() // announces a status change (Service.Changes)
	base   string // <Dir>/run-<start>
	q      chan capItem
	quit   chan struct{} // closed by stop: drain q and close the file
	done   chan struct{} // closed when the writer goroutine has ended
	closed atomic.Bool
	pool   sync.Pool

	// Under the run's data lock.
	held  map[heldKey][]capItem // stream trades the sequencer holds, by id
	heldN int
	last  int64 // the last local time given: files stay in time order

	// The writer goroutine's own.
	w         *capture.Writer
	path      string
	seq       int
	opened    time.Time
	unflushed int64 // records in the writer's current block
	doneBytes int64 // bytes of the files already closed

	// Read by Status.
	active                               atomic.Bool
	files, records, bytes, dropped, lost atomic.Int64
	errs                                 atomic.Int64
	mu                                   sync.Mutex
	curFile, errMsg                      string
}

// newCapturer opens the run's first capture file.
func newCapturer(cfg CaptureConfig, kind market.Kind, log *slog.Logger, start time.Time, notify func()) (*capturer, error) {
	c := &capturer{cfg: cfg, log: log, market: kind, notify: notify,
		base: filepath.Join(cfg.Dir, "run-"+start.UTC().Format("20060102T150405.000Z")),
		q:    make(chan capItem, cfg.Queue), quit: make(chan struct{}), done: make(chan struct{}),
		held: map[heldKey][]capItem{}}
	// Two runs started within the same millisecond (a quick Restart) get
	// sets of their own: capture.Create would append to the other's file.
	for i, base := 2, c.base; fileExists(c.base + "-0001.ofcap"); i++ {
		c.base = fmt.Sprintf("%s-%d", base, i)
	}
	c.pool.New = func() any { b := make([]byte, 0, 1024); return &b }
	if err := c.open(); err != nil {
		return nil, err
	}
	c.active.Store(true)
	log.Info("Capturing the run's input", "file", c.path)
	return c, nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// open starts the next file of the set.
func (c *capturer) open() error {
	c.seq++
	path := fmt.Sprintf("%s-%04d.ofcap", c.base, c.seq)
	w, err := capture.Create(path, capture.WriterOptions{FlushInterval: -1, Logger: c.log})
	if err != nil {
		return err // "capture: create: open <path>: ..." names the file
	}
	c.w, c.path, c.opened, c.unflushed = w, path, time.Now(), 0
	c.files.Add(1)
	c.mu.Lock()
	c.curFile = path
	c.mu.Unlock()
	return nil
}

// start runs the writer goroutine.
func (c *capturer) start() {
	go func() {
		defer close(c.done)
		defer func() {
			if p := recover(); p != nil {
				c.fail(fmt.Errorf("capture writer panicked: %v", p))
			}
		}()
		c.loop()
	}()
}

func (c *capturer) loop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case it := <-c.q:
			c.write(it)
		case <-t.C:
			// A quiet stream's last records reach the file within a second.
			c.flush()
			if c.w != nil && time.Since(c.opened) >= c.cfg.MaxFileAge {
				c.rotate()
			}
		case <-c.quit:
			for {
				select {
				case it := <-c.q:
					c.write(it)
					continue
				default:
				}
				break
			}
			if c.w != nil && c.closeFile() {
				c.log.Info("capture closed", "file", c.path, "records", c.records.Load(), "bytes", c.bytes.Load())
			}
			return
		}
	}
}

// write hands one record to the file, rotating by size first.
func (c *capturer) write(it capItem) {
	defer c.put(it.buf)
	if c.w == nil {
		c.lost.Add(1)
		return
	}
	if c.w.Stats().Bytes >= c.cfg.MaxFileBytes {
		c.rotate()
		if c.w == nil {
			c.lost.Add(1)
			return
		}
	}
	rec := capture.Record{Kind: it.kind, Local: it.local, Symbol: it.symbol, Market: c.market, MarketKnown: true, Data: *it.buf}
	blocks := c.w.Stats().Blocks
	if err := c.w.Write(&rec); err != nil {
		c.lost.Add(1)
		c.fail(err)
		return
	}
	c.unflushed++
	if c.w.Stats().Blocks != blocks { // the block was cut, this record in it
		c.records.Add(c.unflushed)
		c.unflushed = 0
	}
	c.account()
}

func (c *capturer) flush() {
	if c.w == nil || c.unflushed == 0 {
		return
	}
	if err := c.w.Flush(); err != nil {
		c.fail(err)
		return
	}
	c.records.Add(c.unflushed)
	c.unflushed = 0
	c.account()
}

// closeFile flushes, syncs and closes the current file; false if that
// failed (the capture is then stopped).
func (c *capturer) closeFile() bool {
	err := c.w.Close()
	c.account()
	if err != nil {
		c.fail(err)
		return false
	}
	c.records.Add(c.unflushed)
	c.unflushed = 0
	c.doneBytes += c.w.Stats().Bytes
	c.w = nil
	c.mu.Lock()
	c.curFile = ""
	c.mu.Unlock()
	return true
}

// rotate closes the current file (synced) and opens the next.
func (c *capturer) rotate() {
	path, n := c.path, c.w.Stats().Bytes
	if !c.closeFile() {
		return
	}
	c.log.Info("capture file rotated", "file", path, "bytes", n)
	if err := c.open(); err != nil {
		c.fail(err)
	}
}

// account publishes the bytes written so far.
func (c *capturer) account() {
	if c.w != nil {
		c.bytes.Store(c.doneBytes + c.w.Stats().Bytes)
	}
}

// fail stops the capture after a write error: logged once, the records of
// the failed block counted as lost, the file closed; the service goes on.
func (c *capturer) fail(err error) {
	if !c.active.Swap(false) {
		return
	}
	c.errs.Add(1)
	c.lost.Add(c.unflushed)
	c.unflushed = 0
	path := c.path
	if c.w != nil {
		c.account()
		c.w.Close() // the sticky error again; the file is closed anyway
		c.w = nil
	}
	c.mu.Lock()
	c.errMsg, c.curFile = err.Error(), ""
	c.mu.Unlock()
	c.log.Error("capture stopped: writing the capture file failed; the service keeps running without capture until the next start",
		"file", path, "err", err, "records_written", c.records.Load(), "records_lost", c.lost.Load())
	if c.notify != nil {
		c.notify()
	}
}

// stop ends the writer goroutine once it has written what is queued, and
// waits for it until deadline. It reports whether the goroutine ended.
func (c *capturer) stop(deadline time.Time) bool {
	if c.closed.Swap(true) {
		return true
	}
	close(c.quit)
	t := time.NewTimer(max(time.Until(deadline), 0))
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

func (c *capturer) status() *CaptureStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &CaptureStatus{Active: c.active.Load(), Dir: c.cfg.Dir, File: c.curFile, Files: c.files.Load(),
		Records: c.records.Load(), Bytes: c.bytes.Load(), Dropped: c.dropped.Load(), Lost: c.lost.Load(),
		Errors: c.errs.Load(), Error: c.errMsg}
}

func (c *capturer) get() *[]byte { return c.pool.Get().(*[]byte) }

func (c *capturer) put(b *[]byte) {
	if cap(*b) <= 64<<10 { // keep big snapshot buffers out of the pool
		*b = (*b)[:0]
		c.pool.Put(b)
	}
}

// item copies data into a record for the queue. Data lock held.
func (c *capturer) item(kind capture.RecordKind, symbol string, local int64, data []byte) capItem {
	b := c.get()
	*b = append((*b)[:0], data...)
	return capItem{kind: kind, local: local, symbol: symbol, buf: b}
}

// push queues a record without waiting. Data lock held. Local times
// never go back in queue order (a held trade's frame takes the time it is
// written at if later records came meanwhile): replay merges a run's
// files by local time, so the order written is the order replayed.
func (c *capturer) push(it capItem) {
	it.local = max(it.local, c.last)
	c.last = it.local
	if c.closed.Load() || !c.active.Load() {
		c.lost.Add(1)
		c.put(it.buf)
		return
	}
	select {
	case c.q <- it:
	default:
		c.put(it.buf)
		if n := c.dropped.Add(1); n == 1 || n%10000 == 0 {
			c.log.Warn("capture queue full: records dropped (the disk is not keeping up)", "dropped", n, "queue", cap(c.q))
		}
	}
}

// stopped says whether records would only be counted as lost (checked
// before copying). Data lock held.
func (c *capturer) stopped() bool {
	if c.closed.Load() || !c.active.Load() {
		c.lost.Add(1)
		return true
	}
	return false
}

// The run's hooks, called with the data lock held in the order the engine
// sees its input, so that a replay of the files feeds a fresh engine the
// same sequence. A stream aggTrade the sequencer holds (while a REST fill
// runs) is written when it is applied, after the REST trades before it.

// captureFrame records a frame as received; m is its decoded message when
// decoded.
func (r *run) captureFrame(frame []byte, recv time.Time, m *binance.Message, decoded bool) {
	c := r.cap
	if c == nil || c.stopped() {
		return
	}
	it := c.item(capture.Frame, "", recv.UnixNano(), frame)
	if decoded && m.Kind == binance.KindAggTrade {
		if sq := r.seqs[m.Trade.Symbol]; sq != nil && m.Trade.ID > sq.last {
			// Held until the sequencer applies it (captureApplied), which
			// may be at once.
			k := heldKey{m.Trade.Symbol, m.Trade.ID}
			c.held[k] = append(c.held[k], it)
			c.heldN++
			return
		}
	}
	c.push(it)
}

// captureApplied writes the frame of a stream trade as the sequencer
// applies it (or skips it as a duplicate).
func (r *run) captureApplied(t *market.Trade) {
	c := r.cap
	if c == nil || c.heldN == 0 {
		return
	}
	k := heldKey{t.Symbol, t.ID}
	its, ok := c.held[k]
	if !ok {
		return
	}
	delete(c.held, k)
	c.heldN -= len(its)
	for _, it := range its {
		c.push(it)
	}
}

// captureForget writes the held frames of a symbol being removed.
func (r *run) captureForget(sym string) {
	c := r.cap
	if c == nil || c.heldN == 0 {
		return
	}
	for k, its := range c.held {
		if k.symbol == sym {
			delete(c.held, k)
			c.heldN -= len(its)
			for _, it := range its {
				c.push(it)
			}
		}
	}
}

// captureTrades records the REST trades a fill is about to apply.
func (r *run) captureTrades(sym string, trades []market.Trade) {
	c := r.cap
	if c == nil || len(trades) == 0 || c.stopped() {
		return
	}
	b := c.get()
	*b = binance.AppendAggTradesREST((*b)[:0], trades, r.s.cfg.Market)
	c.push(capItem{kind: capture.Trades, local: time.Now().UnixNano(), symbol: sym, buf: b})
}

// captureReset records that a symbol's book starts over.
func (r *run) captureReset(sym string) {
	c := r.cap
	if c == nil || c.stopped() {
		return
	}
	c.push(c.item(capture.BookReset, sym, time.Now().UnixNano(), nil))
}

// captureSnapshot records a depth snapshot about to be applied.
func (r *run) captureSnapshot(snap *market.DepthSnapshot) {
	c := r.cap
	if c == nil || c.stopped() {
		return
	}
	b := c.get()
	*b = binance.AppendDepthSnapshot((*b)[:0], snap, r.s.cfg.Market)
	c.push(capItem{kind: capture.Snapshot, local: time.Now().UnixNano(), symbol: snap.Symbol, buf: b})
}

// startCapture opens the run's first capture file and starts its writer,
// when capture is on.
func (r *run) startCapture() error {
	cfg := r.s.cfg.Capture
	if cfg.Dir == "" {
		return nil
	}
	c, err := newCapturer(cfg, r.s.cfg.Market, r.log, r.started, r.s.changes.notify)
	if err != nil {
		return err
	}
	r.cap = c
	c.start()
	return nil
}

// stopCapture writes what is queued, closes the file and waits for the
// writer until deadline; false if it did not end in time. Called once
// every other task of the run has ended (or the budget is spent).
func (r *run) stopCapture(deadline time.Time) bool {
	if r.cap == nil {
		return true
	}
	return r.cap.stop(deadline)
}
