package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/service"
)

// FuzzQueryParams sends arbitrary paths and query strings to every GET
// route of an API whose service is not running (parameters are checked
// before the service is asked). Whatever comes in, the answer is never a
// 500 and never a panic, and every error is the documented JSON shape with
// a stable code.
func FuzzQueryParams(f *testing.F) {
	svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}})
	if err != nil {
		f.Fatal(err)
	}
	a := api.New(svc, api.Options{RateLimit: -1})
	f.Cleanup(a.Close)
	var routes []string
	for _, r := range a.Routes() {
		if strings.HasPrefix(r, "GET /v1/symbols/{symbol}/") {
			routes = append(routes, strings.TrimPrefix(r, "GET "))
		}
	}
	if len(routes) == 0 {
		f.Fatal("no symbol routes registered")
	}
	for _, seed := range []struct {
		route uint8
		sym   string
		query string
	}{
		{0, "BTCUSDT", "window=5m"},
		{1, "btcusdt", "interval=1m&limit=10&footprint=true"},
		{2, "BTCUSDT", "from=-1&to=99999999999999999999"},
		{3, "", "limit=%zz"},
		{4, "BTC USDT", "min_notional=1e5&side=buy"},
		{5, "BTCUSDT", "depth=0&bands=10,25,x"},
		{6, "ETHUSDT", "since=1&since=2"},
	} {
		f.Add(seed.route, seed.sym, seed.query)
	}
	f.Fuzz(func(t *testing.T, route uint8, sym, query string) {
		path := strings.Replace(routes[int(route)%len(routes)], "{symbol}", url.PathEscape(sym), 1)
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1"+path+"?"+query, nil)
		if err != nil {
			return // not a request a client could send
		}
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable && rec.Code != http.StatusNotImplemented {
			t.Fatalf("GET %s?%s: status %d: %s", path, query, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code == "" {
				t.Fatalf("GET %s?%s: status %d with a body that is not the error shape: %q", path, query, rec.Code, rec.Body)
			}
		}
	})
}
