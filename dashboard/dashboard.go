// Package dashboard serves orderflow's browser dashboard: price bars with
// delta and CVD, a footprint chart, a liquidity heatmap, a time-and-sales
// tape, a book ladder, window metrics and signals, updated live from the
// API's push stream.
//
// The assets are built from dashboard/web (esbuild, pinned in
// package-lock.json) into dashboard/dist, committed, and embedded in the
// binary with go:embed: the dashboard needs no CDN and no network beyond
// the service's own listener. dist/BUILD.txt records the SHA-256 of every
// source and output; a test checks it against the tree so the committed
// assets cannot drift from their sources unnoticed.
//
// The package holds no goroutines and no state beyond the assets read at
// start: Handler is safe for concurrent use.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// Assets returns the built assets (app.js, app.css, index.html, BUILD.txt)
// as embedded in the binary.
func Assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a constant valid path: cannot happen
	}
	return sub
}

// asset is one file ready to serve: its bytes, a gzip copy when that is
// smaller, and a strong ETag from its content.
type asset struct {
	body, gz []byte
	ctype    string
	etag     string
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// served maps URL paths to the assets behind them.
var served = map[string]string{
	"/":           "index.html",
	"/index.html": "index.html",
	"/app.js":     "app.js",
	"/app.css":    "app.css",
}

// csp allows nothing from outside the listener: scripts, styles, data
// and images all come from the same origin. Inline styles are allowed
// because the charting library positions its canvases with style
// attributes; no inline script is needed or allowed.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Handler returns an http.Handler serving the dashboard: "/" (the page),
// "/app.js" and "/app.css". Any other path is 404. Responses are
// revalidated on every load (ETag, Cache-Control: no-cache), so a new
// binary's assets are picked up at once, and gzip is used when the client
// accepts it.
func Handler() http.Handler {
	assets := map[string]*asset{}
	for urlPath, name := range served {
		a, ok := assets[name]
		if !ok {
			body, err := fs.ReadFile(Assets(), name)
			if err != nil {
				panic(fmt.Sprintf("dashboard: embedded asset %s missing: %v", name, err)) // the build is broken
			}
			sum := sha256.Sum256(body)
			a = &asset{body: body, ctype: contentTypes[name[strings.LastIndex(name, "."):]],
				etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(body)
			zw.Close()
			if buf.Len() < len(body) {
				a.gz = buf.Bytes()
			}
			assets[name] = a
		}
		assets[urlPath] = a
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok || served[r.URL.Path] == "" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("Vary", "Accept-Encoding")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if a.ctype == contentTypes[".html"] {
			h.Set("Content-Security-Policy", csp)
		}
		body := a.body
		if a.gz != nil && acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			body = a.gz
		}
		// ServeContent answers If-None-Match with 304 and handles HEAD and
		// ranges; the zero modtime leaves Last-Modified out.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// Mount returns a handler serving the dashboard's pages at "/", "/app.js"
// and "/app.css" and passing every other request to api, so one listener
// carries both. The dashboard's own paths are public; api keeps its own
// rules (bearer token) for the data.
func Mount(api http.Handler) http.Handler {
	dash := Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := served[r.URL.Path]; ok {
			dash.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
