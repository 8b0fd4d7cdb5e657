package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/market"
)

// realFrames reads the first n frames of a bundled recording.
func realFrames(t testing.TB, n int) [][]byte {
	t.Helper()
	r, err := capture.Open(filepath.Join("..", "testdata", "binance", "hft-spot-btcusdt-20240808.txt.gz"), capture.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out [][]byte
	for len(out) < n {
		rec, err := r.Next()
		if err != nil {
			t.Fatalf("after %d frames: %v", len(out), err)
		}
		if rec.Kind == capture.Frame {
			out = append(out, bytes.Clone(rec.Data))
		}
	}
	return out
}

// errorLog counts the error records of a logger.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (h *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.msgs = append(h.msgs, r.Message)
		h.mu.Unlock()
	}
	return nil
}
func (h *errorLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorLog) WithGroup(string) slog.Handler      { return h }

func (h *errorLog) errors() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...)
}

// fullAfter passes its first writes through to a real file, then writes to
// /dev/full, whose every write the kernel answers with ENOSPC: a disk that
// fills up in the middle of a file.
type fullAfter struct {
	ok   int
	file *os.File
	full *os.File
}

func (f *fullAfter) Write(p []byte) (int, error) {
	if f.ok > 0 {
		f.ok--
		return f.file.Write(p)
	}
	return f.full.Write(p)
}

// ReadCaptureFiles returns the records of capture files, failing on a
// torn file. Exported for the external tests (capture_test.go); it exists
// in test builds only.
func ReadCaptureFiles(t testing.TB, files ...string) []capture.Record {
	t.Helper()
	var out []capture.Record
	for _, f := range files {
		r, err := capture.Open(f, capture.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				t.Fatalf("%s: %v", f, err)
			}
			c := *rec
			c.Data = bytes.Clone(rec.Data)
			out = append(out, c)
		}
		r.Close()
	}
	return out
}

