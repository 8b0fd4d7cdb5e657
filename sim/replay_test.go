package sim

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// published returns the recorded frames the simulator must publish for a
// symbol: those after the bridge event, the first depth event that reaches
// the snapshot by Binance's documented sync procedure.
func published(t *testing.T, kind market.Kind, lid int64, frames []recorded) []recorded {
	t.Helper()
	for i, f := range frames {
		if !strings.Contains(f.stream, "@depth") {
			continue
		}
		var d struct {
			U int64 `json:"U"`
			u int64
			L int64 `json:"u"`
		}
		if err := json.Unmarshal(f.data, &d); err != nil {
			t.Fatal(err)
		}
		if (kind == market.Spot && d.L > lid) || (kind == market.USDM && d.L >= lid) {
			return frames[i+1:]
		}
	}
	t.Fatal("no bridge event")
	return nil
}

// TestFramesMatchRecording checks that every stream of a symbol carries,
// in order, the recorded events after the sync point, with the same values.
func TestFramesMatchRecording(t *testing.T) {
	cases := []struct {
		name   string
		file   string
		kind   market.Kind
		symbol string
		paths  []string
		speed  float64
	}{
		{"SpotCombinedPaced", spot10, market.Spot, "DENTUSDT",
			[]string{"/stream?streams=dentusdt@depth@100ms/dentusdt@aggTrade/dentusdt@bookTicker"}, 500},
		{"USDMPublicAndMarketUnpaced", usdm5, market.USDM, "NEOUSDT",
			[]string{"/public/stream?streams=neousdt@depth@100ms/neousdt@bookTicker", "/market/stream?streams=neousdt@aggTrade"}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lid, frames, _ := readRecording(t, tc.file, tc.symbol)
			want := map[string][]json.RawMessage{}
			total := 0
			for _, f := range published(t, tc.kind, lid, frames) {
				want[f.stream] = append(want[f.stream], f.data)
				total++
			}
			s := mustStart(t, Config{Recording: mustLoad(t, tc.file), Speed: tc.speed, Paused: true})
			got := map[string][]json.RawMessage{}
			done := make(chan error, len(tc.paths))
			for _, p := range tc.paths {
				c := mustDial(t, s, p)
				go func() {
					var lastE int64
					for {
						_, b, err := c.Read(t.Context())
						if err != nil {
							done <- nil
							return
						}
						e := mustEnvelope(t, b)
						var ev struct {
							E int64 `json:"E"`
						}
						_ = json.Unmarshal(e.Data, &ev)
						if ev.E != 0 && ev.E < lastE && !strings.Contains(e.Stream, "bookTicker") {
							done <- fmt.Errorf("event time went back: %d after %d on %s", ev.E, lastE, e.Stream)
							return
						}
						lastE = max(lastE, ev.E)
						recMu.Lock()
						got[e.Stream] = append(got[e.Stream], e.Data)
						recMu.Unlock()
					}
				}()
			}
			s.Play()
			select {
			case <-s.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("replay did not finish")
			}
			waitFor(t, 5*time.Second, "all frames", func() bool {
				recMu.Lock()
				defer recMu.Unlock()
				n := 0
				for _, v := range got {
					n += len(v)
				}
				return n >= total
			})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			for range tc.paths {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("streams: got %d, want %d", len(got), len(want))
			}
			for st, w := range want {
				g := got[st]
				if len(g) != len(w) {
					t.Fatalf("%s: got %d frames, want %d", st, len(g), len(w))
				}
				for i := range w {
					if !reflect.DeepEqual(generic(t, g[i]), generic(t, w[i])) {
						t.Fatalf("%s frame %d:\n got %s\nwant %s", st, i, g[i], w[i])
					}
				}
			}
			st := s.Stats()
			if st.FramesDropped != 0 {
				t.Errorf("dropped %d frames", st.FramesDropped)
			}
			t.Logf("%d frames on %d streams match; stats %+v", total, len(want), st.FramesSent)
		})
	}
}

