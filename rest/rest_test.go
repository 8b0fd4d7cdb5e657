package rest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/market"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// snapshotBody returns the one REST depth snapshot recorded in an hft file:
// the only line without a "stream" key.
func snapshotBody(tb testing.TB, name string) []byte {
	tb.Helper()
	f, err := os.Open("../testdata/binance/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"stream"`)) {
			continue
		}
		_, body, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			tb.Fatalf("%s: line without space", name)
		}
		return bytes.Clone(body)
	}
	tb.Fatalf("%s: no snapshot line (scan err %v)", name, sc.Err())
	return nil
}

// aggTradesBody turns the first n rows of the real data.binance.vision CSV
// into the JSON body /api/v3/aggTrades returns for them (same fields, times
// in ms as REST reports them).
func aggTradesBody(tb testing.TB, n int) []byte {
	tb.Helper()
	f, err := os.Open("../testdata/binance/vision-spot-btcusdt-aggTrades-2026-01-01-first5000.csv")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, r := range rows[:n] {
		if i > 0 {
			b.WriteByte(',')
		}
		us, _ := strconv.ParseInt(r[5], 10, 64)
		fmt.Fprintf(&b, `{"a":%s,"p":"%s","q":"%s","f":%s,"l":%s,"T":%d,"m":%s,"M":%s}`,
			r[0], r[1], r[2], r[3], r[4], us/1000, strings.ToLower(r[6]), strings.ToLower(r[7]))
	}
	b.WriteByte(']')
	return b.Bytes()
}

// memTransport serves requests from an http.Handler in memory, so a
// testing/synctest bubble (which cannot use real sockets) can run the client.
type memTransport struct{ h http.Handler }

func (t memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func memClient(t *testing.T, opts Options, h http.HandlerFunc) *Client {
	t.Helper()
	opts.BaseURL = "http://binance.test"
	opts.HTTPClient = &http.Client{Transport: memTransport{h}}
	opts.Logger = quiet
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serverTimeOK(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, `{"serverTime":%d}`, time.Now().UnixMilli())
}

func TestWeightLimiter(t *testing.T) {
	t.Run("BlocksUntilNextMinute", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := memClient(t, Options{WeightLimit: 3}, serverTimeOK)
			start := time.Now()
			for i := range 3 {
				if _, err := c.ServerTime(t.Context()); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			if d := time.Since(start); d != 0 {
				t.Fatalf("first 3 calls waited %v, want 0", d)
			}
			if _, err := c.ServerTime(t.Context()); err != nil {
				t.Fatal(err)
			}
			// The bubble starts at a minute boundary: the 4th call must wait
			// for exactly the next window.
			if d := time.Since(start); d != time.Minute {
				t.Fatalf("4th call waited %v, want 1m", d)
			}
			if s := c.Stats(); s.WeightWaits != 1 || s.WeightUsed != 1 || s.WeightLimit != 3 {
				t.Fatalf("stats %+v, want 1 wait, 1 used of 3", s)
			}
		})
	})
	t.Run("ServerHeaderCorrectsCount", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// Another process on the IP already spent 95 of 100.
			var used atomic.Int64
			used.Store(94)
			c := memClient(t, Options{WeightLimit: 100}, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.FormatInt(used.Add(1), 10))
				serverTimeOK(w, r)
			})
			if _, err := c.ServerTime(t.Context()); err != nil {
				t.Fatal(err)
			}
			if s := c.Stats(); s.WeightUsed != 95 {
				t.Fatalf("WeightUsed %d after header 95, want 95", s.WeightUsed)
			}
			start := time.Now()
			for range 5 {
				if _, err := c.ServerTime(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if d := time.Since(start); d != 0 {
				t.Fatalf("calls within budget waited %v", d)
			}
			if _, err := c.ServerTime(t.Context()); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d != time.Minute {
				t.Fatalf("call over budget waited %v, want 1m", d)
			}
		})
	})
	t.Run("WaitHonoursContext", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := memClient(t, Options{WeightLimit: 1}, serverTimeOK)
			if _, err := c.ServerTime(t.Context()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err := c.ServerTime(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err %v, want deadline exceeded", err)
			}
		})
	})
	t.Run("WeightAboveLimitRejected", func(t *testing.T) {
		var hits atomic.Int64
		c := memClient(t, Options{WeightLimit: 100}, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
		var snap market.DepthSnapshot
		err := c.DepthSnapshot(t.Context(), "BTCUSDT", 5000, &snap) // weight 250
		if err == nil || !strings.Contains(err.Error(), "exceeds the per-minute limit 100") || hits.Load() != 0 {
			t.Fatalf("err %v, hits %d: want a weight error and no request", err, hits.Load())
		}
	})
}

