// Package api serves the order-flow service over HTTP: health checks for
// orchestrators, the versioned JSON API (/v1/...), push streams
// (Server-Sent Events at /v1/stream, WebSocket at /v1/ws), Prometheus
// metrics (/metrics) and the MCP tool server (/mcp, streamable HTTP).
//
// Errors are JSON {"error":{"code":"...","message":"..."}} with a stable
// code; the mapping from codes to HTTP statuses lives in one table
// (errorStatus). Handlers read the service through its Go API and hold its
// data lock only to copy what they answer.
//
// Every request passes, in order: request metrics, CORS (only for the
// configured origins), the bearer token (all routes but /healthz), a
// per-client token-bucket rate limit and a request body limit.
//
// Concurrency: New starts the push hub's goroutine; Close stops it, which
// ends every push stream, and waits for it. Use Close as the http.Server's
// RegisterOnShutdown hook so Shutdown does not wait for open streams.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/mcpserver"
	"github.com/orderflow/orderflow/metrics"
	"github.com/orderflow/orderflow/push"
	"github.com/orderflow/orderflow/service"
)

// Options configure the API. Zero fields take the defaults documented on
// each.
type Options struct {
	// Token, if set, is required as "Authorization: Bearer <token>" on
	// every route but /healthz.
	Token string
	// Logger receives internal errors. Default slog.Default().
	Logger *slog.Logger
	// CORSOrigins are the browser origins allowed to call the API
	// ("https://app.example.com", or "*" for any). Empty (the default):
	// no CORS headers at all, so browsers keep other origins out.
	CORSOrigins []string
	// MaxBodyBytes bounds a request body (default 64 KiB).
	MaxBodyBytes int64
	// RateLimit is the sustained requests per second allowed per client IP
	// (default 50; negative: no limit). RateBurst is the bucket size
	// (default 2 x RateLimit).
	RateLimit float64
	RateBurst int
	// WriteTimeout bounds each write to a push client (default 10 s): a
	// client that does not read is cut off after it.
	WriteTimeout time.Duration
	// KeepAlive is how often an idle push stream gets a comment or ping
	// (default 15 s).
	KeepAlive time.Duration
	// Push configures the push hub.
	Push push.Options
	// Collectors are added to the /metrics registry (e.g. the bus
	// publisher's counters).
	Collectors []prometheus.Collector
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 10
	}
	if o.RateLimit == 0 {
		o.RateLimit = 50
	}
	if o.RateBurst <= 0 {
		o.RateBurst = max(1, int(2*o.RateLimit))
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.Push.Logger == nil {
		o.Push.Logger = o.Logger
	}
	return o
}

// Server is the HTTP API of one service.
type Server struct {
	svc     *service.Service
	market  market.Kind // the service's, read once: Config is not for concurrent use
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []string // registered patterns, for the OpenAPI check
	hub     *push.Hub
	metrics *metrics.Metrics
	limiter *limiter

	cancel    context.CancelFunc
	hubDone   chan struct{}
	closeOnce sync.Once
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the API (served at
// /v1/openapi.json).
func OpenAPI() []byte { return slices.Clone(openAPI) }

// New returns the API for svc and starts its push hub; Close stops it. It
// adds the hub and the lag metric to svc's event hooks
// (Service.AddEventHook), so call it before other goroutines use svc.
func New(svc *service.Service, opts Options) *Server {
	o := opts.withDefaults()
	s := &Server{svc: svc, market: svc.Config().Market, opts: o, log: o.Logger, mux: http.NewServeMux(),
		hubDone: make(chan struct{})}
	s.hub = push.New(svc, o.Push)
	s.metrics = metrics.New(svc, s.hub)
	for _, c := range o.Collectors {
		s.metrics.Registry().MustRegister(c)
	}
	if o.RateLimit > 0 {
		s.limiter = newLimiter(o.RateLimit, o.RateBurst, time.Now)
	}
	svc.AddEventHook(func(ev service.Event) {
		s.metrics.ObserveEvent(ev)
		s.hub.Publish(ev)
	})
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.hubDone)
		_ = s.hub.Run(ctx)
	}()

	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)
	s.handle("GET /metrics", s.metrics.Handler().ServeHTTP)
	s.handle("GET /v1/openapi.json", s.openapi)
	s.handle("GET /v1/status", s.status)
	s.handle("GET /v1/symbols", s.symbols)
	s.handle("POST /v1/symbols", s.addSymbol)
	s.handle("DELETE /v1/symbols/{symbol}", s.removeSymbol)
	s.handle("GET /v1/symbols/{symbol}/metrics", s.getMetrics)
	s.handle("POST /v1/symbols/{symbol}/cvd/reset", s.resetCVD)
	s.handle("GET /v1/symbols/{symbol}/bars", s.getBars)
	s.handle("GET /v1/symbols/{symbol}/profile", s.getProfile)
	s.handle("GET /v1/symbols/{symbol}/large-trades", s.getLargeTrades)
	s.handle("GET /v1/symbols/{symbol}/trades", s.getTrades)
	s.handle("GET /v1/symbols/{symbol}/book", s.getBook)
	s.handle("GET /v1/symbols/{symbol}/book/history", s.getBookHistory)
	s.handle("GET /v1/symbols/{symbol}/walls", s.getWalls)
	s.handle("GET /v1/symbols/{symbol}/liquidity", s.getLiquidity)
	s.handle("GET /v1/symbols/{symbol}/signals", s.getSignals)
	s.handle("GET /v1/stream", s.sse)
	s.handle("GET /v1/ws", s.websocket)
	s.handle("POST /mcp", mcpserver.Handler(mcpserver.New(s, o.Logger), o.Logger).ServeHTTP)
	s.mux.HandleFunc("/", s.notFound)
	return s
}