// TestDerivedAggTrades checks the aggTrades the simulator derives from a
// recording with only @trade against groups recomputed from the raw trades
// it serves, and the REST history against the stream.
func TestDerivedAggTrades(t *testing.T) {
	s := mustStart(t, Config{Recording: mustLoad(t, "hft-usdm-btcusdt-20240808.txt.gz"), Speed: -1, Paused: true})
	c := mustDial(t, s, "/market/stream?streams=btcusdt@trade/btcusdt@aggTrade")
	type tr struct {
		ID int64  `json:"t"`
		A  int64  `json:"a"`
		F  int64  `json:"f"`
		L  int64  `json:"l"`
		P  string `json:"p"`
		Q  string `json:"q"`
		T  int64  `json:"T"`
		M  bool   `json:"m"`
	}
	var trades, aggs []tr
	s.Play()
	wantTrades, wantAggs := len(s.rec.syms[0].trades), len(s.rec.syms[0].aggs)
	for len(trades) < wantTrades || len(aggs) < wantAggs {
		e := mustEnvelope(t, readMsg(t, c, 10*time.Second))
		var x tr
		if err := json.Unmarshal(e.Data, &x); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.Stream, "@aggTrade") {
			aggs = append(aggs, x)
		} else {
			trades = append(trades, x)
		}
	}
	if wantTrades != 21309 { // SOURCES.md: 21,313 trades, 4 before the sync point
		t.Errorf("trades published = %d, want 21309", wantTrades)
	}
	// Independent grouping: a plain loop over the raw trades.
	var groups []tr
	for _, x := range trades {
		q := fixed.MustParse(x.Q)
		if n := len(groups); n > 0 && groups[n-1].T == x.T && groups[n-1].P == x.P && groups[n-1].M == x.M && groups[n-1].L+1 == x.ID {
			g := &groups[n-1]
			g.L = x.ID
			g.Q = (fixed.MustParse(g.Q) + q).String()
			continue
		}
		groups = append(groups, tr{F: x.ID, L: x.ID, P: x.P, Q: q.String(), T: x.T, M: x.M})
	}
	if len(groups) != len(aggs) {
		t.Fatalf("groups: recomputed %d, served %d", len(groups), len(aggs))
	}
	for i, a := range aggs {
		g := groups[i]
		if a.F != g.F || a.L != g.L || a.P != g.P || fixed.MustParse(a.Q) != fixed.MustParse(g.Q) || a.T != g.T || a.M != g.M {
			t.Fatalf("aggTrade %d = %+v, recomputed %+v", i, a, g)
		}
		if want := trades[0].ID + int64(i); a.A != want {
			t.Fatalf("aggTrade %d id = %d, want %d (consecutive from the first trade id)", i, a.A, want)
		}
	}
	// REST history from an id in the middle equals the stream.
	from := aggs[5000].A
	resp, body := httpGet(t, s, fmt.Sprintf("/fapi/v1/aggTrades?symbol=BTCUSDT&fromId=%d&limit=1000", from))
	if resp.StatusCode != 200 {
		t.Fatalf("aggTrades: %d %s", resp.StatusCode, body)
	}
	var rest []tr
	if err := json.Unmarshal(body, &rest); err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1000 {
		t.Fatalf("aggTrades returned %d, want 1000", len(rest))
	}
	for i, r := range rest {
		if r != aggs[5000+i] {
			t.Fatalf("REST aggTrade %d = %+v, stream %+v", i, r, aggs[5000+i])
		}
	}
	// Time window: every served trade in [T, T+10ms].
	t0 := aggs[100].T
	_, body = httpGet(t, s, fmt.Sprintf("/fapi/v1/aggTrades?symbol=BTCUSDT&startTime=%d&endTime=%d", t0, t0+10))
	rest = nil
	if err := json.Unmarshal(body, &rest); err != nil {
		t.Fatal(err)
	}
	var want []tr
	for _, a := range aggs {
		if a.T >= t0 && a.T <= t0+10 {
			want = append(want, a)
		}
	}
	if !reflect.DeepEqual(rest, want) {
		t.Fatalf("time window: got %d trades, want %d", len(rest), len(want))
	}
}
