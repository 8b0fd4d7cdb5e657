package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/market"
)

// TestRESTSnapshotSyncsBook runs the project's own client pieces (binance
// decoder, book.Syncer) against the simulator: the REST snapshot plus the
// diffs after it must sync a book whose best bid and ask equal the served
// bookTicker frames at every comparable update id, with no resync after
// the initial one, across loop rounds too.
func TestRESTSnapshotSyncsBook(t *testing.T) {
	cases := []struct {
		name, file, symbol string
		kind               market.Kind
		loop               bool
		rounds             int
	}{
		{"SpotOneRound", spot10, "ZILUSDT", market.Spot, false, 1},
		{"USDMOneRound", usdm5, "SANDUSDT", market.USDM, false, 1},
		{"SpotLoopThreeRounds", spot10, "DENTUSDT", market.Spot, true, 3},
		{"USDMLoopThreeRounds", usdm5, "NEOUSDT", market.USDM, true, 3},
		{"SpotFanoutCopyLoop", spot10, "MANA0002USDT", market.Spot, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := mustLoad(t, tc.file)
			s := mustStart(t, Config{Recording: rec, Speed: -1, Loop: tc.loop, Fanout: 3, Paused: true,
				SendQueue: 8}) // unpaced with a short queue: the replay stays just ahead of the reader)
			lower := strings.ToLower(tc.symbol)
			prefix, rest := "", "/api/v3/depth"
			if tc.kind == market.USDM {
				prefix, rest = "/public", "/fapi/v1/depth"
			}
			c := mustDial(t, s, prefix+"/stream?streams="+lower+"@depth@100ms/"+lower+"@bookTicker")
			cs := s.bySym[tc.symbol]
			perRound := len(cs.ss.src.depth)
			wantDepth := tc.rounds*perRound + tc.rounds - 1 // + one transition per later round
			syncer := book.NewSyncer(tc.kind, book.SyncOptions{})
			dec := binance.NewDecoder()
			var m binance.Message
			type bbo struct{ bid, ask market.Level }
			atID := map[int64]bbo{}
			var tickers []market.BookTicker
			depth, snapshots := 0, 0
			var lastU int64
			s.Play()
			for depth < wantDepth {
				b := readMsg(t, c, 10*time.Second)
				if err := dec.Decode(b, &m); err != nil {
					t.Fatalf("decode: %v: %.200s", err, b)
				}
				switch m.Kind {
				case binance.KindBookTicker:
					if m.Ticker.Symbol != tc.symbol {
						t.Fatalf("ticker for %s on %s", m.Ticker.Symbol, tc.symbol)
					}
					tickers = append(tickers, m.Ticker)
					continue
				case binance.KindDepthUpdate:
				default:
					t.Fatalf("unexpected %s frame", m.Kind)
				}
				depth++
				if m.Depth.Symbol != tc.symbol {
					t.Fatalf("depth for %s on %s", m.Depth.Symbol, tc.symbol)
				}
				if m.Depth.FinalID <= lastU {
					t.Fatalf("depth u went from %d to %d", lastU, m.Depth.FinalID)
				}
				lastU = m.Depth.FinalID
				res := syncer.OnUpdate(&m.Depth)
				if res.Action == book.NeedSnapshot {
					snapshots++
					if snapshots > 1 {
						t.Fatalf("resync needed (%s) at depth event %d: the simulator served a gap", res.Cause, depth)
					}
					resp, body := httpGet(t, s, rest+"?symbol="+tc.symbol+"&limit=1000")
					if resp.StatusCode != 200 {
						t.Fatalf("snapshot: %d %s", resp.StatusCode, body)
					}
					var snap market.DepthSnapshot
					if err := binance.DecodeDepthSnapshot(body, &snap); err != nil {
						t.Fatal(err)
					}
					res = syncer.OnSnapshot(&snap)
				}
				if res.Action == book.NeedSnapshot || (res.Action == book.Ignored && res.Cause != book.CauseStale) {
					t.Fatalf("syncer: %s (%s) %v", res.Action, res.Cause, res.Err)
				}
				if syncer.Synced() {
					bk := syncer.Book()
					bid, _ := bk.BestBid()
					ask, _ := bk.BestAsk()
					atID[bk.UpdateID()] = bbo{bid, ask}
				}
			}
			if !syncer.Synced() {
				t.Fatal("never synced")
			}
			compared := 0
			for _, tk := range tickers {
				b, ok := atID[tk.UpdateID]
				if !ok {
					continue
				}
				compared++
				if b.bid.Price != tk.BidPrice || b.bid.Qty != tk.BidQty || b.ask.Price != tk.AskPrice || b.ask.Qty != tk.AskQty {
					t.Fatalf("at u=%d book best %v/%v, bookTicker %v %v / %v %v", tk.UpdateID, b.bid, b.ask, tk.BidPrice, tk.BidQty, tk.AskPrice, tk.AskQty)
				}
			}
			t.Logf("tickers %d atID %d first ticker u %v", len(tickers), len(atID), tickers[0].UpdateID)
			if compared < 20*tc.rounds {
				t.Fatalf("only %d bookTickers comparable", compared)
			}
			st := syncer.Stats()
			t.Logf("%d depth events, %d tickers compared, syncer stats %+v, sim transitions %d", depth, compared, st, s.Stats().Transitions)
		})
	}
}

// TestLoopIDsIncrease checks that trade and aggregate ids and event times
// keep increasing across loop rounds.
func TestLoopIDsIncrease(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, spot10), Speed: -1, Loop: true, Paused: true})
	c := mustDial(t, s, "/ws/dentusdt@aggTrade")
	n := len(s.bySym["DENTUSDT"].ss.src.aggs)
	dec := binance.NewDecoder()
	var m binance.Message
	var prev market.Trade
	s.Play()
	for i := range 3*n + 1 {
		if err := dec.Decode(readMsg(t, c, 10*time.Second), &m); err != nil {
			t.Fatal(err)
		}
		tr := m.Trade
		if i > 0 && (tr.ID != prev.ID+1 || tr.FirstID != prev.LastID+1 || tr.Time < prev.Time) {
			t.Fatalf("aggTrade %d: id %d first %d time %d after id %d last %d time %d", i, tr.ID, tr.FirstID, tr.Time, prev.ID, prev.LastID, prev.Time)
		}
		prev = tr
	}
	if r := s.Stats().Rounds; r < 3 {
		t.Fatalf("rounds = %d after reading three rounds", r)
	}
}
