package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/engine/enginetest"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
)

// mirror drives engine pub with a recording through the frame path
// (enginetest.Publish) and hands engine sub only what a bus publisher
// publishes: each accepted trade, the full book (with its known range)
// whenever a book becomes synced, and each diff the synced book applied.
type mirror struct {
	pub, sub                   *engine.Engine
	trades, loads, deltas, gap int
	t                          *testing.T
	// firstDelta is the event time of the first diff applied after the
	// last full book, per symbol.
	firstDelta map[string]int64
	// drop, if positive, withholds that diff (1-based) from sub, as a
	// lost message would; the next diff must then be refused as a gap
	// (noticed records its cause), and sub is loaded again.
	drop    int
	noticed book.Cause
}

func newMirror(t *testing.T, cfg engine.Config) *mirror {
	m := &mirror{t: t, firstDelta: map[string]int64{}}
	m.sub = engine.New(cfg)
	return m
}

// load hands sub pub's whole book, as a book.snapshot message carries it.
func (m *mirror) load(s *engine.Symbol) {
	var snap market.DepthSnapshot
	s.Book().Snapshot(0, &snap)
	snap.Symbol = s.Name
	floor, ceil := s.Book().KnownRange()
	m.loadSnap(s, &snap, floor, ceil)
}

func (m *mirror) loadSnap(s *engine.Symbol, snap *market.DepthSnapshot, floor, ceil fixed.Dec) {
	if err := m.sub.LoadBook(snap, s.Market, floor, ceil); err != nil {
		m.t.Fatalf("%s: LoadBook: %v", s.Name, err)
	}
	m.loads++
	delete(m.firstDelta, s.Name)
}

func (m *mirror) delta(s *engine.Symbol, u *market.DepthUpdate) {
	sym := s.Name
	m.deltas++
	if _, ok := m.firstDelta[sym]; !ok {
		m.firstDelta[sym] = u.EventTime
	}
	if m.deltas == m.drop {
		return
	}
	r, err := m.sub.ApplyDelta(u)
	if m.drop > 0 && m.deltas == m.drop+1 {
		if r.Action != book.NeedSnapshot || m.sub.Symbol(sym).Synced() {
			m.t.Fatalf("%s: diff after a lost one: %v %v, synced %v", sym, r.Action, err, m.sub.Symbol(sym).Synced())
		}
		m.noticed = r.Cause
		if _, err := m.sub.ApplyDelta(u); !errors.Is(err, engine.ErrNotSynced) {
			m.t.Fatalf("%s: diff on a dropped book: %v, want ErrNotSynced", sym, err)
		}
		m.load(s) // the publisher's next full book
		return
	}
	if err != nil || r.Action != book.Applied {
		m.t.Fatalf("%s: sub ApplyDelta u=%d: %v %v", sym, u.FinalID, r.Action, err)
	}
}

func (m *mirror) run(cfg engine.Config, files ...string) {
	pub, err := enginetest.Publish(cfg, files, enginetest.Outputs{
		Trade: func(s *engine.Symbol, tr *market.Trade) {
			m.trades++
			c := *tr
			if err := m.sub.ApplyTrade(&c, s.Market); err != nil {
				m.t.Errorf("sub refused trade %d of %s: %v", tr.ID, tr.Symbol, err)
			}
		},
		Book:   m.loadSnap,
		Delta:  m.delta,
		Resync: func(*engine.Symbol) { m.gap++ },
	})
	if err != nil {
		m.t.Fatal(err)
	}
	m.pub = pub
}

