package capture

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRead reads whole real recordings; MB/s is of the file as stored
// (compressed for .gz and the capture format).
func BenchmarkRead(b *testing.B) {
	capPath := filepath.Join(b.TempDir(), "hft-spot-btcusdt-20240808.ofcap")
	w := MustCreate(b, capPath, WriterOptions{FlushInterval: -1})
	MustWriteAll(b, w, MustReadAll(b, dataPath("hft-spot-btcusdt-20240808.txt.gz"), OpenOptions{}))
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct{ name, path string }{
		{"HFTSpotGzip", dataPath("hft-spot-btcusdt-20240808.txt.gz")},
		{"HFTUSDMGzip", dataPath("hft-usdm-btcusdt-20240808.txt.gz")},
		{"CryptofeedSpotGzip", dataPath("cryptofeed-spot-10sym-20210405.txt.gz")},
		{"VisionCSV", dataPath(visionFile)},
		{"CaptureHFTSpot", capPath},
	} {
		b.Run(bm.name, func(b *testing.B) {
			fi, err := os.Stat(bm.path)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(fi.Size())
			b.ReportAllocs()
			var recs, raw int64
			for b.Loop() {
				r, err := Open(bm.path, OpenOptions{})
				if err != nil {
					b.Fatal(err)
				}
				for {
					rec, err := r.Next()
					if err != nil {
						if !errors.Is(err, io.EOF) {
							b.Fatal(err)
						}
						break
					}
					recs++
					raw += int64(len(rec.Data))
				}
				r.Close()
			}
			b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(raw)/1e6/b.Elapsed().Seconds(), "JSON-MB/s")
		})
	}
}

// BenchmarkWrite writes every record of a real recording to the capture
// format; MB/s is of the JSON written.
func BenchmarkWrite(b *testing.B) {
	recs := MustReadAll(b, dataPath("hft-spot-btcusdt-20240808.txt.gz"), OpenOptions{})
	var n int64
	for _, r := range recs {
		n += int64(len(r.Data))
	}
	for _, level := range []int{1, DefaultLevel} {
		b.Run("Level"+string(rune('0'+level)), func(b *testing.B) {
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				w, err := NewWriter(io.Discard, WriterOptions{FlushInterval: -1, Level: level})
				if err != nil {
					b.Fatal(err)
				}
				for i := range recs {
					if err := w.Write(&recs[i]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestNextAllocs checks that reading allocates nothing per record once the
// reader's buffers have grown.
func TestNextAllocs(t *testing.T) {
	capFile := filepath.Join(t.TempDir(), "a.ofcap")
	w := MustCreate(t, capFile, WriterOptions{})
	MustWriteAll(t, w, MustReadAll(t, dataPath("cryptofeed-spot-10sym-20210405.txt.gz"), OpenOptions{}))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path string }{
		{"HFT", dataPath("hft-spot-btcusdt-20240809.txt.gz")},
		{"Cryptofeed", dataPath("cryptofeed-spot-10sym-20210405.txt.gz")},
		{"VisionCSV", dataPath(visionFile)},
		{"Capture", capFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := MustOpen(t, tt.path, OpenOptions{})
			for range 1000 {
				if _, err := r.Next(); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			allocs := testing.AllocsPerRun(2000, func() { _, err = r.Next() })
			if err != nil || allocs != 0 {
				t.Errorf("%v allocs per record (err %v), want 0", allocs, err)
			}
		})
	}
}

// TestWriteAllocs checks that Write allocates nothing per record once the
// block buffers have grown.
func TestWriteAllocs(t *testing.T) {
	recs := MustReadAll(t, dataPath(visionFile), OpenOptions{})
	w, err := NewWriter(io.Discard, WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	MustWriteAll(t, w, recs[:2500])
	i := 2500
	allocs := testing.AllocsPerRun(2400, func() {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocs per Write, want 0", allocs)
	}
}
