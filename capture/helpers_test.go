package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

const dataDir = "../testdata/binance"

// dataPath returns the path of a bundled recording.
func dataPath(name string) string { return filepath.Join(dataDir, name) }

// own copies a record so that it outlives the next call of Next.
func own(r *Record) Record {
	c := *r
	c.Data = bytes.Clone(r.Data)
	return c
}

// MustOpen opens a recording or fails the test.
func MustOpen(tb testing.TB, path string, opts OpenOptions) Reader {
	tb.Helper()
	r, err := Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// ReadAll reads records until an error other than a *LineError and returns
// copies of them, the line errors, and the final error (io.EOF at a clean
// end).
func ReadAll(tb testing.TB, r Reader) (recs []Record, lineErrs []error, final error) {
	tb.Helper()
	for {
		rec, err := r.Next()
		if err != nil {
			var le *LineError
			if errors.As(err, &le) {
				lineErrs = append(lineErrs, err)
				continue
			}
			return recs, lineErrs, err
		}
		recs = append(recs, own(rec))
	}
}

// MustReadAll reads a whole file that must end cleanly with no bad lines.
func MustReadAll(tb testing.TB, path string, opts OpenOptions) []Record {
	tb.Helper()
	r := MustOpen(tb, path, opts)
	recs, lineErrs, err := ReadAll(tb, r)
	if len(lineErrs) > 0 {
		tb.Fatalf("%s: %d bad lines, first: %v", path, len(lineErrs), lineErrs[0])
	}
	if !errors.Is(err, io.EOF) {
		tb.Fatalf("%s: ended with %v, want io.EOF", path, err)
	}
	return recs
}

// gunzip returns the uncompressed bytes of a bundled .gz file.
func gunzip(tb testing.TB, path string) []byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// headLines returns the first n lines of b, each with its newline.
func headLines(b []byte, n int) []byte {
	end := 0
	for i := 0; i < n && end < len(b); i++ {
		j := bytes.IndexByte(b[end:], '\n')
		if j < 0 {
			return b
		}
		end += j + 1
	}
	return b[:end]
}

// jsonInt finds `"key":<digits>` in a JSON body and returns the number; it
// is an independent, naive reading for assertions.
func jsonInt(tb testing.TB, js []byte, key string) int64 {
	tb.Helper()
	k := []byte(`"` + key + `":`)
	i := bytes.Index(js, k)
	if i < 0 {
		tb.Fatalf("no %s in %.120s", k, js)
	}
	var v int64
	for _, c := range js[i+len(k):] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
	}
	return v
}

// equalRecords compares two record lists field by field.
func equalRecords(tb testing.TB, got, want []Record) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || g.Local != w.Local || g.Symbol != w.Symbol || g.Market != w.Market ||
			g.MarketKnown != w.MarketKnown || !bytes.Equal(g.Data, w.Data) {
			tb.Fatalf("record %d differs:\n got  %v %d %q %v/%v %.100s\n want %v %d %q %v/%v %.100s", i,
				g.Kind, g.Local, g.Symbol, g.Market, g.MarketKnown, g.Data,
				w.Kind, w.Local, w.Symbol, w.Market, w.MarketKnown, w.Data)
		}
	}
}

// MustReadAllBytes reads a recording held in memory; it must end cleanly.
func MustReadAllBytes(tb testing.TB, b []byte, opts OpenOptions) []Record {
	tb.Helper()
	r, err := NewReader(bytes.NewReader(b), "memory", opts)
	if err != nil {
		tb.Fatal(err)
	}
	recs, lineErrs, err := ReadAll(tb, r)
	if len(lineErrs) > 0 || !errors.Is(err, io.EOF) {
		tb.Fatalf("read: %d bad lines (%v), end %v", len(lineErrs), lineErrs, err)
	}
	return recs
}

// bufioSize returns a bufio.Reader of the given buffer size over b.
func bufioSize(b []byte, size int) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(b), size)
}