// TestDirectMatchesFrames feeds every bundled depth recording through the
// frame path (engine A) and hands engine B only what a bus publisher sends
// (accepted trades, the full synced book, each applied diff): B's metrics,
// bars with footprints, windows, large trades, trade history, whole book
// with its known range, book history and book metrics (walls, bands,
// liquidity, signals) must end identical to A's. With -short only the
// two cryptofeed recordings (15 symbols, spot and USD-M) run.
func TestDirectMatchesFrames(t *testing.T) {
	cases := []struct {
		name  string
		files []string
	}{
		{"SpotBTCUSDT", testdata("hft-spot-btcusdt-20240808.txt.gz", "hft-spot-btcusdt-20240809.txt.gz")},
		{"USDMBTCUSDT", testdata("hft-usdm-btcusdt-20240808.txt.gz")},
		{"USDMBTCUSDTJuly", testdata("hft-usdm-btcusdt-20240718.txt.gz", "hft-usdm-btcusdt-20240719.txt.gz")},
		{"CryptofeedSpot10", testdata("cryptofeed-spot-10sym-20210405.txt.gz")},
		{"CryptofeedUSDM5", testdata("cryptofeed-usdm-5sym-20210405.txt.gz")},
	}
	if testing.Short() {
		cases = cases[3:] // the small multi-symbol ones, spot and USD-M
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := engine.Config{
				Flow:      flow.Config{BarIntervals: []time.Duration{time.Minute, 5 * time.Minute}},
				DepthFlow: &depthflow.Config{},
			}
			m := newMirror(t, cfg)
			m.run(cfg, c.files...)
			if m.trades == 0 || m.deltas == 0 || m.loads == 0 {
				t.Fatalf("nothing mirrored: %d trades, %d deltas, %d loads", m.trades, m.deltas, m.loads)
			}
			t.Logf("%d trades, %d deltas, %d full books, %d resyncs", m.trades, m.deltas, m.loads, m.gap)
			for _, a := range m.pub.Symbols() {
				b := m.sub.Symbol(a.Name)
				if b == nil {
					t.Errorf("%s: missing from the direct engine", a.Name)
					continue
				}
				a.Flow.Flush()
				b.Flow.Flush()
				if !a.Synced() {
					t.Errorf("%s: frame-path book not synced at the end", a.Name)
				}
				// The book metrics (walls, bands, liquidity, signals) are
				// compared too: their known range is the book's, which
				// the full book carries.
				sa, sb := enginetest.Capture(a, enginetest.Options{}), enginetest.Capture(b, enginetest.Options{})
				// The frame path also records the book history at stale
				// diffs (u <= the book's id, right after a snapshot), which
				// are not published: compare from the first 1 s history
				// interval after the first applied diff.
				from := (m.firstDelta[a.Name]/1000 + 1) * 1000
				sa.History, sb.History = framesFrom(sa.History, from), framesFrom(sb.History, from)
				if len(sb.History) < 10 {
					t.Errorf("%s: only %d history frames to compare", a.Name, len(sb.History))
				}
				if da, db := a.Depth.Stats(), b.Depth.Stats(); da.Updates != db.Updates || da.Updates == 0 {
					t.Errorf("%s: book metrics saw %d updates on the frame path, %d direct", a.Name, da.Updates, db.Updates)
				}
				if d := enginetest.Diff(sa, sb); d != nil {
					t.Errorf("%s: direct engine differs from the frame path:\n%v", a.Name, d)
				}
				if !a.Book().Equal(b.Book()) {
					t.Errorf("%s: books differ (Book.Equal)", a.Name)
				}
			}
			if sa, sb := m.pub.Stats(), m.sub.Stats(); sa.Trades != sb.Trades || sb.TradeRejected != 0 {
				t.Errorf("trades: frame path %d, direct %d (%d rejected)", sa.Trades, sb.Trades, sb.TradeRejected)
			}
		})
	}
}

func framesFrom(fs []book.Frame, from int64) []book.Frame {
	for i, f := range fs {
		if f.Time >= from {
			return fs[i:]
		}
	}
	return nil
}

// TestApplyDeltaNoticesLoss withholds one published diff from the direct
// engine: the next diff must be refused as a gap (spot: U > id+1; USD-M:
// pu != id), the book dropped until the next full book, and after it the
// state must again equal the frame path's.
func TestApplyDeltaNoticesLoss(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		cause book.Cause
	}{
		{"Spot", "hft-spot-ethusdt-20240808.txt.gz", book.CauseGap},
		{"USDM", "hft-usdm-ethusdt-20240808.txt.gz", book.CausePrevMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := newMirror(t, engine.Config{})
			m.drop = 100
			m.run(engine.Config{}, testdata(c.file)...)
			if m.noticed != c.cause {
				t.Fatalf("loss noticed as %v, want %v", m.noticed, c.cause)
			}
			for _, a := range m.pub.Symbols() {
				b := m.sub.Symbol(a.Name)
				sa, sb := enginetest.Capture(a, enginetest.Options{NoHistory: true}), enginetest.Capture(b, enginetest.Options{NoHistory: true})
				if d := enginetest.Diff(sa, sb); d != nil {
					t.Errorf("%s: differs after recovering from a lost diff:\n%v", a.Name, d)
				}
			}
		})
	}
}
