package capture

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/orderflow/orderflow/market"
)

// Writer defaults.
const (
	// DefaultBlockSize is the uncompressed size at which a block is cut: big
	// enough to compress well (1 MiB blocks save only 1% more), small
	// enough that a crash loses little.
	DefaultBlockSize = 256 << 10
	// DefaultFlushInterval bounds how long a record waits in memory before
	// its block is cut (checked on Write).
	DefaultFlushInterval = time.Second
	// DefaultLevel is the DEFLATE level. On the bundled hft BTCUSDT
	// recordings level 6 makes files 20-25% smaller than level 1 (8:1
	// against the text) for about 3x the CPU: some 45 MB/s per core, far
	// above the tens of KB/s a symbol's streams produce. Level 9 saves
	// another 5% for 6x the CPU of level 6.
	DefaultLevel = 6
)

// WriterOptions tunes a Writer. The zero value means the defaults.
type WriterOptions struct {
	// FlushInterval cuts the current block, on Write, once this long has
	// passed since its first record. Zero means DefaultFlushInterval; a
	// negative value cuts by size and Flush only. A quiet stream keeps its
	// last records in memory until the next Write, Flush or Close: call
	// Flush from a timer if that matters.
	FlushInterval time.Duration
	// BlockSize is the uncompressed size that cuts a block. Zero means
	// DefaultBlockSize.
	BlockSize int
	// Level is the DEFLATE level, 1 (fastest) to 9 (smallest). Zero means
	// DefaultLevel.
	Level int
	// Logger receives the torn-tail repair notice of Create. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// WriterStats counts what a Writer has written.
type WriterStats struct {
	Records int64 // records accepted by Write
	Blocks  int64 // blocks written
	Bytes   int64 // bytes written by this Writer, headers included
}

// Writer appends records to a capture file in checksummed, compressed
// blocks. It is not safe for concurrent use and starts no goroutines.
//
// After the file fails a write (a full disk), the Writer is broken: every
// later Write, Flush and Sync returns the same error, so a recorder can stop
// recording and keep running. Create, on the next start, cuts off whatever
// part of the failed block reached the disk.
type Writer struct {
	w        io.Writer
	f        *os.File // nil for NewWriter
	name     string
	interval time.Duration
	size     int
	repaired int64

	raw   []byte
	count uint32
	first time.Time
	out   sliceWriter
	fw    *flate.Writer

	off    int64 // bytes of the file known good (file size after the last block)
	stats  WriterStats
	err    error // sticky write error
	closed bool
}

// errClosed is returned by a Writer used after Close.
var errClosed = errors.New("capture: writer is closed")

// NewWriter writes a new capture stream to w, starting with the file
// header. Close flushes but does not close w.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	cw, err := newWriter(w, nil, "stream", opts)
	if err != nil {
		return nil, err
	}
	if err := cw.writeFileHeader(); err != nil {
		return nil, err
	}
	return cw, nil
}

func newWriter(w io.Writer, f *os.File, name string, opts WriterOptions) (*Writer, error) {
	level := opts.Level
	if level == 0 {
		level = DefaultLevel
	}
	if level < flate.BestSpeed || level > flate.BestCompression {
		return nil, fmt.Errorf("capture: WriterOptions.Level %d: want 1 to 9", opts.Level)
	}
	fw, err := flate.NewWriter(nil, level)
	if err != nil {
		return nil, fmt.Errorf("capture: flate writer: %w", err)
	}
	cw := &Writer{w: w, f: f, name: name, interval: opts.FlushInterval, size: opts.BlockSize, fw: fw}
	if cw.interval == 0 {
		cw.interval = DefaultFlushInterval
	}
	if cw.size <= 0 {
		cw.size = DefaultBlockSize
	}
	cw.size = min(cw.size, maxBlockRaw)
	return cw, nil
}

func (w *Writer) writeFileHeader() error {
	var h [fileHeaderSize]byte
	copy(h[:], fileMagic[:])
	binary.LittleEndian.PutUint32(h[8:], formatVersion)
	return w.put(h[:], "write file header to")
}

