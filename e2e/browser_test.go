package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A minimal Chrome DevTools Protocol client: enough to load a page,
// evaluate JavaScript and take a screenshot in Debian's headless Chromium.
// It talks to one page target over the WebSocket the browser opens for it
// (coder/websocket, already a dependency), one command at a time: a reply
// is the next message carrying the command's id, and events in between are
// skipped. That is all the test needs, so no CDP library (chromedp brings
// cdproto, easyjson and more) is added to go.mod.

// chromiumFlags are required on these machines: no network but loopback,
// so every background service of the browser is turned off, or it floods
// refused connections.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
	"--mute-audio", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
}

// findChromium returns the browser to drive: $ORDERFLOW_CHROMIUM, else
// chromium on PATH, else /usr/bin/chromium. A missing browser fails the
// test: CI installs it (.ci/run), a developer runs `make chromium`.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ORDERFLOW_CHROMIUM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Fatal("chromium not found (looked at $ORDERFLOW_CHROMIUM, PATH and /usr/bin/chromium): " +
		"install Debian's package with `apt-get install -y chromium` (`make chromium` does it); .ci/run installs it")
	return ""
}

// browser is a running headless Chromium with one page.
type browser struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	conn   *websocket.Conn
	next   int64
	mu     sync.Mutex
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBrowser launches Chromium with a new empty profile and connects to
// its page. The browser is stopped at the test's cleanup.
func startBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	bin := findChromium(t)
	profile := t.TempDir()
	args := append(append([]string{}, chromiumFlags...), "--user-data-dir="+profile,
		fmt.Sprintf("--window-size=%d,%d", width, height), "about:blank")
	b := &browser{stderr: &syncBuffer{}}
	b.cmd = exec.Command(bin, args...)
	b.cmd.Stderr = b.stderr
	// Its own process group, so the renderer and GPU helpers it starts are
	// stopped with it.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(b.stop)

	// Chromium writes the port it picked to DevToolsActivePort.
	var port string
	waitFor(t, 30*time.Second, "chromium's DevToolsActivePort", func() (bool, string) {
		data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err != nil {
			return false, "not written yet; stderr: " + lastLines(b.stderr.String(), 5)
		}
		port = strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0])
		return port != "", "empty file"
	})
	var wsURL string
	waitFor(t, 15*time.Second, "a page target", func() (bool, string) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var targets []struct {
			Type, WebSocketDebuggerURL string
		}
		if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
			return false, err.Error()
		}
		for _, tg := range targets {
			if tg.Type == "page" && tg.WebSocketDebuggerURL != "" {
				wsURL = tg.WebSocketDebuggerURL
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d targets, no page", len(targets))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("connect to the page %s: %v", wsURL, err)
	}
	c.SetReadLimit(256 << 20) // screenshots arrive as one base64 message
	b.conn = c
	b.call(t, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// call sends one CDP command and decodes its result into out (if not nil).
func (b *browser) call(t *testing.T, method string, params any, out any) {
	t.Helper()
	if err := b.do(method, params, out, 60*time.Second); err != nil {
		t.Fatalf("%v (chromium stderr: %s)", err, lastLines(b.stderr.String(), 5))
	}
}

func (b *browser) do(method string, params any, out any, timeout time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return fmt.Errorf("cdp %s: encode: %w", method, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := b.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("cdp %s: send: %w", method, err)
	}
	for {
		_, data, err := b.conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("cdp %s: read: %w", method, err)
		}
		var reply struct {
			ID     int64           `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Data    string `json:"data"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &reply); err != nil {
			return fmt.Errorf("cdp %s: decode: %w", method, err)
		}
		if reply.ID != id {
			continue // an event, or a reply to nothing we wait for
		}
		if reply.Error != nil {
			return fmt.Errorf("cdp %s: error %d: %s %s", method, reply.Error.Code, reply.Error.Message, reply.Error.Data)
		}
		if out != nil {
			if err := json.Unmarshal(reply.Result, out); err != nil {
				return fmt.Errorf("cdp %s: decode result: %w", method, err)
			}
		}
		return nil
	}
}

// navigate loads url and waits for its load event.
func (b *browser) navigate(t *testing.T, url string) {
	t.Helper()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	b.call(t, "Page.navigate", map[string]any{"url": url}, &res)
	if res.ErrorText != "" {
		t.Fatalf("navigate %s: %s", url, res.ErrorText)
	}
	waitFor(t, 20*time.Second, "the page to load", func() (bool, string) {
		var state string
		if err := b.eval(`document.readyState`, &state); err != nil {
			return false, err.Error()
		}
		return state == "complete", "readyState " + state
	})
}

// eval evaluates a JavaScript expression in the page (promises awaited)
// and decodes its JSON value into out.
func (b *browser) eval(expr string, out any) error {
	var res struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := b.do("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res, 30*time.Second)
	if err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("evaluate %q: %s %s", expr, res.ExceptionDetails.Text, res.ExceptionDetails.Exception.Description)
	}
	if out == nil {
		return nil
	}
	if len(res.Result.Value) == 0 {
		return fmt.Errorf("evaluate %q: no value (type %s)", expr, res.Result.Type)
	}
	if err := json.Unmarshal(res.Result.Value, out); err != nil {
		return fmt.Errorf("evaluate %q: decode %s: %w", expr, trunc(res.Result.Value), err)
	}
	return nil
}

// mustEval is eval failing the test.
func (b *browser) mustEval(t *testing.T, expr string, out any) {
	t.Helper()
	if err := b.eval(expr, out); err != nil {
		t.Fatal(err)
	}
}

// screenshot returns a PNG of the viewport.
func (b *browser) screenshot(t *testing.T) []byte {
	t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	b.call(t, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": false}, &res)
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return png
}

// stop closes the browser: politely over CDP, then by killing its process
// group if it has not exited within a few seconds.
func (b *browser) stop() {
	if b.conn != nil {
		_ = b.do("Browser.close", map[string]any{}, nil, 3*time.Second)
		b.conn.CloseNow()
	}
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	// Helpers left behind in the group (none expected) go too.
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
}

// consoleErrors is not collected: the test reads the dashboard's state
// through window.__orderflow instead, which names what went wrong.

func trunc(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// waitFor polls cond every 100 ms until it holds or timeout passes; then
// it fails the test with what cond last said.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
