package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/service"
)

// stoppedAPI serves the API of a service that was never started: the
// health, limit and CORS edges need no data.
func stoppedAPI(t *testing.T, opts api.Options) *httptest.Server {
	t.Helper()
	svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}})
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	a := api.New(svc, opts)
	hs := httptest.NewServer(a)
	t.Cleanup(func() {
		a.Close()
		hs.Close()
	})
	return hs
}

func do(t *testing.T, method, url string, hdr map[string]string) (*http.Response, apiErr) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiErr
	_ = json.Unmarshal(b, &e)
	return resp, e
}

func TestHealthOfAStoppedService(t *testing.T) {
	hs := stoppedAPI(t, api.Options{})
	cases := []struct {
		name, path string
		status     int
		code       string
	}{
		{"AliveAlways", "/healthz", 200, ""},
		{"NotReady", "/readyz", 503, ""},
		{"MetricsNotRunning", "/v1/symbols/BTCUSDT/metrics", 503, "not_running"},
		{"BookNotRunning", "/v1/symbols/BTCUSDT/book", 503, "not_running"},
		{"SymbolsStillListed", "/v1/symbols", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, e := do(t, "GET", hs.URL+c.path, nil)
			if resp.StatusCode != c.status || e.Error.Code != c.code {
				t.Errorf("%d %+v, want %d %q", resp.StatusCode, e.Error, c.status, c.code)
			}
		})
	}
}

func TestRateLimitPerClient(t *testing.T) {
	hs := stoppedAPI(t, api.Options{RateLimit: 1, RateBurst: 3})
	for i := 0; i < 3; i++ {
		if resp, _ := do(t, "GET", hs.URL+"/v1/symbols", nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d within the burst", i, resp.StatusCode)
		}
	}
	resp, e := do(t, "GET", hs.URL+"/v1/symbols", nil)
	if resp.StatusCode != http.StatusTooManyRequests || e.Error.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th request: %d %+v Retry-After %q", resp.StatusCode, e.Error, resp.Header.Get("Retry-After"))
	}
	// Health checks are never limited: orchestrators must always get in.
	if resp, _ := do(t, "GET", hs.URL+"/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("healthz limited: %d", resp.StatusCode)
	}
}

// TestRateLimitRefill checks the bucket's refill in a synctest bubble: the
// clock is fake, so the test takes no time.
func TestRateLimitRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}})
		if err != nil {
			t.Fatal(err)
		}
		a := api.New(svc, api.Options{RateLimit: 2, RateBurst: 2, Logger: slog.New(slog.DiscardHandler)})
		defer a.Close()
		get := func() int {
			req := httptest.NewRequest("GET", "/v1/symbols", nil)
			w := httptest.NewRecorder()
			a.ServeHTTP(w, req)
			return w.Code
		}
		if get() != 200 || get() != 200 || get() != 429 {
			t.Fatal("burst of 2 not enforced")
		}
		time.Sleep(500 * time.Millisecond) // one token at 2/s
		if c := get(); c != 200 {
			t.Fatalf("after 0.5s: %d", c)
		}
		if c := get(); c != 429 {
			t.Fatalf("second after 0.5s: %d", c)
		}
		time.Sleep(10 * time.Second) // refills to the burst, not beyond
		if get() != 200 || get() != 200 || get() != 429 {
			t.Fatal("refill went beyond the burst")
		}
	})
}

func TestCORS(t *testing.T) {
	cases := []struct {
		name    string
		origins []string
		origin  string
		method  string
		want    string // Access-Control-Allow-Origin
		status  int
	}{
		{"OffByDefault", nil, "https://evil.example", "GET", "", 200},
		{"Allowed", []string{"https://app.example"}, "https://app.example", "GET", "https://app.example", 200},
		{"OtherOrigin", []string{"https://app.example"}, "https://evil.example", "GET", "", 200},
		{"Preflight", []string{"https://app.example"}, "https://app.example", "OPTIONS", "https://app.example", 204},
		{"PreflightOtherOrigin", []string{"https://app.example"}, "https://evil.example", "OPTIONS", "", 401},
		{"Any", []string{"*"}, "https://x.example", "GET", "https://x.example", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hs := stoppedAPI(t, api.Options{CORSOrigins: c.origins, Token: "tok"})
			hdr := map[string]string{"Origin": c.origin}
			if c.method == "OPTIONS" {
				hdr["Access-Control-Request-Method"] = "GET"
			} else {
				hdr["Authorization"] = "Bearer tok"
			}
			resp, _ := do(t, c.method, hs.URL+"/v1/symbols", hdr)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != c.want || resp.StatusCode != c.status {
				t.Errorf("%d, Allow-Origin %q; want %d, %q", resp.StatusCode, got, c.status, c.want)
			}
			if c.status == 204 && !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("preflight does not allow the Authorization header")
			}
		})
	}
}
