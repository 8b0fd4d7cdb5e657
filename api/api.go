// Package api serves the order-flow service over HTTP: health checks for
// orchestrators and the versioned JSON API (/v1/...).
//
// Errors are JSON {"error":{"code":"...","message":"..."}} with a stable
// code; the mapping from Go errors to HTTP statuses lives in one table
// (errorStatus). Handlers read the service through its Go API and never
// hold its locks beyond a copy.
package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/orderflow/orderflow/service"
)

// Options configure the API.
type Options struct {
	// Token, if set, is required as "Authorization: Bearer <token>" on
	// every route but /healthz.
	Token string
	// Logger receives internal errors. Default slog.Default().
	Logger *slog.Logger
}

// Server is the HTTP API of one service.
type Server struct {
	svc  *service.Service
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
}

// New returns the API for svc.
func New(svc *service.Service, opts Options) *Server {
	s := &Server{svc: svc, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /v1/status", s.status)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Token != "" && r.URL.Path != "/healthz" && r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
		writeError(w, s.log, &Error{Code: "unauthorized", Message: "missing or wrong bearer token"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Error is an API error with a stable code.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// errorStatus maps stable error codes to HTTP statuses: the one table.
var errorStatus = map[string]int{
	"bad_request":    http.StatusBadRequest,
	"unauthorized":   http.StatusUnauthorized,
	"unknown_symbol": http.StatusNotFound,
	"not_found":      http.StatusNotFound,
	"not_ready":      http.StatusServiceUnavailable,
	"not_running":    http.StatusServiceUnavailable,
	"internal":       http.StatusInternalServerError,
}

func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	var ae *Error
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, service.ErrUnknownSymbol):
		ae = &Error{Code: "unknown_symbol", Message: err.Error()}
	case errors.Is(err, service.ErrNotRunning):
		ae = &Error{Code: "not_running", Message: "the service is not running"}
	default:
		log.Error("api: internal error", "err", err)
		ae = &Error{Code: "internal", Message: "internal error"}
	}
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
