// Package rest is orderflow's client for Binance's public market-data REST
// API (spot /api/v3 and USD-M futures /fapi/v1): depth snapshots, aggregate
// trades for backfill, exchangeInfo and server time. It is pointed at live
// Binance by default and at the project's loopback simulator in tests, with
// the same code.
//
// Concurrency: a Client is safe for concurrent use. All its requests share
// one request-weight limiter (reserve before sending, corrected by the
// server's X-MBX-USED-WEIGHT-1M header), one 429 pause and one 418 ban, so
// many goroutines cannot stampede Binance between them; depth snapshots also
// pass a SnapshotGate. The client starts no goroutine of its own.
//
// Binance documentation: spot "General API Information" / "LIMITS"
// (https://developers.binance.com/docs/binance-spot-api-docs/rest-api) and
// USD-M "General Info" (https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info).
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/market"
)

// Defaults used when an Options field is zero.
const (
	DefaultSpotWeightLimit = binance.SpotWeightPerMinute // spot REQUEST_WEIGHT per minute per IP
	DefaultUSDMWeightLimit = binance.USDMWeightPerMinute // USD-M REQUEST_WEIGHT per minute per IP
	DefaultTimeout         = 10 * time.Second
	DefaultMaxAttempts     = 5
	DefaultRetryMin        = 250 * time.Millisecond
	DefaultRetryMax        = 10 * time.Second
	// DefaultBanBackoff is how long requests stop after a 418 that carries
	// no Retry-After: Binance bans for 2 minutes to 3 days, so start long.
	DefaultBanBackoff = 5 * time.Minute
	// DefaultRateLimitPause is the pause after a 429 without Retry-After.
	DefaultRateLimitPause = 10 * time.Second
	// maxBody bounds a response body; spot exchangeInfo is the largest at a
	// few MB.
	maxBody = 64 << 20
)

// Options configure a Client. The zero value means live Binance spot with the
// defaults documented on each field.
type Options struct {
	// BaseURL is the REST root, e.g. "https://api.binance.com" or a
	// simulator's "http://127.0.0.1:port". Default: binance.DefaultEndpoints(Market).REST.
	BaseURL string
	// Market selects spot or USD-M paths, weights and limits.
	Market market.Kind
	// HTTPClient sends the requests. Default: a client with no overall
	// timeout (each attempt gets Timeout).
	HTTPClient *http.Client
	// Logger receives retries, pauses and bans. Default: slog.Default().
	Logger *slog.Logger
	// WeightLimit is the request weight per minute this client may spend.
	// Default 6000 (spot) or 2400 (USD-M); set it lower to leave room for
	// other processes on the same IP.
	WeightLimit int
	// Timeout bounds one HTTP attempt. Default 10 s.
	Timeout time.Duration
	// MaxAttempts bounds the tries of one call (5xx, transport errors, 429).
	// Default 5.
	MaxAttempts int
	// RetryMin and RetryMax bound the exponential backoff with full jitter
	// between retries after a 5xx or transport error. Defaults 250 ms, 10 s.
	RetryMin, RetryMax time.Duration
	// BanBackoff is how long to stop after a 418 without Retry-After.
	// Default 5 min.
	BanBackoff time.Duration
	// SnapshotGate serializes depth snapshots. Default: a gate of this
	// client's own with 2 concurrent requests and 250 ms between starts.
	// Share one gate between clients to spread them together.
	SnapshotGate *SnapshotGate
}

// Client talks to one Binance REST API (spot or USD-M). Create it with New.
type Client struct {
	base    string
	kind    market.Kind
	hc      *http.Client
	log     *slog.Logger
	opts    Options
	lim     *weightLimiter
	gate    *SnapshotGate
	paths   paths
	bufPool sync.Pool

	statMu  sync.Mutex
	counts  map[statKey]uint64
	retries uint64
	limited uint64 // 429s
	banned  uint64 // 418s
}

type statKey struct {
	endpoint string
	status   int
}

// paths are the market-data endpoints and their fixed weights. Depth weight
// depends on the limit: binance.DepthWeight.
type paths struct {
	depth, aggTrades, exchangeInfo, time string
	aggTradesWeight, exchangeInfoWeight  int
}

// marketPaths completes binance.RESTPaths with the time endpoint and the
// fixed weights: exchangeInfo weighs 20 on spot, 1 on USD-M; time 1 on both
// (spot rest-api.md, USD-M market-data docs).
var marketPaths = map[market.Kind]paths{
	market.Spot: {binance.SpotDepthPath, binance.SpotAggTradesPath, binance.SpotExchangeInfoPath, "/api/v3/time", binance.AggTradesWeight(market.Spot), 20},
	market.USDM: {binance.USDMDepthPath, binance.USDMAggTradesPath, binance.USDMExchangeInfoPath, "/fapi/v1/time", binance.AggTradesWeight(market.USDM), 1},
}