func testCapturer(t *testing.T, cfg CaptureConfig, log *slog.Logger) *capturer {
	t.Helper()
	cfg.Dir = t.TempDir()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCapturer(cfg, market.Spot, log, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCaptureBlockWriteENOSPC: the disk fills in the middle of a file (the
// kernel's ENOSPC from /dev/full, after some blocks reached a real file).
// The capture stops with one error log; every record is accounted for as
// written (and readable from the file, which stays intact) or lost; later
// records are counted as lost without being queued.
func TestCaptureBlockWriteENOSPC(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("this test needs /dev/full (Linux): %v", err)
	}
	defer full.Close()
	logs := &errorLog{}
	c := testCapturer(t, CaptureConfig{Queue: 10000}, slog.New(logs))
	// Swap the first file's writer for one whose fourth write fails: the
	// header and two blocks reach the file.
	path := c.path
	if err := c.w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := capture.NewWriter(&fullAfter{ok: 3, file: f, full: full}, capture.WriterOptions{BlockSize: 16 << 10, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	c.w = w
	c.start()

	frames := realFrames(t, 2000)
	for i, fr := range frames {
		c.push(c.item(capture.Frame, "", int64(i+1), fr))
	}
	if !c.stop(time.Now().Add(10 * time.Second)) {
		t.Fatal("the capture writer did not end")
	}
	// After the stop, more records are lost, not queued.
	c.push(c.item(capture.Frame, "", 1, frames[0]))

	st := c.status()
	t.Logf("status %+v", st)
	if st.Active || st.Errors != 1 || !strings.Contains(st.Error, "no space left on device") || st.File != "" {
		t.Fatalf("status %+v: want stopped by one ENOSPC", st)
	}
	if st.Records == 0 || st.Dropped != 0 || st.Records+st.Lost != int64(len(frames))+1 {
		t.Fatalf("status %+v: %d records pushed: want written + lost = pushed, some written", st, len(frames)+1)
	}
	if errs := logs.errors(); len(errs) != 1 || !strings.HasPrefix(errs[0], "capture stopped") {
		t.Fatalf("error logs %q: want exactly one", errs)
	}
	got := ReadCaptureFiles(t, path)
	if int64(len(got)) != st.Records {
		t.Fatalf("the file holds %d records, the status counted %d written", len(got), st.Records)
	}
	for i, rec := range got {
		if !bytes.Equal(rec.Data, frames[i]) || rec.Local != int64(i+1) || !rec.MarketKnown || rec.Market != market.Spot {
			t.Fatalf("record %d differs from frame %d", i, i)
		}
	}
}

// TestCaptureQueueFullCounted: records that find the writer's queue full
// are dropped and counted, never waited for; the writer writes what was
// queued, in order, before Stop returns.
func TestCaptureQueueFullCounted(t *testing.T) {
	logs := &errorLog{}
	c := testCapturer(t, CaptureConfig{Queue: 8}, slog.New(logs))
	frames := realFrames(t, 20)
	// The writer is not running yet: the queue fills after 8.
	for i, fr := range frames {
		c.push(c.item(capture.Frame, "", int64(i+1), fr))
	}
	if st := c.status(); st.Dropped != 12 || st.Lost != 0 {
		t.Fatalf("status %+v: want 12 dropped", st)
	}
	c.start()
	if !c.stop(time.Now().Add(10 * time.Second)) {
		t.Fatal("the capture writer did not end")
	}
	st := c.status()
	if st.Records != 8 || st.Dropped != 12 || st.Errors != 0 || !st.Active || st.Files != 1 {
		t.Fatalf("status %+v: want 8 written, 12 dropped", st)
	}
	got := ReadCaptureFiles(t, c.path)
	if len(got) != 8 {
		t.Fatalf("%d records in the file, want 8", len(got))
	}
	for i, rec := range got {
		if !bytes.Equal(rec.Data, frames[i]) {
			t.Fatalf("record %d is not frame %d", i, i)
		}
	}
	if errs := logs.errors(); len(errs) != 0 {
		t.Fatalf("error logs %q", errs)
	}
}

// TestCaptureRotates: files are cut by size; local times never go back
// across them, even for a record queued with an earlier time (a held
// trade), so replay's merge by local time keeps the written order.
func TestCaptureRotates(t *testing.T) {
	c := testCapturer(t, CaptureConfig{Queue: 100000, MaxFileBytes: 16 << 10}, slog.New(slog.DiscardHandler))
	c.start()
	frames := realFrames(t, 3000)
	for i, fr := range frames {
		local := int64(i + 1)
		if i%100 == 99 {
			local = 1 // written late, after later records
		}
		c.push(c.item(capture.Frame, "", local, fr))
	}
	if !c.stop(time.Now().Add(10 * time.Second)) {
		t.Fatal("the capture writer did not end")
	}
	st := c.status()
	files, _ := filepath.Glob(filepath.Join(c.cfg.Dir, "*.ofcap"))
	if st.Files < 3 || int64(len(files)) != st.Files || st.Records != int64(len(frames)) || st.Lost != 0 || st.Dropped != 0 {
		t.Fatalf("status %+v, %d files", st, len(files))
	}
	got := ReadCaptureFiles(t, files...) // Glob sorts: the names count up
	if len(got) != len(frames) {
		t.Fatalf("%d records, want %d", len(got), len(frames))
	}
	var bytesOnDisk int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		bytesOnDisk += fi.Size()
	}
	if bytesOnDisk != st.Bytes {
		t.Fatalf("%d bytes on disk, status %d", bytesOnDisk, st.Bytes)
	}
	for i, rec := range got {
		if !bytes.Equal(rec.Data, frames[i]) {
			t.Fatalf("record %d is not frame %d", i, i)
		}
		if i > 0 && rec.Local < got[i-1].Local {
			t.Fatalf("local time goes back at record %d: %d after %d", i, rec.Local, got[i-1].Local)
		}
	}
}

// benchCapturer is a capturer on cfg (defaults filled in) and 4096 real
// frames to feed it; bytes per op are the frames' mean size.
func benchCapturer(b *testing.B, cfg CaptureConfig) (*capturer, [][]byte) {
	b.Helper()
	frames := realFrames(b, 4096)
	cfg, err := cfg.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	c, err := newCapturer(cfg, market.Spot, slog.New(slog.DiscardHandler), time.Now(), nil)
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, f := range frames {
		size += int64(len(f))
	}
	b.SetBytes(size / int64(len(frames)))
	b.ReportAllocs()
	return c, frames
}

// BenchmarkCaptureHook measures what capture adds to the receive path per
// frame: copy into a pooled buffer and queue. The queue is emptied with
// the timer stopped (BenchmarkCaptureWriter measures the writer's side).
func BenchmarkCaptureHook(b *testing.B) {
	c, frames := benchCapturer(b, CaptureConfig{Dir: b.TempDir(), Queue: 8192})
	drain := func() {
		for len(c.q) > 0 {
			c.put((<-c.q).buf)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if len(c.q) == cap(c.q) {
			b.StopTimer()
			drain()
			b.StartTimer()
		}
		c.push(c.item(capture.Frame, "", int64(i), frames[i%len(frames)]))
	}
	b.StopTimer()
	drain()
	if st := c.status(); st.Dropped != 0 {
		b.Fatalf("%d dropped", st.Dropped)
	}
	c.start()
	if !c.stop(time.Now().Add(time.Minute)) {
		b.Fatal("the capture writer did not end")
	}
}

// BenchmarkCaptureWriter measures the writer goroutine's work per record
// (compress, write, rotate checks) on real frames, without the queue: the
// rate the disk side sustains, to compare with a feed's frame rate.
func BenchmarkCaptureWriter(b *testing.B) {
	c, frames := benchCapturer(b, CaptureConfig{Dir: b.TempDir()})
	b.ResetTimer()
	for i := range b.N {
		c.write(c.item(capture.Frame, "", int64(i), frames[i%len(frames)]))
	}
	c.flush()
	b.StopTimer()
	if c.w == nil || !c.closeFile() {
		b.Fatalf("capture failed: %+v", c.status())
	}
	c.closed.Store(true)
	close(c.done)
}

// TestCaptureRunsKeepTheirOwnFiles: two runs started in the same
// millisecond (a quick Restart) write separate file sets, never one
// appended to the other's.
func TestCaptureRunsKeepTheirOwnFiles(t *testing.T) {
	cfg, err := (&CaptureConfig{Dir: t.TempDir()}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	frames := realFrames(t, 2)
	var paths []string
	for i := range 2 {
		c, err := newCapturer(cfg, market.Spot, slog.New(slog.DiscardHandler), start, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.start()
		c.push(c.item(capture.Frame, "", 1, frames[i]))
		paths = append(paths, c.path)
		if !c.stop(time.Now().Add(10 * time.Second)) {
			t.Fatal("the capture writer did not end")
		}
	}
	if paths[0] == paths[1] {
		t.Fatalf("both runs wrote %s", paths[0])
	}
	for i, p := range paths {
		got := ReadCaptureFiles(t, p)
		if len(got) != 1 || !bytes.Equal(got[0].Data, frames[i]) {
			t.Fatalf("%s: %d records, want run %d's one frame", p, len(got), i)
		}
	}
}
