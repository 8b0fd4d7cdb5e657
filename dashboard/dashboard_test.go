package dashboard

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// manifest reads dist/BUILD.txt: kind ("source", "output") -> path -> sha256.
func manifest(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := Assets().Open("BUILD.txt")
	if err != nil {
		t.Fatalf("dist/BUILD.txt: %v", err)
	}
	defer f.Close()
	m := map[string]map[string]string{"source": {}, "output": {}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Fields(line)
		if len(parts) != 3 || m[parts[0]] == nil || len(parts[1]) != 64 {
			t.Fatalf("dist/BUILD.txt line %d: %q: want \"source|output <sha256> <path>\"", n, line)
		}
		m[parts[0]][parts[2]] = parts[1]
	}
	return m
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestAssetsMatchSources checks the committed build against its sources
// without npm: every file the build reads (web/src, package.json,
// package-lock.json, build.mjs) must be listed in BUILD.txt with its
// current hash, and every embedded output must match its recorded hash.
// A source edited without `make dashboard`, a new source file, or a
// hand-edited asset fails here; `make dashboard-verify` additionally
// rebuilds with the pinned esbuild and compares bytes.
func TestAssetsMatchSources(t *testing.T) {
	m := manifest(t)
	want := []string{"web/build.mjs", "web/package.json", "web/package-lock.json"}
	err := filepath.WalkDir("web/src", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			want = append(want, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	var got []string
	for p := range m["source"] {
		got = append(got, p)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("BUILD.txt lists sources %v, the tree has %v: run `make dashboard`", got, want)
	}
	for _, p := range want {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if h := sha(b); m["source"][p] != h {
			t.Errorf("source %s: sha256 %s, BUILD.txt records %s: the assets were built from other sources; run `make dashboard`", p, h, m["source"][p])
		}
	}
	outs := []string{"app.css", "app.js", "index.html"}
	if len(m["output"]) != len(outs) {
		t.Errorf("BUILD.txt lists %d outputs, want %v", len(m["output"]), outs)
	}
	for _, o := range outs {
		b, err := fs.ReadFile(Assets(), o)
		if err != nil {
			t.Fatalf("embedded %s: %v", o, err)
		}
		if h := sha(b); m["output"][o] != h {
			t.Errorf("embedded %s: sha256 %s, BUILD.txt records %s: edited by hand or a partial build", o, h, m["output"][o])
		}
	}
}

// TestAssetsSelfContained: the page must load nothing from outside the
// listener (users run it on servers without internet).
func TestAssetsSelfContained(t *testing.T) {
	page, _ := fs.ReadFile(Assets(), "index.html")
	for _, bad := range []string{"http://", "https://", "//cdn", "<script>"} {
		if bytes.Contains(page, []byte(bad)) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	css, _ := fs.ReadFile(Assets(), "app.css")
	if bytes.Contains(css, []byte("@import")) || bytes.Contains(css, []byte("url(http")) {
		t.Error("app.css imports from outside")
	}
	js, _ := fs.ReadFile(Assets(), "app.js")
	for _, need := range []string{"__orderflow", "/v1/stream", "requestAnimationFrame"} {
		if !bytes.Contains(js, []byte(need)) {
			t.Errorf("app.js lacks %q: not built from these sources?", need)
		}
	}
}

func TestHandler(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"api":"`+r.URL.Path+`"}`)
	})
	srv := httptest.NewServer(Mount(api))
	defer srv.Close()
	js, _ := fs.ReadFile(Assets(), "app.js")
	page, _ := fs.ReadFile(Assets(), "index.html")

	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantType   string
		wantBody   []byte // exact, after gunzip
		wantGzip   bool
		wantCSP    bool
	}{
		{name: "PageAtRoot", path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: page, wantCSP: true},
		{name: "PageByName", path: "/index.html", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: page, wantCSP: true},
		{name: "ScriptPlain", path: "/app.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantBody: js},
		{name: "ScriptGzip", path: "/app.js", header: map[string]string{"Accept-Encoding": "gzip, br"}, wantStatus: 200,
			wantType: "text/javascript; charset=utf-8", wantBody: js, wantGzip: true},
		{name: "GzipRefused", path: "/app.js", header: map[string]string{"Accept-Encoding": "gzip;q=0"}, wantStatus: 200,
			wantType: "text/javascript; charset=utf-8", wantBody: js},
		{name: "Stylesheet", path: "/app.css", wantStatus: 200, wantType: "text/css; charset=utf-8"},
		{name: "HeadHasNoBody", method: http.MethodHead, path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: []byte{}, wantCSP: true},
		{name: "PostRefused", method: http.MethodPost, path: "/", wantStatus: 405},
		{name: "APIPassedThrough", path: "/v1/status", wantStatus: 200, wantType: "application/json", wantBody: []byte(`{"api":"/v1/status"}`)},
		{name: "UnknownGoesToAPI", path: "/nope", wantStatus: 200, wantBody: []byte(`{"api":"/nope"}`)},
		{name: "BuildManifestNotServed", path: "/BUILD.txt", wantStatus: 200, wantBody: []byte(`{"api":"/BUILD.txt"}`)},
	}
	tr := &http.Transport{DisableCompression: true} // see the raw encoding
	defer tr.CloseIdleConnections()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, srv.URL+tc.path, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantType != "" && resp.Header.Get("Content-Type") != tc.wantType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.wantType)
			}
			if gz := resp.Header.Get("Content-Encoding") == "gzip"; gz != tc.wantGzip {
				t.Errorf("gzip %v, want %v", gz, tc.wantGzip)
			} else if gz {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				body, _ = io.ReadAll(zr)
			}
			if tc.wantBody != nil && !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body %d bytes, want %d", len(body), len(tc.wantBody))
			}
			if csp := resp.Header.Get("Content-Security-Policy"); (csp != "") != tc.wantCSP || (tc.wantCSP && !strings.Contains(csp, "default-src 'self'")) {
				t.Errorf("Content-Security-Policy %q, want set: %v", csp, tc.wantCSP)
			}
		})
	}
}

// TestRevalidation: a reload sends the ETag back and gets 304, so a
// dashboard left open revalidates cheaply; a changed binary changes the
// ETag.
func TestRevalidation(t *testing.T) {
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/app.js", nil))
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || len(etag) < 10 || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("first load: %d ETag %q Cache-Control %q", rec.Code, etag, rec.Header().Get("Cache-Control"))
	}
	req := httptest.NewRequest(http.MethodGet, "/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("revalidation: %d with %d bytes, want 304 and none", rec.Code, rec.Body.Len())
	}
	req = httptest.NewRequest(http.MethodGet, "/app.css", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("another asset with app.js's ETag: %d, want 200", rec.Code)
	}
}

// BenchmarkServeScript measures serving the bundle (the largest asset) with
// gzip, as a browser loads it.
func BenchmarkServeScript(b *testing.B) {
	h := Handler()
	req := httptest.NewRequest(http.MethodGet, "/app.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