// New returns a Client for opts.
func New(opts Options) (*Client, error) {
	p, ok := marketPaths[opts.Market]
	if !ok {
		return nil, fmt.Errorf("rest: unknown market %v", opts.Market)
	}
	if opts.BaseURL == "" {
		opts.BaseURL = binance.DefaultEndpoints(opts.Market).REST
	}
	u, err := url.Parse(opts.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rest: BaseURL %q: want http(s)://host[:port]", opts.BaseURL)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WeightLimit <= 0 {
		opts.WeightLimit = DefaultSpotWeightLimit
		if opts.Market == market.USDM {
			opts.WeightLimit = DefaultUSDMWeightLimit
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(DefaultRetryMax, opts.RetryMin)
	}
	if opts.BanBackoff <= 0 {
		opts.BanBackoff = DefaultBanBackoff
	}
	gate := opts.SnapshotGate
	if gate == nil {
		gate = NewSnapshotGate(2, 250*time.Millisecond)
	}
	return &Client{
		base:   strings.TrimRight(opts.BaseURL, "/"),
		kind:   opts.Market,
		hc:     opts.HTTPClient,
		log:    opts.Logger,
		opts:   opts,
		lim:    newWeightLimiter(opts.WeightLimit),
		gate:   gate,
		paths:  p,
		counts: make(map[statKey]uint64),
	}, nil
}

// validSymbol checks a Binance symbol: upper-case letters and digits.
func validSymbol(s string) error {
	if s == "" || len(s) > 32 {
		return fmt.Errorf("rest: symbol %q: want 1 to 32 upper-case letters or digits", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return fmt.Errorf("rest: symbol %q: invalid character %q at offset %d", s, c, i)
		}
	}
	return nil
}

// DepthSnapshot fetches the order book of symbol with limit levels per side
// into dst (its slices are reused). The limit is normalized to a value the
// market accepts (binance.ValidDepthLimit: spot up to 5000, USD-M one of
// 5..1000); its weight is binance.DepthWeight. The request passes the
// SnapshotGate first.
func (c *Client) DepthSnapshot(ctx context.Context, symbol string, limit int, dst *market.DepthSnapshot) error {
	if err := validSymbol(symbol); err != nil {
		return err
	}
	limit = binance.ValidDepthLimit(c.kind, limit)
	release, err := c.gate.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rest: depth %s: waiting for snapshot gate: %w", symbol, err)
	}
	defer release()
	q := url.Values{"symbol": {symbol}, "limit": {strconv.Itoa(limit)}}
	buf := c.getBuf()
	defer c.bufPool.Put(buf)
	if err := c.get(ctx, c.paths.depth, q, binance.DepthWeight(c.kind, limit), buf); err != nil {
		return err
	}
	if err := binance.DecodeDepthSnapshot(buf.Bytes(), dst); err != nil {
		return fmt.Errorf("rest: GET %s?%s: decode body: %w", c.paths.depth, q.Encode(), err)
	}
	dst.Symbol = symbol
	return nil
}

// AggTradesQuery selects aggregate trades. The zero value asks for the most
// recent 500.
type AggTradesQuery struct {
	// FromID, if set, asks for trades with aggregate id >= *FromID.
	FromID *int64
	// StartTime and EndTime (Unix ms, 0 = unset) bound the trade time;
	// Binance requires EndTime-StartTime <= 1 hour when both are set.
	StartTime, EndTime int64
	// Limit is 1..1000; 0 means Binance's default 500.
	Limit int
}

