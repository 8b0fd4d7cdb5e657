package chaos

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var (
	flagN    = flag.Int("chaos.n", 2, "injections per fault")
	flagOnly = flag.String("chaos.only", "", "run only the faults whose name matches this regexp")
	flagLogs = flag.Bool("chaos.logs", false, "print the service's logs")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dataDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "binance")
}

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// testRecordings is shared by every test's harness: loading spot BTCUSDT
// takes seconds (ten under the race detector).
var testRecordings = &recordings{dir: dataDir()}

func newTestHarness(t testing.TB, mod func(*Options)) *Harness {
	t.Helper()
	opts := Options{DataDir: dataDir(), Injections: *flagN}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if *flagLogs {
		opts.ServiceLog = slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	if mod != nil {
		mod(&opts)
	}
	h := New(opts)
	h.recs = testRecordings
	return h
}

// TestFaults injects every fault of the catalogue into the service
// streaming real recordings from the simulator and prints the table. Every
// fault the service is expected to survive must show every injection
// survived, zero missing or duplicate trade ids, zero book or totals
// mismatches and zero leaked goroutines.
func TestFaults(t *testing.T) {
	h := newTestHarness(t, nil)
	var only *regexp.Regexp
	if *flagOnly != "" {
		only = regexp.MustCompile(*flagOnly)
	}
	ctx := context.Background()
	var rows []Row
	for _, f := range Catalogue() {
		if only != nil && !only.MatchString(f.Name) {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			row := h.Run(ctx, f)
			rows = append(rows, row)
			t.Logf("%s: injected %d survived %d recovery p50 %v max %v missing %d duplicates %d mismatches %d leaked %d in %v",
				f.Name, row.Injected, row.Survived, row.P50(), row.Max(), row.Missing, row.Duplicates, row.Mismatches, row.Leaked,
				row.Elapsed.Round(time.Millisecond))
			if row.Failed {
				t.Errorf("%s failed: %v\nlast service warnings: %v", f.Name, row.Reasons, row.Logs)
			}
			if !row.Failed {
				// What "ok" means, asserted explicitly.
				if row.Injected == 0 || row.Survived != row.Injected || row.Missing != 0 || row.Duplicates != 0 ||
					row.Mismatches != 0 || row.Leaked != 0 {
					t.Errorf("row marked ok but %+v", row)
				}
			}
		})
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, rows); err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		_, _ = io.Copy(os.Stdout, &buf)
	} else {
		t.Log("\n" + buf.String())
	}
}
