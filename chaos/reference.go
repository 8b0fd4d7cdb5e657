package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// refClient reads the simulator's REST API to build the reference the
// service is judged against. It decodes with encoding/json, independently
// of the binance package the service uses.
type refClient struct {
	hc   *http.Client
	base string // http://127.0.0.1:port
	kind market.Kind
}

func newRefClient(base string, kind market.Kind) *refClient {
	// A transport of its own, so its idle connections are closed at the end
	// of a scenario and never count as leaked goroutines.
	return &refClient{hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, base: base, kind: kind}
}

func (c *refClient) close() { c.hc.CloseIdleConnections() }

func (c *refClient) paths() (depth, aggTrades string) {
	if c.kind == market.USDM {
		return "/fapi/v1/depth", "/fapi/v1/aggTrades"
	}
	return "/api/v3/depth", "/api/v3/aggTrades"
}

func (c *refClient) get(ctx context.Context, path string, q url.Values, into any) error {
	u := c.base + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("reference GET %s: %w", u, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("reference GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reference GET %s: read body: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reference GET %s: HTTP %d: %.200s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("reference GET %s: decode: %w", u, err)
	}
	return nil
}

// restAgg is one aggregate trade as the REST API writes it.
type restAgg struct {
	A int64  `json:"a"`
	P string `json:"p"`
	Q string `json:"q"`
	F int64  `json:"f"`
	L int64  `json:"l"`
	T int64  `json:"T"`
	M bool   `json:"m"`
	// BestMatch is spot's "M". It must have a field of its own: encoding/json
	// matches keys without regard to case, so "M" would overwrite "m".
	BestMatch bool `json:"M"`
}

func (r *restAgg) trade(symbol string) (market.Trade, error) {
	p, err := fixed.ParseString(r.P)
	if err != nil {
		return market.Trade{}, fmt.Errorf("aggTrade %d field \"p\" %q: %w", r.A, r.P, err)
	}
	q, err := fixed.ParseString(r.Q)
	if err != nil {
		return market.Trade{}, fmt.Errorf("aggTrade %d field \"q\" %q: %w", r.A, r.Q, err)
	}
	return market.Trade{Symbol: symbol, ID: r.A, FirstID: r.F, LastID: r.L, Price: p, Qty: q, Time: r.T,
		BuyerMaker: r.M, Aggregated: true}, nil
}

// aggTrades returns every aggregate trade the simulator has published for
// symbol, oldest first, paging by id from the first.
func (c *refClient) aggTrades(ctx context.Context, symbol string) ([]market.Trade, error) {
	_, path := c.paths()
	var out []market.Trade
	from := int64(0)
	for {
		var page []restAgg
		q := url.Values{"symbol": {symbol}, "fromId": {strconv.FormatInt(from, 10)}, "limit": {"1000"}}
		if err := c.get(ctx, path, q, &page); err != nil {
			return nil, err
		}
		for i := range page {
			t, err := page[i].trade(symbol)
			if err != nil {
				return nil, fmt.Errorf("reference %s: %w", symbol, err)
			}
			if n := len(out); n > 0 && t.ID <= out[n-1].ID {
				return nil, fmt.Errorf("reference %s: aggTrade ids not increasing: %d after %d", symbol, t.ID, out[n-1].ID)
			}
			out = append(out, t)
		}
		if len(page) < 1000 {
			return out, nil
		}
		from = page[len(page)-1].A + 1
	}
}

// lastAggID returns the id of the latest published aggregate trade (0 if
// none).
func (c *refClient) lastAggID(ctx context.Context, symbol string) (int64, error) {
	_, path := c.paths()
	var page []restAgg
	if err := c.get(ctx, path, url.Values{"symbol": {symbol}, "limit": {"1"}}, &page); err != nil {
		return 0, err
	}
	if len(page) == 0 {
		return 0, nil
	}
	return page[0].A, nil
}

// refBook is a REST depth snapshot.
type refBook struct {
	LastUpdateID int64          `json:"lastUpdateId"`
	Bids         [][2]string    `json:"bids"`
	Asks         [][2]string    `json:"asks"`
	bids, asks   []market.Level // parsed
}

// depth returns the simulator's book for symbol, limit levels a side.
func (c *refClient) depth(ctx context.Context, symbol string, limit int) (*refBook, error) {
	path, _ := c.paths()
	var b refBook
	if err := c.get(ctx, path, url.Values{"symbol": {symbol}, "limit": {strconv.Itoa(limit)}}, &b); err != nil {
		return nil, err
	}
	for side, in := range [][][2]string{b.Bids, b.Asks} {
		for i, pq := range in {
			p, err := fixed.ParseString(pq[0])
			if err != nil {
				return nil, fmt.Errorf("reference depth %s: level %d price %q: %w", symbol, i, pq[0], err)
			}
			q, err := fixed.ParseString(pq[1])
			if err != nil {
				return nil, fmt.Errorf("reference depth %s: level %d qty %q: %w", symbol, i, pq[1], err)
			}
			if side == 0 {
				b.bids = append(b.bids, market.Level{Price: p, Qty: q})
			} else {
				b.asks = append(b.asks, market.Level{Price: p, Qty: q})
			}
		}
	}
	return &b, nil
}
