package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestDetect checks format detection on every bundled file and on the same
// bytes with and without gzip.
func TestDetect(t *testing.T) {
	files := map[string]Format{
		"cryptofeed-spot-10sym-20210405.txt.gz": FormatCryptofeed,
		"cryptofeed-usdm-5sym-20210405.txt.gz":  FormatCryptofeed,
		"hft-spot-btcusdt-20240808.txt.gz":      FormatHFT,
		"hft-spot-btcusdt-20240809.txt.gz":      FormatHFT,
		"hft-spot-ethusdt-20240808.txt.gz":      FormatHFT,
		"hft-spot-ethusdt-20240809.txt.gz":      FormatHFT,
		"hft-usdm-btcusdt-20240718.txt.gz":      FormatHFT,
		"hft-usdm-btcusdt-20240719.txt.gz":      FormatHFT,
		"hft-usdm-btcusdt-20240808.txt.gz":      FormatHFT,
		"hft-usdm-ethusdt-20240808.txt.gz":      FormatHFT,
		visionFile:                              FormatVisionCSV,
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "SOURCES.md" {
			continue
		}
		want, ok := files[e.Name()]
		if !ok {
			t.Errorf("bundled file %s has no expected format here", e.Name())
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			raw, err := os.ReadFile(dataPath(e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			plain := raw
			if strings.HasSuffix(e.Name(), ".gz") {
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				plain, _ = io.ReadAll(io.LimitReader(zr, 1<<16))
			}
			plain = headLines(plain, 30)
			for _, in := range [][]byte{plain, gzipBytes(t, plain)} {
				got, err := detectBytes(in)
				if err != nil || got != want {
					t.Errorf("detected %v, %v; want %v", got, err, want)
				}
			}
		})
	}
	capFile, _, _, _ := smallCapture(t, 100, 4096)
	for name, in := range map[string][]byte{"Capture": capFile, "GzippedCapture": gzipBytes(t, capFile)} {
		if got, err := detectBytes(in); err != nil || got != FormatCapture {
			t.Errorf("%s: detected %v, %v", name, got, err)
		}
	}
	tests := []struct {
		name, in, err string
	}{
		{"Empty", "", "empty file"},
		{"Zip", "PK\x03\x04\x14\x00", "zip archive"},
		{"Unknown", "<html>", "unknown format"},
		{"DigitsOnly", "12345", "unknown format"},
		{"BadGzip", "\x1f\x8b\x00\x00", "gzip header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.in), "x", OpenOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

// detectBytes opens b with detection and reports the reader's format.
func detectBytes(b []byte) (Format, error) {
	r, err := NewReader(bytes.NewReader(b), "BTCUSDT-aggTrades-x.csv", OpenOptions{})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	switch r.(type) {
	case *blockReader:
		return FormatCapture, nil
	case *hftReader:
		return FormatHFT, nil
	case *cryptofeedReader:
		return FormatCryptofeed, nil
	case *visionReader:
		return FormatVisionCSV, nil
	}
	return 0, errors.New("unknown reader type")
}

// TestFormatNames checks ParseFormat reads what String writes.
func TestFormatNames(t *testing.T) {
	for _, f := range []Format{FormatAuto, FormatCapture, FormatHFT, FormatCryptofeed, FormatVisionCSV} {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f.String(), got, err)
		}
	}
	if _, err := ParseFormat("parquet"); err == nil {
		t.Error("parquet accepted")
	}
}

// TestTornGzip cuts a real gzip file: the intact lines come out, then
// ErrTorn.
func TestTornGzip(t *testing.T) {
	raw, err := os.ReadFile(dataPath("cryptofeed-usdm-5sym-20210405.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	all := MustReadAll(t, dataPath("cryptofeed-usdm-5sym-20210405.txt.gz"), OpenOptions{})
	r, err := NewReader(bytes.NewReader(raw[:len(raw)/2]), "half.gz", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, lineErrs, err := ReadAll(t, r)
	if !errors.Is(err, ErrTorn) || len(lineErrs) > 0 || len(got) < len(all)/3 {
		t.Fatalf("%d records, %v, end %v", len(got), lineErrs, err)
	}
	// The last record may be a line cut short by the torn stream only if it
	// still parses: every returned record must match the original exactly.
	equalRecords(t, got, all[:len(got)])
	if _, err2 := r.Next(); !errors.Is(err2, ErrTorn) {
		t.Errorf("not sticky: %v", err2)
	}
}

// TestCloseNewReader checks that closing a Reader from NewReader leaves the
// caller's reader open while Open's Reader closes its file.
func TestCloseNewReader(t *testing.T) {
	f, err := os.Open(dataPath(visionFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f, f.Name(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, total := r.(ProgressReporter).Progress(); total != 432997 {
		t.Errorf("total %d, want the file size", total)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Errorf("file closed by Reader.Close: %v", err)
	}
}
