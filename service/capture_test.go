package service_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	prom "github.com/orderflow/orderflow/metrics"
	"github.com/orderflow/orderflow/replay"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// captureFlow is the metrics configuration `orderflow replay --bars 1m`
// uses, so the service and the replay compute the same things.
var captureFlow = flow.Config{BarIntervals: []time.Duration{time.Minute}}

// bookLevels is a whole book, for comparison.
type bookLevels struct {
	Synced   bool
	UpdateID int64
	Bids     []market.Level
	Asks     []market.Level
}

func symbolBook(sym *engine.Symbol) bookLevels {
	b := bookLevels{Synced: sym.Synced()}
	if sym.Sync != nil {
		bk := sym.Book()
		b.UpdateID = bk.UpdateID()
		b.Bids = bk.Bids(1<<30, nil)
		b.Asks = bk.Asks(1<<30, nil)
	}
	return b
}

// captureFiles lists a capture directory's files in name (= time) order.
func captureFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.ofcap"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// countRecords reads capture files to the end and counts records by kind.
func countRecords(t testing.TB, files ...string) map[capture.RecordKind]int64 {
	t.Helper()
	n := map[capture.RecordKind]int64{}
	for _, rec := range service.ReadCaptureFiles(t, files...) {
		n[rec.Kind]++
	}
	return n
}