// put writes b with one write call; a failure breaks the Writer.
func (w *Writer) put(b []byte, what string) error {
	n, err := w.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) { // the path is in our message already
			err = pe.Err
		}
		w.err = fmt.Errorf("capture: %s %s: %w", what, w.name, err)
		if w.f != nil && n > 0 {
			// Best effort: keep the file clean so the next Create need not
			// repair it. If this fails too, Create will.
			if w.f.Truncate(w.off) == nil {
				w.f.Seek(w.off, io.SeekStart)
			}
		}
		return w.err
	}
	w.off += int64(n)
	w.stats.Bytes += int64(n)
	return nil
}

// Write adds a record to the current block. Data is copied. It returns an
// error for a record that cannot be stored (unknown kind or market, data
// over 64 MiB) without breaking the Writer, and the sticky write error once
// the file has failed.
func (w *Writer) Write(rec *Record) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	switch {
	case rec == nil:
		return errors.New("capture: write: nil record")
	case rec.Kind > lastKind:
		return fmt.Errorf("capture: write: unknown record kind %d", rec.Kind)
	case rec.MarketKnown && rec.Market > market.USDM:
		return fmt.Errorf("capture: write: unknown market %d", rec.Market)
	case len(rec.Symbol) > 255:
		return fmt.Errorf("capture: write: symbol of %d bytes (max 255)", len(rec.Symbol))
	case len(rec.Data) > maxBlockRaw-300:
		return fmt.Errorf("capture: write: record data of %d bytes (max %d)", len(rec.Data), maxBlockRaw-300)
	}
	if len(w.raw)+len(rec.Data)+300 > maxBlockRaw {
		if err := w.cut(); err != nil {
			return err
		}
	}
	var now time.Time
	if w.interval > 0 {
		now = time.Now()
		if w.count == 0 {
			w.first = now
		}
	}
	w.raw = append(w.raw, byte(rec.Kind))
	w.raw = binary.AppendVarint(w.raw, rec.Local)
	w.raw = binary.AppendUvarint(w.raw, uint64(len(rec.Symbol)))
	w.raw = append(w.raw, rec.Symbol...)
	var mb byte
	if rec.MarketKnown {
		mb = 1 + byte(rec.Market)
	}
	w.raw = append(w.raw, mb)
	w.raw = binary.AppendUvarint(w.raw, uint64(len(rec.Data)))
	w.raw = append(w.raw, rec.Data...)
	w.count++
	w.stats.Records++
	if len(w.raw) >= w.size || (w.interval > 0 && now.Sub(w.first) >= w.interval) {
		return w.cut()
	}
	return nil
}

// cut compresses the current block and writes it.
func (w *Writer) cut() error {
	if w.err != nil {
		return w.err
	}
	if w.count == 0 {
		return nil
	}
	w.out.b = append(w.out.b[:0], make([]byte, blockHeaderSize)...)
	w.fw.Reset(&w.out)
	if _, err := w.fw.Write(w.raw); err != nil {
		return fmt.Errorf("capture: compress block: %w", err)
	}
	if err := w.fw.Close(); err != nil {
		return fmt.Errorf("capture: compress block: %w", err)
	}
	blk := w.out.b
	copy(blk, blockMagic[:])
	binary.LittleEndian.PutUint32(blk[4:], uint32(len(blk)-blockHeaderSize))
	binary.LittleEndian.PutUint32(blk[8:], uint32(len(w.raw)))
	binary.LittleEndian.PutUint32(blk[12:], w.count)
	binary.LittleEndian.PutUint32(blk[16:], blockCRC(blk[:blockHeaderSize], blk[blockHeaderSize:]))
	if err := w.put(blk, "write block to"); err != nil {
		return err
	}
	w.raw, w.count = w.raw[:0], 0
	w.stats.Blocks++
	return nil
}

// Flush cuts the current block and writes it to the file (to the operating
// system, not to the disk: see Sync).
func (w *Writer) Flush() error {
	if w.closed {
		return errClosed
	}
	return w.cut()
}

// Sync flushes and then commits the file to stable storage (fsync). It does
// nothing more than Flush for a Writer from NewWriter.
func (w *Writer) Sync() error {
	if err := w.Flush(); err != nil {
		return err
	}
	if w.f != nil {
		if err := w.f.Sync(); err != nil {
			w.err = fmt.Errorf("capture: sync %s: %w", w.name, err)
			return w.err
		}
	}
	return nil
}

// Close flushes, syncs and closes the file (a Writer from NewWriter only
// flushes). It returns the sticky write error if the file failed earlier,
// and closes the file anyway. Closing twice returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.Sync()
	w.closed = true
	if w.f != nil {
		if cerr := w.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("capture: close %s: %w", w.name, cerr)
		}
	}
	return err
}