// Close stops the push hub, which ends every push stream, and waits for
// it. It is idempotent. The server keeps answering the other routes.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.hubDone
	})
}

// Hub returns the push hub, for its Stats.
func (s *Server) Hub() *push.Hub { return s.hub }

// Prometheus returns the API's Prometheus metrics (a private registry).
func (s *Server) Prometheus() *metrics.Metrics { return s.metrics }

// Routes returns the registered route patterns ("GET /v1/status", ...).
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

func (s *Server) handle(pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, h)
}

// recorder keeps the status a handler wrote, for the request metrics.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// connection (Flush, Hijack, deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	_, route := s.mux.Handler(r)
	if route == "/" || route == "" {
		route = "unmatched"
	}
	rec := &recorder{ResponseWriter: w}
	s.serve(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	s.metrics.ObserveRequest(route, r.Method, rec.status, time.Since(start))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.cors(w, r) {
		return
	}
	if s.opts.Token != "" && r.URL.Path != "/healthz" && !validToken(r.Header.Get("Authorization"), s.opts.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="orderflow"`)
		writeError(w, s.log, &Error{Code: "unauthorized", Message: "missing or wrong bearer token"})
		return
	}
	if s.limiter != nil && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
		if ok, wait := s.limiter.allow(clientIP(r)); !ok {
			w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
			writeError(w, s.log, &Error{Code: "rate_limited",
				Message: fmt.Sprintf("too many requests: at most %g per second (burst %d) per client", s.opts.RateLimit, s.opts.RateBurst)})
			return
		}
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	}
	s.mux.ServeHTTP(w, r)
}

// validToken compares in constant time for equal lengths, so the token
// cannot be guessed byte by byte from response times.
func validToken(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || len(got) != len(token) {
		return false
	}
	var diff byte
	for i := 0; i < len(got); i++ {
		diff |= got[i] ^ token[i]
	}
	return diff == 0
}

// clientIP is the rate limit's key: the peer's address. Forwarded headers
// are not trusted: behind a proxy every client shares the proxy's bucket,
// which errs on the safe side.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// cors sets the CORS headers for an allowed origin and answers preflight
// requests; it returns true when the request was answered. Without
// configured origins it does nothing, so browsers apply the same-origin
// policy.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(s.opts.CORSOrigins) == 0 || origin == "" {
		return false
	}
	allowed := slices.Contains(s.opts.CORSOrigins, "*") || slices.Contains(s.opts.CORSOrigins, origin)
	if !allowed {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// Error is an API error with a stable code.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorCode returns e's stable code (client.IsCode reads it).
func (e *Error) ErrorCode() string { return e.Code }

func badRequest(format string, args ...any) *Error {
	return &Error{Code: "bad_request", Message: fmt.Sprintf(format, args...)}
}

// errorStatus maps stable error codes to HTTP statuses: the one table.
var errorStatus = map[string]int{
	"bad_request":        http.StatusBadRequest,
	"unauthorized":       http.StatusUnauthorized,
	"unknown_symbol":     http.StatusNotFound,
	"not_found":          http.StatusNotFound,
	"method_not_allowed": http.StatusMethodNotAllowed,
	"too_large":          http.StatusRequestEntityTooLarge,
	"rate_limited":       http.StatusTooManyRequests,
	"not_implemented":    http.StatusNotImplemented,
	"book_metrics_off":   http.StatusConflict,
	"book_history_off":   http.StatusConflict,
	"not_ready":          http.StatusServiceUnavailable,
	"not_running":        http.StatusServiceUnavailable,
	"internal":           http.StatusInternalServerError,
}

// apiError maps a Go error to an API error: the codes of the table above.
func apiError(log *slog.Logger, err error) *Error {
	var ae *Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &tooLarge):
		return &Error{Code: "too_large", Message: fmt.Sprintf("request body above %d bytes", tooLarge.Limit)}
	case errors.Is(err, service.ErrUnknownSymbol):
		return &Error{Code: "unknown_symbol", Message: err.Error()}
	case errors.Is(err, service.ErrNotRunning):
		return &Error{Code: "not_running", Message: "the service is not running"}
	case errors.Is(err, push.ErrStopped):
		return &Error{Code: "not_running", Message: "the push hub has stopped"}
	}
	log.Error("api: internal error", "err", err)
	return &Error{Code: "internal", Message: "internal error"}
}

func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	ae := apiError(log, err)
	status, ok := errorStatus[ae.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, map[string]*Error{"error": ae})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// notFound answers every request no route matched: 405 when the path
// exists for another method, else 404, both as JSON errors.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "/" && p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, s.log, &Error{Code: "method_not_allowed",
			Message: fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	writeError(w, s.log, &Error{Code: "not_found", Message: fmt.Sprintf("no route %s %s (see /v1/openapi.json)", r.Method, r.URL.Path)})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	st := s.svc.Status()
	if !st.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "service": st})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.svc.Status())
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