func (q AggTradesQuery) values(symbol string) (url.Values, error) {
	v := url.Values{"symbol": {symbol}}
	if q.FromID != nil {
		if *q.FromID < 0 {
			return nil, fmt.Errorf("rest: aggTrades: FromID %d is negative", *q.FromID)
		}
		v.Set("fromId", strconv.FormatInt(*q.FromID, 10))
	}
	if q.StartTime < 0 || q.EndTime < 0 {
		return nil, fmt.Errorf("rest: aggTrades: negative StartTime %d or EndTime %d", q.StartTime, q.EndTime)
	}
	if q.StartTime > 0 && q.EndTime > 0 && (q.EndTime < q.StartTime || q.EndTime-q.StartTime > 3600_000) {
		return nil, fmt.Errorf("rest: aggTrades: window StartTime %d .. EndTime %d must be 0..1 h", q.StartTime, q.EndTime)
	}
	if q.StartTime > 0 {
		v.Set("startTime", strconv.FormatInt(q.StartTime, 10))
	}
	if q.EndTime > 0 {
		v.Set("endTime", strconv.FormatInt(q.EndTime, 10))
	}
	if q.Limit < 0 || q.Limit > 1000 {
		return nil, fmt.Errorf("rest: aggTrades: Limit %d out of range 0..1000", q.Limit)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v, nil
}

// AggTrades fetches aggregate trades of symbol and appends them to dst
// (backfill after a disconnect: ask FromID = last seen id + 1 until the
// answer is short).
func (c *Client) AggTrades(ctx context.Context, symbol string, q AggTradesQuery, dst []market.Trade) ([]market.Trade, error) {
	if err := validSymbol(symbol); err != nil {
		return dst, err
	}
	v, err := q.values(symbol)
	if err != nil {
		return dst, err
	}
	buf := c.getBuf()
	defer c.bufPool.Put(buf)
	if err := c.get(ctx, c.paths.aggTrades, v, c.paths.aggTradesWeight, buf); err != nil {
		return dst, err
	}
	out, err := binance.DecodeAggTrades(buf.Bytes(), symbol, dst)
	if err != nil {
		return dst, fmt.Errorf("rest: GET %s?%s: decode body: %w", c.paths.aggTrades, v.Encode(), err)
	}
	return out, nil
}

// ExchangeInfo fetches the exchange's symbols, filters and rate limits.
func (c *Client) ExchangeInfo(ctx context.Context) (*binance.ExchangeInfo, error) {
	var buf bytes.Buffer
	if err := c.get(ctx, c.paths.exchangeInfo, nil, c.paths.exchangeInfoWeight, &buf); err != nil {
		return nil, err
	}
	info, err := binance.DecodeExchangeInfo(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("rest: GET %s: decode body: %w", c.paths.exchangeInfo, err)
	}
	return info, nil
}

// ServerTime returns Binance's clock (for measuring local clock skew).
func (c *Client) ServerTime(ctx context.Context) (time.Time, error) {
	var buf bytes.Buffer
	if err := c.get(ctx, c.paths.time, nil, 1, &buf); err != nil {
		return time.Time{}, err
	}
	var body struct {
		ServerTime *int64 `json:"serverTime"`
	}
	if err := json.Unmarshal(buf.Bytes(), &body); err != nil {
		return time.Time{}, fmt.Errorf("rest: GET %s: decode body: %w", c.paths.time, err)
	}
	if body.ServerTime == nil {
		return time.Time{}, fmt.Errorf("rest: GET %s: decode body: field \"serverTime\" missing", c.paths.time)
	}
	return time.UnixMilli(*body.ServerTime), nil
}

func (c *Client) getBuf() *bytes.Buffer {
	if b, ok := c.bufPool.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// StatusError is a non-2xx answer that is not a Binance API error body.
type StatusError struct {
	Status int
	Body   string // first bytes of the body
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %q", e.Status, e.Body)
}

// get sends GET endpoint?query with the given weight and leaves the body of a
// 200 answer in buf. It owns the retry policy:
//   - 429: pause every request of the client until Retry-After, then retry;
//   - 418: ban every request until Retry-After (or BanBackoff), return *BanError;
//   - 5xx and transport errors: the outcome is unknown; retry after an
//     exponential backoff with full jitter (GETs are idempotent);
//   - other 4xx: return the *binance.APIError from the body.
func (c *Client) get(ctx context.Context, endpoint string, query url.Values, weight int, buf *bytes.Buffer) error {
	target := c.base + endpoint
	what := "GET " + endpoint
	if len(query) > 0 {
		qs := query.Encode()
		target += "?" + qs
		what += "?" + qs
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		minute, err := c.lim.reserve(ctx, weight)
		if err != nil {
			if lastErr != nil {
				return fmt.Errorf("rest: %s: %w (last attempt: %v)", what, err, lastErr)
			}
			return fmt.Errorf("rest: %s: %w", what, err)
		}
		status, hdr, err := c.attempt(ctx, target, buf)
		c.lim.settle(minute, weight, hdr.Get("X-MBX-USED-WEIGHT-1M"))
		c.count(endpoint, status)
		var backoff time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("rest: %s: %w", what, ctx.Err())
			}
			lastErr = err
			backoff = c.backoff(attempt)
		case status >= 200 && status < 300:
			return nil
		case status == http.StatusTooManyRequests:
			d := retryAfter(hdr, DefaultRateLimitPause)
			c.lim.pause(time.Now().Add(d))
			c.bump(&c.limited)
			c.log.Warn("Binance rate limit hit (429): pausing all requests", "endpoint", endpoint, "retry_after", d)
			lastErr = &StatusError{Status: status, Body: snippet(buf.Bytes())}
		case status == http.StatusTeapot:
			until := time.Now().Add(retryAfter(hdr, c.opts.BanBackoff))
			c.lim.ban(until)
			c.bump(&c.banned)
			c.log.Error("Binance banned this IP (418): stopping all requests", "endpoint", endpoint, "until", until)
			return fmt.Errorf("rest: %s: %w", what, &BanError{Until: until})
		case status >= 500:
			lastErr = &StatusError{Status: status, Body: snippet(buf.Bytes())}
			backoff = c.backoff(attempt)
		default:
			return fmt.Errorf("rest: %s: %w", what, apiError(status, buf.Bytes()))
		}
		if attempt >= c.opts.MaxAttempts {
			return fmt.Errorf("rest: %s: giving up after %d attempts: %w", what, attempt, lastErr)
		}
		c.bump(&c.retries)
		c.log.Debug("retrying Binance request", "request", what, "attempt", attempt, "backoff", backoff, "err", lastErr)
		if err := sleep(ctx, backoff); err != nil {
			return fmt.Errorf("rest: %s: %w (last attempt: %v)", what, err, lastErr)
		}
	}
}