// Stats returns what the Writer has written.
func (w *Writer) Stats() WriterStats { return w.stats }

// Repaired returns how many bytes of a torn tail Create cut off the
// existing file (0 if none).
func (w *Writer) Repaired() int64 { return w.repaired }

// Create opens path for appending records, creating it with a file header
// if it does not exist or is empty. If the existing file ends with a torn
// block (the last recorder crashed or ran out of disk mid-write), Create
// cuts the file back to its last intact block, logs it, and reports the
// bytes dropped by Repaired. It refuses a file that is not a capture file,
// or one with a corrupt block followed by intact ones (that is damage, not
// a torn write, and cutting would lose data).
func Create(path string, opts WriterOptions) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("capture: create: %w", err)
	}
	w, err := newWriter(f, f, path, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("capture: create: %w", err)
	}
	size := fi.Size()
	good, err := scanIntact(f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("capture: create %s: %w", path, err)
	}
	if good < size {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, fmt.Errorf("capture: create %s: cut torn tail at offset %d: %w", path, good, err)
		}
		w.repaired = size - good
		logger := opts.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Warn("capture: cut torn tail before appending", "path", path, "offset", good, "dropped_bytes", size-good)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("capture: create %s: seek: %w", path, err)
	}
	w.off = good
	if good == 0 {
		if err := w.writeFileHeader(); err != nil {
			f.Close()
			return nil, err
		}
	}
	return w, nil
}

// scanIntact returns the end of the last intact block of a capture file of
// the given size: 0 for an empty file or a torn file header.
func scanIntact(f *os.File, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 256<<10)
	var h [fileHeaderSize]byte
	n, err := io.ReadFull(br, h[:])
	if err != nil {
		if n < len(h) && bytes.HasPrefix(fileMagic[:], h[:min(n, 8)]) {
			return 0, nil // the header itself was torn: start over
		}
		return 0, fmt.Errorf("not a capture file: %d bytes and no capture header", size)
	}
	if err := checkFileHeader(h[:]); err != nil {
		return 0, fmt.Errorf("refusing to append: %w", err)
	}
	off := int64(fileHeaderSize)
	var hdr [blockHeaderSize]byte
	var payload []byte
	for off < size {
		if size-off >= fileHeaderSize {
			if p, err := br.Peek(fileHeaderSize); err == nil && checkFileHeader(p) == nil {
				br.Discard(fileHeaderSize)
				off += fileHeaderSize
				continue
			}
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		bh, err := parseBlockHeader(hdr[:])
		if err != nil || int64(bh.payload) > size-off-blockHeaderSize {
			break
		}
		payload = grow(payload, int(bh.payload))
		if _, err := io.ReadFull(br, payload); err != nil {
			return 0, fmt.Errorf("read block at offset %d: %w", off, err)
		}
		if blockCRC(hdr[:], payload) != bh.crc {
			break
		}
		off += blockHeaderSize + int64(bh.payload)
	}
	if off == size {
		return off, nil
	}
	// A torn write leaves less than one block and no intact block after it.
	if size-off > blockHeaderSize+maxBlockPayload {
		return 0, fmt.Errorf("refusing to append: corrupt block at offset %d with %d bytes after it (more than a torn write leaves)", off, size-off)
	}
	tail := make([]byte, size-off)
	if _, err := f.ReadAt(tail, off); err != nil {
		return 0, fmt.Errorf("read tail at offset %d: %w", off, err)
	}
	for i := 1; i+blockHeaderSize <= len(tail); i++ {
		j := bytes.Index(tail[i:], blockMagic[:])
		if j < 0 {
			break
		}
		i += j
		if i+blockHeaderSize > len(tail) {
			break
		}
		bh, err := parseBlockHeader(tail[i : i+blockHeaderSize])
		end := i + blockHeaderSize + int(bh.payload)
		if err == nil && end <= len(tail) && blockCRC(tail[i:], tail[i+blockHeaderSize:end]) == bh.crc {
			return 0, fmt.Errorf("refusing to append: corrupt block at offset %d followed by an intact block at offset %d", off, off+int64(i))
		}
	}
	return off, nil
}

// sliceWriter is an io.Writer appending to a reused slice.
type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}
