package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// MustCreate creates a capture file in a test directory.
func MustCreate(tb testing.TB, path string, opts WriterOptions) *Writer {
	tb.Helper()
	w, err := Create(path, opts)
	if err != nil {
		tb.Fatalf("Create(%s): %v", path, err)
	}
	return w
}

// MustWriteAll writes records and fails the test on error.
func MustWriteAll(tb testing.TB, w *Writer, recs []Record) {
	tb.Helper()
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			tb.Fatalf("write record %d: %v", i, err)
		}
	}
}

// TestRoundTrip writes every record of real recordings through the capture
// format and reads back identical records.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name, file string
	}{
		{"HFTSpotWithSnapshot", "hft-spot-btcusdt-20240808.txt.gz"},
		{"CryptofeedUSDM", "cryptofeed-usdm-5sym-20210405.txt.gz"},
		{"VisionCSV", visionFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := MustReadAll(t, dataPath(tt.file), OpenOptions{})
			path := filepath.Join(t.TempDir(), "rt.ofcap")
			w := MustCreate(t, path, WriterOptions{FlushInterval: -1})
			MustWriteAll(t, w, want)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			ws := w.Stats()
			fi, _ := os.Stat(path)
			if ws.Records != int64(len(want)) || ws.Bytes != fi.Size() || ws.Blocks < 2 {
				t.Errorf("writer stats %+v for %d records and %d bytes", ws, len(want), fi.Size())
			}
			orig, _ := os.Stat(dataPath(tt.file))
			t.Logf("%d records: %d bytes as capture, %d as bundled", len(want), fi.Size(), orig.Size())

			r := MustOpen(t, path, OpenOptions{})
			got, lineErrs, err := ReadAll(t, r)
			if !errors.Is(err, io.EOF) || len(lineErrs) > 0 {
				t.Fatalf("read back: %v", err)
			}
			equalRecords(t, got, want)
			if st := r.(StatsReporter).Stats(); st.Blocks != ws.Blocks {
				t.Errorf("read %d blocks, wrote %d", st.Blocks, ws.Blocks)
			}
			if done, total := r.(ProgressReporter).Progress(); done != total || total != fi.Size() {
				t.Errorf("progress %d of %d, file %d", done, total, fi.Size())
			}
		})
	}
}

// smallCapture writes the first n real CSV records in blocks of about
// blockSize bytes and returns the file bytes, the records, and the end
// offset and cumulative record count of each block.
func smallCapture(tb testing.TB, n, blockSize int) (file []byte, recs []Record, ends []int, counts []int) {
	tb.Helper()
	recs = MustReadAll(tb, dataPath(visionFile), OpenOptions{})[:n]
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{BlockSize: blockSize, FlushInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	MustWriteAll(tb, w, recs)
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	file = buf.Bytes()
	// Walk the block headers independently of the reader.
	off, total := fileHeaderSize, 0
	for off < len(file) {
		payload := int(binary.LittleEndian.Uint32(file[off+4:]))
		total += int(binary.LittleEndian.Uint32(file[off+12:]))
		off += blockHeaderSize + payload
		ends = append(ends, off)
		counts = append(counts, total)
	}
	if off != len(file) || total != n || len(ends) < 5 {
		tb.Fatalf("walked to %d of %d with %d records in %d blocks", off, len(file), total, len(ends))
	}
	return file, recs, ends, counts
}

// TestTornTailEveryCut cuts a small capture at every byte: the reader must
// return the records of every complete block, then ErrTorn (io.EOF at a
// block boundary), and never panic.
func TestTornTailEveryCut(t *testing.T) {
	file, recs, ends, counts := smallCapture(t, 150, 4096)
	for n := 0; n <= len(file); n++ {
		wantRecs, boundary := 0, n == 0 || n == fileHeaderSize
		for i, e := range ends {
			if e <= n {
				wantRecs = counts[i]
			}
			if e == n {
				boundary = true
			}
		}
		r, err := NewReader(bytes.NewReader(file[:n]), "cut", OpenOptions{Format: FormatCapture})
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := ReadAll(t, r)
		if boundary != errors.Is(err, io.EOF) || !boundary && !errors.Is(err, ErrTorn) {
			t.Fatalf("cut at %d: end %v, boundary %v", n, err, boundary)
		}
		equalRecords(t, got, recs[:wantRecs])
	}
}

// TestCorruptByte flips each byte of a small capture in turn: the reader
// must never return a changed record, only a prefix of the originals and
// then an error; a flip inside a middle block is named by its checksum.
func TestCorruptByte(t *testing.T) {
	file, recs, ends, counts := smallCapture(t, 100, 4096)
	for i := range file {
		bad := bytes.Clone(file)
		bad[i] ^= 0x20
		r, err := NewReader(bytes.NewReader(bad), "flip", OpenOptions{Format: FormatCapture})
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := ReadAll(t, r)
		if err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("flip at %d: not detected (%d records)", i, len(got))
		}
		if len(got) > len(recs) {
			t.Fatalf("flip at %d: %d records", i, len(got))
		}
		equalRecords(t, got, recs[:len(got)])
	}
	// A payload byte in the middle of block 3.
	at := (ends[1] + ends[2]) / 2
	bad := bytes.Clone(file)
	bad[at] ^= 0x01
	r, _ := NewReader(bytes.NewReader(bad), "mid", OpenOptions{Format: FormatCapture})
	got, _, err := ReadAll(t, r)
	if len(got) != counts[1] || !errors.Is(err, ErrTorn) || !strings.Contains(err.Error(), "checksum mismatch") ||
		!strings.Contains(err.Error(), "offset "+strconv.Itoa(ends[1])) {
		t.Fatalf("%d records, %v; want %d then a checksum error at offset %d", len(got), err, counts[1], ends[1])
	}
}

