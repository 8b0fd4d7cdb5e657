package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is a recording format.
type Format uint8

// Formats. The zero value asks Open to detect the format.
const (
	FormatAuto       Format = iota // detect from the first bytes
	FormatCapture                  // the project's own block format (orderflow record)
	FormatHFT                      // hftbacktest collector lines: "<local_ns> <json>"
	FormatCryptofeed               // cryptofeed 2021 recorder lines
	FormatVisionCSV                // data.binance.vision aggTrades CSV
)

// String names the format as ParseFormat reads it.
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatCapture:
		return "capture"
	case FormatHFT:
		return "hft"
	case FormatCryptofeed:
		return "cryptofeed"
	case FormatVisionCSV:
		return "csv"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// ParseFormat reads a format name: auto, capture (or ofcap), hft (or
// hftbacktest), cryptofeed, csv (or vision).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return FormatAuto, nil
	case "capture", "ofcap":
		return FormatCapture, nil
	case "hft", "hftbacktest":
		return FormatHFT, nil
	case "cryptofeed":
		return FormatCryptofeed, nil
	case "csv", "vision":
		return FormatVisionCSV, nil
	}
	return 0, fmt.Errorf("capture: unknown format %q (want auto, capture, hft, cryptofeed or csv)", s)
}

// DefaultMaxLineSize is the longest text line read when OpenOptions leaves
// MaxLineSize zero. A 1000-level snapshot line is about 100 KB and a spot
// 5000-level one about 300 KB, so this leaves a wide margin while still
// bounding memory on a corrupt file without newlines.
const DefaultMaxLineSize = 16 << 20

// OpenOptions tunes Open and NewReader. The zero value detects everything.
type OpenOptions struct {
	// Format forces a format; zero (FormatAuto) detects it from the first
	// bytes.
	Format Format
	// Symbol names the symbol of a CSV file when its name does not
	// ("BTCUSDT"); it overrides the name. Other formats ignore it.
	Symbol string
	// MaxLineSize bounds a text line; zero means DefaultMaxLineSize.
	MaxLineSize int
}

// Open opens a recording file: gzip is undone transparently (by its magic
// bytes) and the format is detected unless opts.Format says it. Close the
// Reader to close the file. The Reader also implements ProgressReporter and
// StatsReporter.
func Open(path string, opts OpenOptions) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: open: %w", err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	r, err := newReader(f, f, size, path, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// NewReader reads a recording from r, as Open does for a file; name is used
// in error messages and, for CSV, to find the symbol. Closing the Reader does
// not close r.
func NewReader(r io.Reader, name string, opts OpenOptions) (Reader, error) {
	var size int64
	switch s := r.(type) {
	case interface{ Stat() (os.FileInfo, error) }:
		if fi, err := s.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	case interface{ Size() int64 }: // bytes.Reader, strings.Reader, io.SectionReader
		size = s.Size()
	}
	return newReader(r, nil, size, name, opts)
}

var gzipMagic = []byte{0x1f, 0x8b}

func newReader(r io.Reader, closer io.Closer, size int64, name string, opts OpenOptions) (Reader, error) {
	src := &source{name: name, total: size, closer: closer}
	src.counter = countingReader{r: r}
	raw := bufio.NewReaderSize(&src.counter, 64<<10)
	head, _ := raw.Peek(2)
	var body io.Reader = raw
	if bytes.Equal(head, gzipMagic) {
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, fmt.Errorf("capture: %s: gzip header: %w", name, err)
		}
		src.gz = zr
		body = zr
	}
	src.br = bufio.NewReaderSize(body, 64<<10)

	format := opts.Format
	if format == FormatAuto {
		var err error
		if format, err = detect(src.br, name); err != nil {
			src.Close()
			return nil, err
		}
	}
	maxLine := opts.MaxLineSize
	if maxLine <= 0 {
		maxLine = DefaultMaxLineSize
	}
	switch format {
	case FormatCapture:
		return newBlockReader(src), nil
	case FormatHFT:
		return newHFTReader(src, maxLine), nil
	case FormatCryptofeed:
		return newCryptofeedReader(src, maxLine), nil
	case FormatVisionCSV:
		vr, err := newVisionReader(src, maxLine, opts.Symbol)
		if err != nil {
			src.Close()
			return nil, err
		}
		return vr, nil
	}
	src.Close()
	return nil, fmt.Errorf("capture: %s: unknown format %v", name, format)
}

// detect tells the format from the first bytes of the uncompressed stream.
func detect(br *bufio.Reader, name string) (Format, error) {
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		if len(head) == 0 {
			return 0, fmt.Errorf("capture: %s: read first bytes: %w", name, err)
		}
	}
	switch {
	case len(head) == 0:
		return 0, fmt.Errorf("capture: %s: empty file, no format to detect", name)
	case bytes.HasPrefix(head, fileMagic[:]):
		return FormatCapture, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return 0, fmt.Errorf("capture: %s: a zip archive: unzip it first (data.binance.vision ships .zip)", name)
	case bytes.HasPrefix(head, []byte("configuration: ")),
		bytes.HasPrefix(head, []byte("wss://")), bytes.HasPrefix(head, []byte("ws://")),
		bytes.HasPrefix(head, []byte("https://")), bytes.HasPrefix(head, []byte("http://")):
		return FormatCryptofeed, nil
	case bytes.HasPrefix(head, []byte("agg_trade_id,")):
		return FormatVisionCSV, nil
	}
	// "<digits>" then ' ' (hft), '.' or ':' (cryptofeed), ',' (CSV).
	i := 0
	for i < len(head) && head[i] >= '0' && head[i] <= '9' {
		i++
	}
	if i > 0 && i < len(head) {
		switch head[i] {
		case ' ':
			return FormatHFT, nil
		case '.', ':':
			return FormatCryptofeed, nil
		case ',':
			return FormatVisionCSV, nil
		}
	}
	return 0, fmt.Errorf("capture: %s: unknown format (first bytes %q)", name, head[:min(len(head), 32)])
}

// countingReader counts the bytes read from the underlying file, for
// Progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// source is the byte stream under every reader: the file, its byte counter,
// the gzip layer if any, and a buffered reader over the uncompressed bytes.
type source struct {
	name    string
	counter countingReader
	total   int64
	gz      *gzip.Reader
	br      *bufio.Reader
	closer  io.Closer
	closed  bool
}

func (s *source) Progress() (done, total int64) { return s.counter.n, s.total }

// Close closes the gzip layer and the file (when Open opened it).
func (s *source) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.gz != nil {
		err = s.gz.Close()
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("capture: close %s: %w", s.name, err)
	}
	return nil
}

// readErr turns an error from the uncompressed stream into the reader's
// error: a truncated or corrupt gzip stream is a torn tail.
func (s *source) readErr(err error, off int64) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || isFlateCorrupt(err) {
		return fmt.Errorf("capture: %s: %w at uncompressed offset %d (file offset about %d): %w", s.name, ErrTorn, off, s.counter.n, err)
	}
	return fmt.Errorf("capture: read %s at uncompressed offset %d: %w", s.name, off, err)
}

// baseName is the file name without directories, for symbol detection.
func baseName(name string) string { return filepath.Base(name) }
