// Package client is the typed Go client of orderflow's HTTP/JSON API, for
// bots and tools that read a running service (orderflow run or demo) over
// the network. A Go program that wants the service in-process uses package
// service directly (see its examples) and can serve the same API with
// package api.
//
// The wire types (Metrics, Bar, Book, Trade, ...) are shared with the
// server, so what the server writes is exactly what this package reads.
// Every decimal is a Decimal: the exact text the server wrote, never a
// float.
//
// A Client is safe for concurrent use. Every call takes a context; errors
// from the API are *Error values carrying the stable code (IsCode).
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultURL is where orderflow run and demo serve the API by default.
const DefaultURL = "http://127.0.0.1:8080"

// Options configure a Client. The zero value uses http.DefaultClient and
// no token.
type Options struct {
	// Token is sent as "Authorization: Bearer <token>".
	Token string
	// HTTPClient makes the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// MaxResponseBytes bounds a response body. Default 64 MiB.
	MaxResponseBytes int64
}

// Client calls one orderflow API.
type Client struct {
	base *url.URL
	opts Options
	hc   *http.Client
}

// New returns a client of the API at baseURL ("http://127.0.0.1:8080").
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: api url %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: api url %q: want http:// or https://", baseURL)
	}
	c := &Client{base: u, opts: opts, hc: opts.HTTPClient}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	if c.opts.MaxResponseBytes <= 0 {
		c.opts.MaxResponseBytes = 64 << 20
	}
	return c, nil
}

// URL returns the API's base URL.
func (c *Client) URL() string { return c.base.String() }

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// do sends a request and decodes a JSON answer into out (nil: discard).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: %s %s: encode body: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	r := io.LimitReader(resp.Body, c.opts.MaxResponseBytes)
	if resp.StatusCode >= 300 {
		return readError(resp, r)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, r)
		return nil
	}
	if err := json.NewDecoder(r).Decode(out); err != nil {
		return fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// readError turns an error answer into an *Error, also when the body is
// not the API's JSON (a proxy's page, say).
func readError(resp *http.Response, r io.Reader) error {
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	var env struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error != nil && env.Error.Code != "" {
		env.Error.Status = resp.StatusCode
		return env.Error
	}
	return &Error{Status: resp.StatusCode, Code: "http_" + fmt.Sprint(resp.StatusCode),
		Message: strings.TrimSpace(string(b))}
}

func symbolPath(symbol, what string) string {
	return "/v1/symbols/" + url.PathEscape(strings.ToUpper(symbol)) + what
}

// Status returns the service's state and counters.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &st)
}

// Ready reports whether the service is ready (/readyz answers 200).
func (c *Client) Ready(ctx context.Context) (bool, error) {
	err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusServiceUnavailable {
		return false, nil
	}
	return err == nil, err
}

// Symbols lists the streamed symbols.
func (c *Client) Symbols(ctx context.Context) (Symbols, error) {
	var s Symbols
	return s, c.do(ctx, http.MethodGet, "/v1/symbols", nil, nil, &s)
}

// AddSymbol asks the service to stream one more symbol.
func (c *Client) AddSymbol(ctx context.Context, symbol string) error {
	return c.do(ctx, http.MethodPost, "/v1/symbols", nil, map[string]string{"symbol": symbol}, nil)
}

// RemoveSymbol asks the service to stop streaming a symbol.
func (c *Client) RemoveSymbol(ctx context.Context, symbol string) error {
	return c.do(ctx, http.MethodDelete, symbolPath(symbol, ""), nil, nil, nil)
}

// ResetCVD starts a symbol's CVD again from zero at exchange time at
// (Unix ms; 0: now, the latest exchange time the service has seen). It
// needs the token like the other write routes.
func (c *Client) ResetCVD(ctx context.Context, symbol string, at int64) (CVDReset, error) {
	var in any
	if at != 0 {
		in = map[string]int64{"at": at}
	}
	var r CVDReset
	return r, c.do(ctx, http.MethodPost, symbolPath(symbol, "/cvd/reset"), nil, in, &r)
}