// TestAppendSessions appends three sessions to one file, with a crash that
// tore the second session's last block, and reads them back.
func TestAppendSessions(t *testing.T) {
	recs := MustReadAll(t, dataPath(visionFile), OpenOptions{})[:900]
	path := filepath.Join(t.TempDir(), "s.ofcap")

	w := MustCreate(t, path, WriterOptions{FlushInterval: -1, BlockSize: 8 << 10})
	MustWriteAll(t, w, recs[:300])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = MustCreate(t, path, WriterOptions{FlushInterval: -1, BlockSize: 8 << 10})
	if w.Repaired() != 0 {
		t.Fatalf("repaired %d bytes of a clean file", w.Repaired())
	}
	MustWriteAll(t, w, recs[300:600])
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// Crash: the last block of session 2 is half written.
	fi, _ := os.Stat(path)
	beforeLast := fi.Size()
	MustWriteAll(t, w, recs[600:650])
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(path)
	if err := os.Truncate(path, beforeLast+(fi.Size()-beforeLast)/2); err != nil {
		t.Fatal(err)
	}
	w.f.Close() // abandon without Close, as a crash would

	var logBuf bytes.Buffer
	w = MustCreate(t, path, WriterOptions{FlushInterval: -1, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if want := (fi.Size() - beforeLast) / 2; w.Repaired() != want {
		t.Errorf("repaired %d bytes, want %d", w.Repaired(), want)
	}
	if !strings.Contains(logBuf.String(), "cut torn tail") || !strings.Contains(logBuf.String(), "offset="+strconv.Itoa(int(beforeLast))) {
		t.Errorf("log %q does not report the cut at %d", logBuf.String(), beforeLast)
	}
	MustWriteAll(t, w, recs[650:900])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := MustReadAll(t, path, OpenOptions{})
	equalRecords(t, got, append(append([]Record(nil), recs[:600]...), recs[650:900]...))
}

// TestConcatenatedFiles reads two capture files joined with cat.
func TestConcatenatedFiles(t *testing.T) {
	a, recs, _, _ := smallCapture(t, 100, 2048)
	b, _, _, _ := smallCapture(t, 100, 4096)
	got := MustReadAllBytes(t, append(bytes.Clone(a), b...), OpenOptions{})
	equalRecords(t, got, append(append([]Record(nil), recs...), recs...))
}

// TestCreateRefuses checks files Create must not append to, and a torn
// file header it restarts.
func TestCreateRefuses(t *testing.T) {
	file, _, ends, _ := smallCapture(t, 100, 4096)
	corruptMid := bytes.Clone(file)
	corruptMid[ends[1]+30] ^= 0xff
	future := bytes.Clone(file)
	future[8] = 9
	tests := []struct {
		name    string
		content []byte
		err     string
	}{
		{"NotCapture", []byte("1723161253937085768 {\"stream\":\"x\"}\n"), "not a capture file"},
		{"ShortForeign", []byte("hello"), "not a capture file"},
		{"FutureVersion", future, "version 9"},
		{"CorruptMiddle", corruptMid, "refusing to append: corrupt block at offset " + strconv.Itoa(ends[1]) + " followed by an intact block"},
		{"TornFileHeader", fileMagic[:5], ""},
		{"TornLastBlockHeader", file[:ends[len(ends)-2]+7], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.ofcap")
			if err := os.WriteFile(path, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := Create(path, WriterOptions{Logger: slog.New(slog.DiscardHandler)})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Create: %v, want %q", err, tt.err)
				}
				if b, _ := os.ReadFile(path); !bytes.Equal(b, tt.content) {
					t.Fatal("refused file was changed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r := MustOpen(t, path, OpenOptions{})
			if _, _, err := ReadAll(t, r); !errors.Is(err, io.EOF) {
				t.Fatalf("after repair: %v", err)
			}
		})
	}
}

// limitWriter accepts limit bytes and then fails like a full disk, after
// writing what still fits.
type limitWriter struct {
	w     io.Writer
	limit int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) <= l.limit {
		l.limit -= len(p)
		return l.w.Write(p)
	}
	n, _ := l.w.Write(p[:l.limit])
	l.limit = 0
	return n, syscall.ENOSPC
}

// TestFullDisk checks the sticky, clear error of a full disk, and that a
// file keeps only intact blocks after it.
func TestFullDisk(t *testing.T) {
	recs := MustReadAll(t, dataPath(visionFile), OpenOptions{})[:2000]
	t.Run("DevFull", func(t *testing.T) {
		_, err := Create("/dev/full", WriterOptions{})
		if !errors.Is(err, syscall.ENOSPC) || err.Error() != "capture: write file header to /dev/full: no space left on device" {
			t.Fatalf("Create(/dev/full): %v", err)
		}
	})
	t.Run("StickyOnStream", func(t *testing.T) {
		var buf bytes.Buffer
		w, err := NewWriter(&limitWriter{w: &buf, limit: 20000}, WriterOptions{BlockSize: 8 << 10, FlushInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		n := 0
		for ; n < len(recs) && werr == nil; n++ {
			werr = w.Write(&recs[n])
		}
		if werr == nil || werr.Error() != "capture: write block to stream: no space left on device" || !errors.Is(werr, syscall.ENOSPC) {
			t.Fatalf("after %d records: %v", n, werr)
		}
		for name, err := range map[string]error{"Write": w.Write(&recs[0]), "Flush": w.Flush(), "Close": w.Close()} {
			if err != werr {
				t.Errorf("%s after the failure: %v, want the same error", name, err)
			}
		}
		// What reached the stream: intact blocks, then a torn one.
		r, _ := NewReader(bytes.NewReader(buf.Bytes()), "full", OpenOptions{})
		got, _, err := ReadAll(t, r)
		if !errors.Is(err, ErrTorn) || len(got) == 0 {
			t.Fatalf("%d records, %v", len(got), err)
		}
		equalRecords(t, got, recs[:len(got)])
	})
	t.Run("FileCutBackToLastBlock", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "full.ofcap")
		w := MustCreate(t, path, WriterOptions{BlockSize: 8 << 10, FlushInterval: -1})
		w.w = &limitWriter{w: w.f, limit: 20000}
		var werr error
		for n := 0; n < len(recs) && werr == nil; n++ {
			werr = w.Write(&recs[n])
		}
		if !errors.Is(werr, syscall.ENOSPC) || !strings.Contains(werr.Error(), "capture: write block to "+path+": no space left on device") {
			t.Fatalf("error %v", werr)
		}
		if err := w.Close(); err != werr {
			t.Errorf("Close: %v", err)
		}
		got := MustReadAll(t, path, OpenOptions{}) // no torn tail left behind
		if len(got) == 0 {
			t.Fatal("no records kept")
		}
		equalRecords(t, got, recs[:len(got)])
		w = MustCreate(t, path, WriterOptions{})
		if w.Repaired() != 0 {
			t.Errorf("repaired %d bytes", w.Repaired())
		}
		w.Close()
	})
}

// TestFlushInterval checks that a block is cut on the Write that comes
// FlushInterval after the block's first record.
func TestFlushInterval(t *testing.T) {
	recs := MustReadAll(t, dataPath(visionFile), OpenOptions{})[:4]
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, WriterOptions{FlushInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			sleep  time.Duration
			blocks int64
		}{{0, 0}, {999 * time.Millisecond, 0}, {time.Millisecond, 1}, {500 * time.Millisecond, 1}}
		for i, s := range steps {
			time.Sleep(s.sleep)
			if err := w.Write(&recs[i]); err != nil {
				t.Fatal(err)
			}
			if got := w.Stats().Blocks; got != s.blocks {
				t.Fatalf("step %d: %d blocks, want %d", i, got, s.blocks)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		equalRecords(t, MustReadAllBytes(t, buf.Bytes(), OpenOptions{}), recs)
	})
}

// TestBlockSize checks blocks are cut at BlockSize bytes.
func TestBlockSize(t *testing.T) {
	_, _, ends, counts := smallCapture(t, 1000, 16<<10)
	// Each record is under 300 bytes raw, so each block holds 16 KiB..16.3 KiB.
	for i := 0; i < len(counts)-1; i++ {
		n := counts[i]
		if i > 0 {
			n -= counts[i-1]
		}
		if n < 16<<10/300 || n > 16<<10/200+1 {
			t.Errorf("block %d holds %d records", i, n)
		}
	}
	if len(ends) < 10 {
		t.Errorf("%d blocks", len(ends))
	}
}

// TestWriteRejects checks records that cannot be stored are refused without
// breaking the writer.
func TestWriteRejects(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, WriterOptions{})
	good := Record{Kind: Frame, Local: 1, Data: []byte(`{}`)}
	for name, rec := range map[string]*Record{
		"Nil":        nil,
		"BadKind":    {Kind: 7, Data: []byte(`{}`)},
		"BadMarket":  {MarketKnown: true, Market: 9},
		"LongSymbol": {Symbol: strings.Repeat("A", 256)},
	} {
		if err := w.Write(rec); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := w.Write(&good); err != nil {
		t.Fatalf("good record after rejects: %v", err)
	}
	if _, err := NewWriter(&buf, WriterOptions{Level: 10}); err == nil {
		t.Error("level 10 accepted")
	}
	w.Close()
	if err := w.Write(&good); err == nil {
		t.Error("write after Close accepted")
	}
}