func TestRateLimited429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int64
		var hitTimes sync.Map
		c := memClient(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
			n := hits.Add(1)
			hitTimes.Store(n, time.Now())
			if n == 1 {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"code":-1003,"msg":"Too many requests."}`)
				return
			}
			serverTimeOK(w, r)
		})
		start := time.Now()
		if _, err := c.ServerTime(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 7*time.Second {
			t.Fatalf("retried after %v, want Retry-After 7s", d)
		}
		s := c.Stats()
		if s.RateLimited != 1 || s.Retries != 1 || hits.Load() != 2 {
			t.Fatalf("stats %+v hits %d: want 1 429, 1 retry, 2 hits", s, hits.Load())
		}
		want := []EndpointCount{{"/api/v3/time", 200, 1}, {"/api/v3/time", 429, 1}}
		if fmt.Sprint(s.Requests) != fmt.Sprint(want) {
			t.Fatalf("requests %v, want %v", s.Requests, want)
		}
	})
}

func TestPauseStopsAllRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Request A gets a 429 with Retry-After 30; B, started 1 s later,
		// must not reach the server before the pause ends either.
		var mu sync.Mutex
		var times []time.Duration
		start := time.Now()
		var first atomic.Bool
		c := memClient(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			times = append(times, time.Since(start))
			mu.Unlock()
			if first.CompareAndSwap(false, true) {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			serverTimeOK(w, r)
		})
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := c.ServerTime(t.Context()); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(time.Second)
		wg.Go(func() {
			if _, err := c.ServerTime(t.Context()); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		want := []time.Duration{0, 30 * time.Second, 30 * time.Second}
		if fmt.Sprint(times) != fmt.Sprint(want) {
			t.Fatalf("server hit at %v, want %v", times, want)
		}
	})
}

func TestBanned418(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		want       time.Duration
	}{
		{"RetryAfterHonoured", "120", 120 * time.Second},
		{"DefaultBackoffWithoutHeader", "", DefaultBanBackoff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int64
				c := memClient(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
					if hits.Add(1) == 1 {
						if tc.retryAfter != "" {
							w.Header().Set("Retry-After", tc.retryAfter)
						}
						w.WriteHeader(http.StatusTeapot)
						fmt.Fprint(w, `{"code":-1003,"msg":"Way too many requests; IP banned."}`)
						return
					}
					serverTimeOK(w, r)
				})
				start := time.Now()
				_, err := c.ServerTime(t.Context())
				var ban *BanError
				if !errors.As(err, &ban) || !ban.Until.Equal(start.Add(tc.want)) {
					t.Fatalf("err %v, want BanError until +%v", err, tc.want)
				}
				// During the ban nothing is sent and callers learn why at once.
				time.Sleep(tc.want - time.Second)
				_, err = c.ServerTime(t.Context())
				if !IsBanned(err) || hits.Load() != 1 {
					t.Fatalf("during ban: err %v, hits %d; want BanError and no request", err, hits.Load())
				}
				time.Sleep(time.Second)
				if _, err := c.ServerTime(t.Context()); err != nil {
					t.Fatalf("after ban: %v", err)
				}
				if s := c.Stats(); s.Banned != 1 || hits.Load() != 2 {
					t.Fatalf("stats %+v hits %d", s, hits.Load())
				}
			})
		})
	}
}

func TestServerErrorRetries(t *testing.T) {
	t.Run("RecoversWithinBackoffBounds", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var hits atomic.Int64
			c := memClient(t, Options{RetryMin: 100 * time.Millisecond, RetryMax: time.Second}, func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) <= 2 {
					http.Error(w, "upstream timeout", http.StatusGatewayTimeout)
					return
				}
				serverTimeOK(w, r)
			})
			start := time.Now()
			if _, err := c.ServerTime(t.Context()); err != nil {
				t.Fatal(err)
			}
			// Retry 1 waits in [100ms, 100ms], retry 2 in [100ms, 200ms].
			if d := time.Since(start); d < 200*time.Millisecond || d > 300*time.Millisecond {
				t.Fatalf("two retries took %v, want 200ms..300ms", d)
			}
			if s := c.Stats(); s.Retries != 2 || hits.Load() != 3 {
				t.Fatalf("stats %+v, hits %d", s, hits.Load())
			}
		})
	})
	t.Run("GivesUpAfterMaxAttempts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var hits atomic.Int64
			c := memClient(t, Options{MaxAttempts: 4}, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				http.Error(w, "boom", http.StatusInternalServerError)
			})
			_, err := c.ServerTime(t.Context())
			var se *StatusError
			if !errors.As(err, &se) || se.Status != 500 || !strings.Contains(err.Error(), "giving up after 4 attempts") {
				t.Fatalf("err %v", err)
			}
			if hits.Load() != 4 {
				t.Fatalf("server hit %d times, want 4", hits.Load())
			}
		})
	})
	t.Run("BackoffJitterBounds", func(t *testing.T) {
		c := memClient(t, Options{RetryMin: 100 * time.Millisecond, RetryMax: 2 * time.Second}, serverTimeOK)
		for attempt := 1; attempt <= 40; attempt++ {
			ceil := min(100*time.Millisecond<<(attempt-1), 2*time.Second)
			if attempt > 20 {
				ceil = 2 * time.Second
			}
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for range 2000 {
				d := c.backoff(attempt)
				lo, hi = min(lo, d), max(hi, d)
			}
			if lo < 100*time.Millisecond || hi > ceil {
				t.Fatalf("attempt %d: backoff in [%v,%v], want within [100ms,%v]", attempt, lo, hi, ceil)
			}
			// Full jitter: the draws must spread over the range, not stick
			// to one end.
			if ceil >= 400*time.Millisecond && (hi-lo) < (ceil-100*time.Millisecond)/2 {
				t.Fatalf("attempt %d: backoff spread [%v,%v] too narrow for ceiling %v", attempt, lo, hi, ceil)
			}
		}
	})
}

func TestSnapshotGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := snapshotBody(t, "hft-spot-btcusdt-20240808.txt.gz")
		var inflight, peak atomic.Int64
		var mu sync.Mutex
		var starts []time.Duration
		t0 := time.Now()
		c := memClient(t, Options{SnapshotGate: NewSnapshotGate(2, 100*time.Millisecond)}, func(w http.ResponseWriter, r *http.Request) {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			mu.Lock()
			starts = append(starts, time.Since(t0))
			mu.Unlock()
			time.Sleep(time.Second) // a slow snapshot
			w.Write(body)
		})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				var s market.DepthSnapshot
				if err := c.DepthSnapshot(t.Context(), "BTCUSDT", 1000, &s); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if peak.Load() != 2 {
			t.Fatalf("peak concurrent snapshots %d, want 2", peak.Load())
		}
		for i := 1; i < len(starts); i++ {
			if starts[i]-starts[i-1] < 100*time.Millisecond {
				t.Fatalf("starts %v: two within 100ms", starts)
			}
		}
		// 8 requests of 1 s, 2 at a time: 4 rounds.
		if d := time.Since(t0); d < 4*time.Second || d > 5*time.Second {
			t.Fatalf("8 snapshots took %v, want about 4s", d)
		}
	})
}

// realServer starts an httptest server on loopback serving h.
func realServer(t *testing.T, kind market.Kind, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Options{BaseURL: srv.URL, Market: kind, Logger: quiet, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

func TestDepthSnapshotRealBodies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		kind      market.Kind
		file      string
		limit     int
		wantPath  string
		wantLimit string
		wantID    int64
	}{
		{"SpotBTCUSDT", market.Spot, "hft-spot-btcusdt-20240808.txt.gz", 1000, "/api/v3/depth", "1000", 50093239218},
		{"SpotETHUSDT", market.Spot, "hft-spot-ethusdt-20240808.txt.gz", 1000, "/api/v3/depth", "1000", 35346513512},
		{"USDMBTCUSDTLimitNormalized", market.USDM, "hft-usdm-btcusdt-20240808.txt.gz", 999, "/fapi/v1/depth", "1000", 5123107852948},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := snapshotBody(t, tc.file)
			c := realServer(t, tc.kind, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != tc.wantPath || r.URL.Query().Get("symbol") != "BTCUSDT" || r.URL.Query().Get("limit") != tc.wantLimit {
					http.Error(w, `{"code":-1100,"msg":"bad request `+r.URL.String()+`"}`, 400)
					return
				}
				w.Header().Set("X-MBX-USED-WEIGHT-1M", "20")
				w.Write(body)
			})
			var snap market.DepthSnapshot
			if err := c.DepthSnapshot(t.Context(), "BTCUSDT", tc.limit, &snap); err != nil {
				t.Fatal(err)
			}
			if snap.LastUpdateID != tc.wantID || len(snap.Bids) != 1000 || len(snap.Asks) != 1000 || snap.Symbol != "BTCUSDT" {
				t.Fatalf("snapshot id %d, %d bids, %d asks, symbol %q", snap.LastUpdateID, len(snap.Bids), len(snap.Asks), snap.Symbol)
			}
			if snap.Bids[0].Price <= snap.Bids[1].Price || snap.Asks[0].Price >= snap.Asks[1].Price || snap.Bids[0].Price >= snap.Asks[0].Price {
				t.Fatalf("book order wrong: bids %v %v asks %v %v", snap.Bids[0], snap.Bids[1], snap.Asks[0], snap.Asks[1])
			}
			if s := c.Stats(); s.WeightUsed != 20 || len(s.Requests) != 1 || s.Requests[0] != (EndpointCount{tc.wantPath, 200, 1}) {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestAggTrades(t *testing.T) {
	body := aggTradesBody(t, 1000)
	var gotQuery atomic.Value
	c := realServer(t, market.Spot, func(w http.ResponseWriter, r *http.Request) {
		gotQuery.Store(r.URL.Path + "?" + r.URL.RawQuery)
		w.Write(body)
	})
	trades, err := c.AggTrades(t.Context(), "BTCUSDT", AggTradesQuery{FromID: new(int64(3800397495)), Limit: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q := gotQuery.Load(); q != "/api/v3/aggTrades?fromId=3800397495&limit=1000&symbol=BTCUSDT" {
		t.Fatalf("query %v", q)
	}
	if len(trades) != 1000 || trades[0].ID != 3800397495 || trades[999].ID != 3800397495+999 {
		t.Fatalf("%d trades, ids %d..%d", len(trades), trades[0].ID, trades[len(trades)-1].ID)
	}
	for i := 1; i < len(trades); i++ {
		if trades[i].FirstID != trades[i-1].LastID+1 {
			t.Fatalf("trade %d: first id %d after last id %d", i, trades[i].FirstID, trades[i-1].LastID)
		}
	}
	if trades[0].Price.String() != "87648.21" || trades[0].BuyerMaker != true || trades[0].Time != 1767225600039 {
		t.Fatalf("first trade %+v", trades[0])
	}
}

func TestRequestErrors(t *testing.T) {
	snap := snapshotBody(t, "hft-spot-btcusdt-20240808.txt.gz")
	for _, tc := range []struct {
		name    string
		call    func(*Client) error
		handler http.HandlerFunc
		check   func(error) bool
		want    string
	}{
		{
			name: "APIErrorInvalidSymbol",
			call: func(c *Client) error {
				var s market.DepthSnapshot
				return c.DepthSnapshot(context.Background(), "NOPE", 100, &s)
			},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(400)
				fmt.Fprint(w, `{"code":-1121,"msg":"Invalid symbol."}`)
			},
			check: func(err error) bool {
				var ae *binance.APIError
				return errors.As(err, &ae) && ae.Code == -1121
			},
			want: "GET /api/v3/depth?limit=100&symbol=NOPE",
		},
		{
			name:    "NonJSON404",
			call:    func(c *Client) error { _, err := c.ServerTime(context.Background()); return err },
			handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			check: func(err error) bool {
				var se *StatusError
				return errors.As(err, &se) && se.Status == 404
			},
			want: "HTTP 404",
		},
		{
			name: "TruncatedSnapshotBody",
			call: func(c *Client) error {
				var s market.DepthSnapshot
				return c.DepthSnapshot(context.Background(), "BTCUSDT", 1000, &s)
			},
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write(snap[:len(snap)/2]) },
			check:   func(err error) bool { return err != nil },
			want:    "GET /api/v3/depth?limit=1000&symbol=BTCUSDT: decode body",
		},
		{
			name:    "ServerTimeMissingField",
			call:    func(c *Client) error { _, err := c.ServerTime(context.Background()); return err },
			handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) },
			check:   func(err error) bool { return err != nil },
			want:    `field "serverTime" missing`,
		},
		{
			name: "InvalidSymbolNotSent",
			call: func(c *Client) error {
				_, err := c.AggTrades(context.Background(), "btc/usdt", AggTradesQuery{}, nil)
				return err
			},
			handler: func(w http.ResponseWriter, r *http.Request) { panic("must not be called") },
			check:   func(err error) bool { return err != nil },
			want:    `invalid character 'b' at offset 0`,
		},
		{
			name: "AggTradesWindowTooLong",
			call: func(c *Client) error {
				_, err := c.AggTrades(context.Background(), "BTCUSDT", AggTradesQuery{StartTime: 1, EndTime: 2 + 3600_000}, nil)
				return err
			},
			handler: func(w http.ResponseWriter, r *http.Request) { panic("must not be called") },
			check:   func(err error) bool { return err != nil },
			want:    "must be 0..1 h",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := realServer(t, market.Spot, tc.handler)
			err := tc.call(c)
			if !tc.check(err) || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestContextCancel(t *testing.T) {
	t.Run("MidRequest", func(t *testing.T) {
		release := make(chan struct{})
		c := realServer(t, market.Spot, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		defer close(release)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.ServerTime(ctx)
		if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
			t.Fatalf("err %v after %v, want prompt context.Canceled", err, time.Since(start))
		}
	})
	t.Run("DuringRetryBackoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := memClient(t, Options{RetryMin: time.Minute, RetryMax: time.Hour}, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(503)
			})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := c.ServerTime(ctx)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "HTTP 503") {
				t.Fatalf("err %v, want deadline exceeded naming the last 503", err)
			}
		})
	})
}

func TestTransportErrorRetried(t *testing.T) {
	var hits atomic.Int64
	c := realServer(t, market.Spot, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			// Drop the connection without an answer: outcome unknown.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		serverTimeOK(w, r)
	})
	if _, err := c.ServerTime(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if hits.Load() != 2 || s.Retries != 1 || fmt.Sprint(s.Requests) != "[{/api/v3/time 0 1} {/api/v3/time 200 1}]" {
		t.Fatalf("hits %d stats %+v", hits.Load(), s)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	for _, tc := range []struct {
		name, v string
		want    time.Duration
	}{
		{"Seconds", "12", 12 * time.Second},
		{"Absent", "", 3 * time.Second},
		{"Garbage", "soon", 3 * time.Second},
		{"Negative", "-5", 3 * time.Second},
		{"Huge", "99999999999", 7 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.v != "" {
				h.Set("Retry-After", tc.v)
			}
			if got := retryAfter(h, 3*time.Second); got != tc.want {
				t.Fatalf("retryAfter(%q) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

// BenchmarkDepthSnapshot measures a 1000-level real spot snapshot through
// the client (limiter, gate, in-memory transport, decode).
func BenchmarkDepthSnapshot(b *testing.B) {
	body := snapshotBody(b, "hft-spot-btcusdt-20240808.txt.gz")
	c, err := New(Options{
		BaseURL: "http://binance.test", Logger: quiet, WeightLimit: 1 << 30,
		HTTPClient:   &http.Client{Transport: memTransport{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })}},
		SnapshotGate: NewSnapshotGate(1, 0),
	})
	if err != nil {
		b.Fatal(err)
	}
	var snap market.DepthSnapshot
	b.ReportAllocs()
	for b.Loop() {
		if err := c.DepthSnapshot(context.Background(), "BTCUSDT", 1000, &snap); err != nil {
			b.Fatal(err)
		}
	}
}
