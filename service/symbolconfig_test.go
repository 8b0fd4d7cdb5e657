package service_test

import (
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/depthflow"
	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/stacktest"
)

// wallSyms are spot10's symbols the wall tests run.
var wallSyms = []string{"DENTUSDT", "ZILUSDT", "MANAUSDT", "AXSBNB", "ETHBRL"}

// symbolWalls is a symbol's walls at the end of a run: those standing and
// those ended, and the floor its tracker used.
type symbolWalls struct {
	floor fixed.Dec
	walls []depthflow.Wall
	ended []depthflow.EndedWall
}

// runWalls runs a service fed by the real spot10 recording (through a
// Source, as the bus delivers it) with book metrics, and returns each
// symbol's walls once the recording is through.
func runWalls(t *testing.T, cfg service.Config) map[string]symbolWalls {
	t.Helper()
	cfg.Symbols, cfg.Logger = wallSyms, stacktest.Logger(t)
	s, _ := runRecordingSource(t, cfg)
	out := map[string]symbolWalls{}
	for _, name := range wallSyms {
		if err := s.ViewSymbol(name, func(sym *engine.Symbol) error {
			if sym.Depth == nil {
				return fmt.Errorf("%s: no book metrics", name)
			}
			w := symbolWalls{floor: sym.Depth.Config().WallMinNotional}
			w.walls = sym.Depth.Walls(market.Buy, nil)
			w.walls = sym.Depth.Walls(market.Sell, w.walls)
			w.ended = sym.Depth.EndedWalls(0, nil)
			out[name] = w
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// peakNotional is price x peak quantity, exactly (math/big, not package
// fixed).
func peakNotional(w depthflow.Wall) *big.Rat {
	p := new(big.Rat).SetFrac64(int64(w.Price), 100_000_000)
	q := new(big.Rat).SetFrac64(int64(w.PeakQty), 100_000_000)
	return p.Mul(p, q)
}

func ratOf(d fixed.Dec) *big.Rat { return new(big.Rat).SetFrac64(int64(d), 100_000_000) }

// TestWallMinNotionalPerSymbol: a per-symbol wall floor in
// service.Config reaches that symbol's tracker only. On the real spot10
// recording, with every symbol at a 2,000 floor but DENTUSDT at 20,000,
// DENTUSDT has exactly the walls of a run where every symbol has 20,000,
// and the other symbols exactly those of a run where all have 2,000 (with
// walls to compare); every wall's peak notional (math/big) is at least its
// symbol's floor, and the all-2,000 run has DENTUSDT walls below 20,000,
// which the override kept out.
func TestWallMinNotionalPerSymbol(t *testing.T) {
	low, high := fixed.Dec(2_000*100_000_000), fixed.Dec(20_000*100_000_000)
	over := runWalls(t, service.Config{DepthFlow: &depthflow.Config{WallMinNotional: low}, WallMinNotional: map[string]fixed.Dec{"dentusdt": high}})
	allLow := runWalls(t, service.Config{DepthFlow: &depthflow.Config{WallMinNotional: low}})
	allHigh := runWalls(t, service.Config{DepthFlow: &depthflow.Config{WallMinNotional: high}})
	others := 0
	for _, name := range wallSyms {
		got, ref, floor := over[name], allLow[name], low
		if name == "DENTUSDT" {
			ref, floor = allHigh[name], high
		} else {
			others += len(got.walls) + len(got.ended)
		}
		if got.floor != floor {
			t.Fatalf("%s: tracker floor %v, want %v", name, got.floor, floor)
		}
		if !reflect.DeepEqual(got.walls, ref.walls) || !reflect.DeepEqual(got.ended, ref.ended) {
			t.Errorf("%s: %d standing and %d ended walls, the reference run %d and %d", name, len(got.walls), len(got.ended), len(ref.walls), len(ref.ended))
		}
		for _, w := range allWalls(got) {
			if n := peakNotional(w); n.Cmp(ratOf(floor)) < 0 {
				t.Errorf("%s: wall at %v peak %v: notional %s below the floor %v", name, w.Price, w.PeakQty, n.FloatString(2), floor)
			}
		}
		t.Logf("%s: floor %v, %d standing, %d ended walls", name, floor, len(got.walls), len(got.ended))
	}
	if others == 0 {
		t.Fatal("no wall on the symbols without an override: nothing to compare")
	}
	kept := 0
	for _, w := range allWalls(allLow["DENTUSDT"]) {
		if peakNotional(w).Cmp(ratOf(high)) < 0 {
			kept++
		}
	}
	if kept == 0 {
		t.Fatal("no DENTUSDT wall between the two floors: the recording cannot show the override")
	}
	t.Logf("DENTUSDT: %d walls at the 2,000 floor below 20,000, kept out by the override", kept)
}

func allWalls(s symbolWalls) []depthflow.Wall {
	all := append([]depthflow.Wall(nil), s.walls...)
	for _, e := range s.ended {
		all = append(all, e.Wall)
	}
	return all
}

// TestSymbolConfigRefused: service.New refuses bad per-symbol wall floors
// and book history depths.
func TestSymbolConfigRefused(t *testing.T) {
	dc := &depthflow.Config{}
	for _, tc := range []struct {
		name string
		cfg  service.Config
		want string
	}{
		{"WallFloorWithoutBookMetrics", service.Config{WallMinNotional: map[string]fixed.Dec{"BTCUSDT": 1}}, "DepthFlow"},
		{"WallFloorZero", service.Config{DepthFlow: dc, WallMinNotional: map[string]fixed.Dec{"BTCUSDT": 0}}, "BTCUSDT"},
		{"WallFloorBadSymbol", service.Config{DepthFlow: dc, WallMinNotional: map[string]fixed.Dec{"BTC-USDT": 1}}, "BTC-USDT"},
		{"WallFloorTwice", service.Config{DepthFlow: dc, WallMinNotional: map[string]fixed.Dec{"BTCUSDT": 1, "btcusdt": 2}}, "twice"},
		{"HistoryDepthNegative", service.Config{BookHistoryDepth: -1}, "book history depth"},
		{"HistoryDepthTooDeep", service.Config{BookHistoryDepth: service.MaxBookHistoryDepth + 1}, "book history depth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Symbols = []string{"BTCUSDT"}
			_, err := service.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestBookHistoryDepth: service.Config.BookHistoryDepth reaches every
// symbol's book history. On the real spot10 recording, with depth 250
// every frame has at most 250 levels per side and some have exactly 250
// on both sides; a symbol's last frame, when no update came after it,
// equals the top 250 of its live book. With the default, the same at 20.
func TestBookHistoryDepth(t *testing.T) {
	for _, depth := range []int{0, 250} {
		t.Run(fmt.Sprint(depth), func(t *testing.T) {
			want := depth
			if want == 0 {
				want = service.DefaultBookHistoryDepth
			}
			s, _ := runRecordingSource(t, service.Config{Symbols: wallSyms, BookHistoryDepth: depth, Logger: stacktest.Logger(t)})
			if s.Config().BookHistoryDepth != want {
				t.Fatalf("config depth %d, want %d", s.Config().BookHistoryDepth, want)
			}
			full, checked := 0, 0
			for _, name := range wallSyms {
				if err := s.ViewSymbol(name, func(sym *engine.Symbol) error {
					if sym.History == nil || sym.History.Len() == 0 {
						return fmt.Errorf("%s: no book history", name)
					}
					var last book.Frame
					for f := range sym.History.Range(0, 1<<62) {
						if len(f.Bids) > want || len(f.Asks) > want {
							return fmt.Errorf("%s: frame at %d with %d bids, %d asks; depth %d", name, f.Time, len(f.Bids), len(f.Asks), want)
						}
						if len(f.Bids) == want && len(f.Asks) == want {
							full++
						}
						last = f
					}
					// The last frame is the book's top when no update came
					// after it: compare it with the live book then.
					if b := sym.Book(); b.UpdateID() == last.UpdateID {
						var snap market.DepthSnapshot
						b.Snapshot(want, &snap)
						if !reflect.DeepEqual(snap.Bids, last.Bids) || !reflect.DeepEqual(snap.Asks, last.Asks) {
							return fmt.Errorf("%s: last frame differs from the book's top %d at update %d", name, want, last.UpdateID)
						}
						checked++
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			if full == 0 {
				t.Fatalf("no frame with %d levels on both sides", want)
			}
			t.Logf("depth %d: %d full frames, %d last frames checked against the book", want, full, checked)
		})
	}
}