// Metrics returns a symbol's totals and rolling windows.
func (c *Client) Metrics(ctx context.Context, symbol string, q MetricsQuery) (Metrics, error) {
	var m Metrics
	return m, c.do(ctx, http.MethodGet, symbolPath(symbol, "/metrics"), q.Values(), nil, &m)
}

// Bars returns recent closed bars and the open one.
func (c *Client) Bars(ctx context.Context, symbol string, q BarsQuery) (Bars, error) {
	var b Bars
	return b, c.do(ctx, http.MethodGet, symbolPath(symbol, "/bars"), q.Values(), nil, &b)
}

// Profile returns a volume profile.
func (c *Client) Profile(ctx context.Context, symbol string, q ProfileQuery) (Profile, error) {
	var p Profile
	return p, c.do(ctx, http.MethodGet, symbolPath(symbol, "/profile"), q.Values(), nil, &p)
}

// LargeTrades returns the most recent large trades.
func (c *Client) LargeTrades(ctx context.Context, symbol string, q LargeTradesQuery) (LargeTrades, error) {
	var l LargeTrades
	return l, c.do(ctx, http.MethodGet, symbolPath(symbol, "/large-trades"), q.Values(), nil, &l)
}

// Trades returns recent trades matching q, oldest first.
func (c *Client) Trades(ctx context.Context, symbol string, q TradesQuery) (Trades, error) {
	var t Trades
	return t, c.do(ctx, http.MethodGet, symbolPath(symbol, "/trades"), q.Values(), nil, &t)
}

// Book returns the top of the local order book.
func (c *Client) Book(ctx context.Context, symbol string, q BookQuery) (Book, error) {
	var b Book
	return b, c.do(ctx, http.MethodGet, symbolPath(symbol, "/book"), q.Values(), nil, &b)
}

// Signals returns the signals found on recent closed bars.
func (c *Client) Signals(ctx context.Context, symbol string, q SignalsQuery) (Signals, error) {
	var s Signals
	return s, c.do(ctx, http.MethodGet, symbolPath(symbol, "/signals"), q.Values(), nil, &s)
}

// BookHistory returns frames of the top of the book over time.
func (c *Client) BookHistory(ctx context.Context, symbol string, q BookHistoryQuery) (BookHistory, error) {
	var h BookHistory
	return h, c.do(ctx, http.MethodGet, symbolPath(symbol, "/book/history"), q.Values(), nil, &h)
}

// Walls returns the current walls and the recently ended ones. Without
// book metrics on the service it fails with code "book_metrics_off".
func (c *Client) Walls(ctx context.Context, symbol string, q WallsQuery) (Walls, error) {
	var w Walls
	return w, c.do(ctx, http.MethodGet, symbolPath(symbol, "/walls"), q.Values(), nil, &w)
}

// Liquidity returns the liquidity added, pulled and filled near the
// touch. Without book metrics on the service it fails with code
// "book_metrics_off".
func (c *Client) Liquidity(ctx context.Context, symbol string, q LiquidityQuery) (Liquidity, error) {
	var l Liquidity
	return l, c.do(ctx, http.MethodGet, symbolPath(symbol, "/liquidity"), q.Values(), nil, &l)
}

// Event is one message of the push stream as read: Data is left raw so
// the caller decodes it by Type (Trade for "trade", LargeTrade for
// "large", Bar for "bar", Book for "book", Signal for "signal").
type Event struct {
	Type   string          `json:"type"`
	Symbol string          `json:"symbol,omitempty"`
	Count  int64           `json:"count,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// ErrStop, returned by a Stream callback, ends the stream without error.
var ErrStop = errors.New("client: stop stream")

// Stream reads the Server-Sent Events stream (/v1/stream) of symbols and
// topics (empty: all) and calls f for each message until ctx ends, the
// server closes the stream, or f returns an error (ErrStop: a clean end).
func (c *Client) Stream(ctx context.Context, symbols, topics []string, f func(Event) error) error {
	q := url.Values{}
	setString(q, "symbols", strings.Join(symbols, ","))
	setString(q, "topics", strings.Join(topics, ","))
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/stream", q, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp, resp.Body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue // event names, comments (keep-alives), blank separators
		}
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("client: stream: decode message: %w", err)
		}
		if err := f(ev); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("client: stream: %w", err)
	}
	return nil
}
