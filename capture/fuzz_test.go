package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// The fuzz targets cover every reader format. Run them with a short
// minimization time: the round trip through compress/flate finds new
// coverage often, and minimizing each find at the default 60 s stalls the
// run, e.g.
//
//	go test ./capture -run '^$' -fuzz '^FuzzHFT$' -fuzztime 30s -fuzzminimizetime 2s

// checkReader drains a reader over fuzzed bytes: it must not panic, must
// make progress (each call consumes input, so the calls are bounded by the
// input size), must keep terminal errors sticky, and every record it
// returns must survive a round trip through the capture format.
func checkReader(t *testing.T, data []byte, format Format, callsPerByte int) {
	r, err := NewReader(bytes.NewReader(data), "BTCUSDT-aggTrades-fuzz.csv", OpenOptions{Format: format, MaxLineSize: 1 << 16})
	if err != nil {
		return
	}
	defer r.Close()
	var recs []Record
	limit := (len(data) + 2) * callsPerByte
	for calls := 0; ; calls++ {
		if calls > limit {
			t.Fatalf("no progress: %d calls on %d bytes", calls, len(data))
		}
		rec, err := r.Next()
		if err == nil {
			if rec.Kind > lastKind || len(rec.Data) == 0 && format != FormatCapture {
				t.Fatalf("bad record %+v", rec)
			}
			recs = append(recs, own(rec))
			continue
		}
		var le *LineError
		if errors.As(err, &le) {
			if le.Line <= 0 {
				t.Fatalf("line error without a line: %v", err)
			}
			continue
		}
		if rec2, err2 := r.Next(); rec2 != nil || err2 == nil {
			t.Fatalf("record after the terminal error %v", err)
		}
		break
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{BlockSize: 1 << 12, FlushInterval: -1, Level: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatalf("record %d not storable: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	back, err := NewReader(bytes.NewReader(buf.Bytes()), "back", OpenOptions{Format: FormatCapture})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadAll(t, back)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("round trip: %v", err)
	}
	equalRecords(t, got, recs)
}

func FuzzHFT(f *testing.F) {
	spot := gunzipHead(f, "hft-spot-btcusdt-20240808.txt.gz", 10) // line 8 is the snapshot
	usdm := gunzipHead(f, "hft-usdm-btcusdt-20240808.txt.gz", 60)
	f.Add(spot)
	f.Add(headLines(spot, 3))
	f.Add(usdm[bytes.Index(usdm, []byte("\n1723161255319702566")):])
	f.Add([]byte("1 {\"lastUpdateId\":1,\"E\":2,\"bids\":[],\"asks\":[]}\n2 {\"stream\":\"btcusdt@trade\",\"data\":{}}"))
	f.Fuzz(func(t *testing.T, data []byte) { checkReader(t, data, FormatHFT, 1) })
}

func FuzzCryptofeed(f *testing.F) {
	spot := gunzipHead(f, "cryptofeed-spot-10sym-20210405.txt.gz", 8)
	f.Add(spot)
	f.Add(gunzipHead(f, "cryptofeed-usdm-5sym-20210405.txt.gz", 6))
	f.Add(headLines(spot, 4))
	f.Fuzz(func(t *testing.T, data []byte) { checkReader(t, data, FormatCryptofeed, 1) })
}

func FuzzVisionCSV(f *testing.F) {
	f.Add(headLines(mustRead(f, dataPath(visionFile)), 20))
	f.Add(usdmCSV(f, 10))
	f.Add([]byte("3800397495,87648.21000000,0.08185000,5723703861,5723703861,1767225600039,false,True"))
	f.Fuzz(func(t *testing.T, data []byte) { checkReader(t, data, FormatVisionCSV, 1) })
}

func FuzzCapture(f *testing.F) {
	small, _, _, _ := smallCapture(f, 60, 2048)
	f.Add(small)
	f.Add(small[:len(small)-100])
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, WriterOptions{BlockSize: 1 << 12})
	r, _ := NewReader(bytes.NewReader(gunzipHead(f, "cryptofeed-usdm-5sym-20210405.txt.gz", 6)), "cf", OpenOptions{})
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		w.Write(rec)
	}
	w.Close()
	f.Add(buf.Bytes())
	// A record can inflate from few bytes (DEFLATE expands up to ~1000:1),
	// so a call may consume less than a byte of input on average.
	f.Fuzz(func(t *testing.T, data []byte) { checkReader(t, data, FormatCapture, 1100) })
}

// FuzzOpen feeds anything through format detection and gzip.
func FuzzOpen(f *testing.F) {
	f.Add(headLines(gunzipHead(f, "hft-spot-btcusdt-20240809.txt.gz", 3), 3))
	f.Add(gunzipHead(f, "cryptofeed-usdm-5sym-20210405.txt.gz", 3))
	f.Add(headLines(mustRead(f, dataPath(visionFile)), 3))
	small, _, _, _ := smallCapture(f, 60, 2048)
	f.Add(small)
	f.Add(gzipBytes(f, small))
	f.Fuzz(func(t *testing.T, data []byte) { checkReader(t, data, FormatAuto, 1100) })
}

// gunzipHead returns the first n lines of a bundled gzip file.
func gunzipHead(tb testing.TB, name string, n int) []byte {
	return bytes.Clone(headLines(gunzip(tb, dataPath(name)), n))
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