// attempt performs one HTTP exchange. status is 0 on a transport error.
func (c *Client) attempt(ctx context.Context, target string, buf *bytes.Buffer) (int, http.Header, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, target, nil)
	if err != nil {
		return 0, http.Header{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, http.Header{}, err
	}
	defer resp.Body.Close()
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, resp.Header, fmt.Errorf("read body after %d bytes: %w", n, err)
	}
	if n > maxBody {
		return resp.StatusCode, resp.Header, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	return resp.StatusCode, resp.Header, nil
}

// backoff is the wait before retry number attempt (1-based): full jitter
// over [RetryMin, min(RetryMax, RetryMin*2^(attempt-1))], so clients that
// failed together do not retry together.
func (c *Client) backoff(attempt int) time.Duration {
	ceil := c.opts.RetryMin << min(attempt-1, 30)
	if ceil > c.opts.RetryMax || ceil <= 0 {
		ceil = c.opts.RetryMax
	}
	return c.opts.RetryMin + rand.N(ceil-c.opts.RetryMin+1)
}

// retryAfter reads Retry-After as seconds (Binance's form) or an HTTP date.
func retryAfter(h http.Header, def time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return def
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(min(s, 7*24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return def
}

// apiError decodes Binance's {"code":-1121,"msg":"Invalid symbol."}.
func apiError(status int, body []byte) error {
	var e struct {
		Code *int64 `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Code == nil {
		return &StatusError{Status: status, Body: snippet(body)}
	}
	return &binance.APIError{Code: *e.Code, Msg: e.Msg}
}

func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// IsBanned reports whether err is (or wraps) a *BanError.
func IsBanned(err error) bool {
	var b *BanError
	return errors.As(err, &b)
}

func (c *Client) count(endpoint string, status int) {
	c.statMu.Lock()
	c.counts[statKey{endpoint, status}]++
	c.statMu.Unlock()
}

func (c *Client) bump(p *uint64) {
	c.statMu.Lock()
	*p++
	c.statMu.Unlock()
}

// EndpointCount is the number of answers with one status from one endpoint.
// Status 0 counts transport errors (no answer).
type EndpointCount struct {
	Endpoint string
	Status   int
	Count    uint64
}

// Stats is a snapshot of a Client's counters, for metrics and tests.
type Stats struct {
	// Requests holds the answers by endpoint and status, sorted.
	Requests []EndpointCount
	// WeightUsed is the weight believed spent in the current minute
	// (server's count plus requests in flight); WeightLimit the budget.
	WeightUsed, WeightLimit int
	// WeightWaits counts requests that waited for the next minute's budget.
	WeightWaits uint64
	// Retries counts retried attempts; RateLimited the 429s; Banned the 418s.
	Retries, RateLimited, Banned uint64
	// PausedUntil and BannedUntil are the current 429 pause and 418 ban
	// ends (zero or past when none).
	PausedUntil, BannedUntil time.Time
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	ls := c.lim.state()
	c.statMu.Lock()
	s := Stats{
		WeightUsed: ls.used, WeightLimit: ls.limit, WeightWaits: ls.waits,
		Retries: c.retries, RateLimited: c.limited, Banned: c.banned,
		PausedUntil: ls.pausedUntil, BannedUntil: ls.bannedUntil,
	}
	for k, n := range c.counts {
		s.Requests = append(s.Requests, EndpointCount{Endpoint: k.endpoint, Status: k.status, Count: n})
	}
	c.statMu.Unlock()
	sort.Slice(s.Requests, func(i, j int) bool {
		a, b := s.Requests[i], s.Requests[j]
		if a.Endpoint != b.Endpoint {
			return a.Endpoint < b.Endpoint
		}
		return a.Status < b.Status
	})
	return s
}