// simSnapshot fetches a 100-level snapshot of the simulator's book.
func simSnapshot(t testing.TB, srv *sim.Server, symbol string) market.DepthSnapshot {
	t.Helper()
	rc, done := simREST(t, srv)
	defer done()
	var snap market.DepthSnapshot
	if err := rc.DepthSnapshot(context.Background(), symbol, 100, &snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

// flushed is m as a replay ends it: replay closes every open bar at the
// end of its input (flow.Tracker.Flush).
func flushed(m metrics) metrics {
	out := m
	out.Bars, out.Cur = map[time.Duration][]flow.Bar{}, map[time.Duration]flow.Bar{}
	for iv := range m.Cur {
		if _, ok := m.Bars[iv]; !ok {
			m.Bars[iv] = nil
		}
	}
	for iv, bars := range m.Bars {
		out.Bars[iv] = slices.Clone(bars)
		if cur := m.Cur[iv]; cur.Trades > 0 {
			cur.Closed = true
			out.Bars[iv] = append(out.Bars[iv], cur)
		}
		out.Cur[iv] = flow.Bar{}
	}
	return out
}

// TestCaptureReplayReproducesRun runs the service against the simulator
// with capture on (small files, so it rotates) and a connection drop in
// the middle (trades held while REST fills the gap, a resync), then replays
// the capture files through `orderflow replay`'s code: every symbol's
// trades, totals, bars and whole book equal the service's.
func TestCaptureReplayReproducesRun(t *testing.T) {
	srv := startSim(t, sim.Config{Recording: recording(t, spot10...), Speed: 40, Paused: true})
	syms := withAggTrades(srv.Symbols())
	dir := filepath.Join(t.TempDir(), "capture") // created by the service
	s := newService(t, srv, func(c *service.Config) {
		c.Symbols = syms
		c.Flow = captureFlow
		c.SnapshotLimit = 100
		c.BackoffMin, c.BackoffMax = 5*time.Millisecond, 50*time.Millisecond
		c.Capture = service.CaptureConfig{Dir: dir, MaxFileBytes: 32 << 10}
	})
	// Trades published before the start come from REST (the warm start)
	// while the stream's are held, then applied after them; slow REST
	// answers make the stream's trades wait behind every fill.
	srv.Faults().DelayREST(300 * time.Millisecond)
	srv.Play()
	time.Sleep(300 * time.Millisecond)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			stopService(t, s)
		}
	}()
	waitStatus(t, s, "connected", 10*time.Second, connected)
	// Gaps in the stream's trade ids (filled from REST, the trades after
	// them held meanwhile), duplicated trades, and a dropped connection
	// (catch-up fill, book resets and new snapshots).
	for _, sym := range syms {
		if err := srv.Faults().Skip(sym, "aggTrade", 2); err != nil {
			t.Fatal(err)
		}
		if err := srv.Faults().Duplicate(sym, "aggTrade", 2); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := srv.Faults().DropAll(sim.DropReset); n == 0 {
		t.Fatal("no connection to drop")
	}
	select {
	case <-srv.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the simulator's replay did not end")
	}
	srv.Faults().DelayREST(0)
	type state struct {
		m    metrics
		book bookLevels
	}
	want := map[string]state{}
	for _, sym := range syms {
		trades := restTrades(t, srv, sym)
		last := trades[len(trades)-1].ID
		waitFor(t, sym+" caught up to the last trade", 20*time.Second, func() bool {
			return serviceMetrics(t, s, sym).Totals.LastID == last
		})
		// The replay is over: the simulator's book no longer moves; wait
		// for the frames still in flight before comparing.
		simID := simSnapshot(t, srv, sym).LastUpdateID
		waitFor(t, sym+" book at the simulator's update id", 20*time.Second, func() bool {
			var id int64
			_ = s.ViewSymbol(sym, func(es *engine.Symbol) error { id = es.Book().UpdateID(); return nil })
			return id == simID
		})
		checkBookMatchesSim(t, s, srv, sym)
	}
	st := s.Status()
	for _, sym := range syms {
		var w state
		if err := s.ViewSymbol(sym, func(es *engine.Symbol) error {
			w = state{m: trackerMetrics(es.Flow), book: symbolBook(es)}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want[sym] = w
	}
	c := st.Capture
	if c == nil || !c.Active || c.Errors != 0 || c.Dropped != 0 || c.Lost != 0 || c.Error != "" {
		t.Fatalf("capture status %+v", c)
	}
	var reconnects uint64
	for _, cs := range st.Streams {
		reconnects += cs.Reconnects
	}
	if reconnects == 0 || st.Backfill.Fetched == 0 {
		t.Fatalf("the drop did not make the service reconnect and fill (%d reconnects, backfill %+v)", reconnects, st.Backfill)
	}
	stopped = true
	stopService(t, s) // writes what is queued and closes the file

	files := captureFiles(t, dir)
	if len(files) < 2 || int64(len(files)) < c.Files {
		t.Fatalf("%d capture files, status said %d: want rotation into several", len(files), c.Files)
	}
	kinds := countRecords(t, files...)
	t.Logf("capture: %d files, %d bytes at the status read, records %v; backfill %+v", len(files), c.Bytes, kinds, st.Backfill)
	if kinds[capture.Snapshot] < int64(len(syms)) || kinds[capture.Trades] == 0 || kinds[capture.Frame] == 0 {
		t.Fatalf("records by kind %v: want frames, a snapshot per symbol and REST trades", kinds)
	}
	if kinds[capture.BookReset] == 0 {
		t.Fatalf("records by kind %v: the reconnect's book resets are missing", kinds)
	}
	if total := kinds[capture.Frame] + kinds[capture.Snapshot] + kinds[capture.Trades] + kinds[capture.BookReset]; total < c.Records {
		t.Fatalf("%d records in the files, the status counted %d written", total, c.Records)
	}

	res, err := replay.Run(context.Background(), replay.Options{Files: files, Bars: time.Minute}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var dups int64
	for _, sym := range syms {
		es := res.Engine.Symbol(sym)
		if es == nil {
			t.Fatalf("%s: not in the replay", sym)
		}
		w := want[sym]
		if len(w.m.IDs) == 0 {
			t.Fatalf("%s: the service has no trade", sym)
		}
		// The service's sequencer skips the duplicates at the stream/REST
		// seam (Backfill.Duplicates); the replay hands them to the metrics,
		// which refuse them: the same trades, counted in another place.
		g := trackerMetrics(es.Flow)
		dups += g.Totals.Rejected.Duplicate + g.Totals.Rejected.OutOfOrder
		g.Totals.Rejected.Duplicate, g.Totals.Rejected.OutOfOrder = 0, 0
		compareMetrics(t, sym, g, flushed(w.m))
		if got := symbolBook(es); !reflect.DeepEqual(got, w.book) {
			t.Fatalf("%s: replayed book differs: synced %v id %d, %d bids %d asks; service synced %v id %d, %d bids %d asks",
				sym, got.Synced, got.UpdateID, len(got.Bids), len(got.Asks), w.book.Synced, w.book.UpdateID, len(w.book.Bids), len(w.book.Asks))
		}
	}
	if dups != st.Backfill.Duplicates {
		t.Fatalf("the replay refused %d duplicate trades, the service skipped %d", dups, st.Backfill.Duplicates)
	}
}

// TestCaptureFullDiskKeepsRunning makes the capture's second file a link
// to /dev/full, so the kernel answers the rotation's first write with
// ENOSPC: the capture stops with one clear logged error, the status,
// /v1/status's JSON and Prometheus show it with the records not written,
// the first file stays intact, and the service goes on to the end with
// every trade.
func TestCaptureFullDiskKeepsRunning(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("this test needs /dev/full (Linux): %v", err)
	}
	srv := startSim(t, sim.Config{Recording: recording(t, spot10...), Speed: 40, Paused: true})
	syms := withAggTrades(srv.Symbols())
	dir := t.TempDir()
	logs := newLogCapture(t)
	s := newService(t, srv, func(c *service.Config) {
		c.Symbols = syms
		c.Flow = testFlow
		c.Logger = logs.logger()
		c.Capture = service.CaptureConfig{Dir: dir, MaxFileBytes: 16 << 10}
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stopService(t, s)
	waitStatus(t, s, "connected", 10*time.Second, connected)
	first := s.Status().Capture.File
	if !strings.HasSuffix(first, "-0001.ofcap") {
		t.Fatalf("first capture file %q", first)
	}
	second := strings.TrimSuffix(first, "0001.ofcap") + "0002.ofcap"
	if err := os.Symlink("/dev/full", second); err != nil {
		t.Fatal(err)
	}
	srv.Play()
	waitStatus(t, s, "capture stopped", time.Minute, func(st service.Status) bool { return !st.Capture.Active })
	select {
	case <-srv.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the simulator's replay did not end")
	}
	for _, sym := range syms {
		want := restTrades(t, srv, sym)
		last := want[len(want)-1].ID
		waitFor(t, sym+" caught up to the last trade", 20*time.Second, func() bool {
			return serviceMetrics(t, s, sym).Totals.LastID == last
		})
		compareMetrics(t, sym, serviceMetrics(t, s, sym), referenceMetrics(t, want, sym, testFlow))
	}
	st := s.Status()
	if st.State != "running" {
		t.Fatalf("service state %s after the capture failed", st.State)
	}
	c := st.Capture
	t.Logf("capture status: %+v", c)
	if c.Active || c.Errors != 1 || !strings.Contains(c.Error, "no space left on device") || !strings.Contains(c.Error, second) ||
		c.Lost == 0 || c.File != "" || c.Files != 1 {
		t.Fatalf("capture status %+v: want stopped by one ENOSPC on %s, records lost counted", c, second)
	}
	errs := logs.records("capture stopped")
	if len(errs) != 1 || !strings.Contains(errs[0].Attrs["err"], "no space left on device") {
		t.Fatalf("%d capture error logs (%v): want exactly one naming ENOSPC", len(errs), errs)
	}
	if n := countRecords(t, first)[capture.Frame]; n == 0 {
		t.Fatal("the first file holds no frame")
	}
	if total := func() (n int64) {
		for _, v := range countRecords(t, first) {
			n += v
		}
		return n
	}(); total != c.Records {
		t.Fatalf("the first file holds %d records, the status counted %d written", total, c.Records)
	}

	// /v1/status serves Status as JSON.
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Capture map[string]any `json:"capture"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Capture["active"] != false || doc.Capture["errors"] != 1.0 || doc.Capture["lost"].(float64) <= 0 {
		t.Fatalf("status JSON capture %v", doc.Capture)
	}

	// Prometheus.
	mfs, err := prom.New(s, nil).Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "orderflow_capture_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			if m.Gauge != nil {
				got[name] = m.GetGauge().GetValue()
			} else {
				got[name] = m.GetCounter().GetValue()
			}
		}
	}
	if got["orderflow_capture_active"] != 0 || got["orderflow_capture_errors_total"] != 1 ||
		got["orderflow_capture_records_total{lost}"] < float64(c.Lost) || got["orderflow_capture_records_total{dropped}"] != 0 ||
		got["orderflow_capture_records_total{written}"] != float64(c.Records) || got["orderflow_capture_bytes_total"] <= 0 {
		t.Fatalf("Prometheus capture metrics %v, status %+v", got, c)
	}
	if _, ok := got["orderflow_capture_active"]; !ok {
		t.Fatalf("no orderflow_capture_active in %v", got)
	}
}

// TestCaptureDirRefused: a capture directory that cannot be created fails
// New with a message naming it, before anything starts. (The check that
// the directory is writable cannot fail for root, which these tests run
// as, so it is not tested here.)
func TestCaptureDirRefused(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, want string }{
		{"ParentIsAFile", filepath.Join(file, "capture"), "cannot be created: not a directory"},
		{"IsAFile", file, "cannot be created: not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}, Capture: service.CaptureConfig{Dir: tc.dir}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.dir) {
				t.Fatalf("New: %v; want an error naming %s: %q", err, tc.dir, tc.want)
			}
		})
	}
}
