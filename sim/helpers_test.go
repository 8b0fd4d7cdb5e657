package sim

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	spot10 = "cryptofeed-spot-10sym-20210405.txt.gz"
	usdm5  = "cryptofeed-usdm-5sym-20210405.txt.gz"
)

// mustStart starts a simulator on loopback and closes it at the end of
// the test, failing it if Close fails.
func mustStart(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// mustDial opens a WebSocket to path on the simulator.
func mustDial(tb testing.TB, s *Server, path string) *websocket.Conn {
	tb.Helper()
	ws, _ := s.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, ws+path, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial %s: %v (HTTP %d)", path, err, status)
	}
	c.SetReadLimit(8 << 20) // real BTCUSDT depth frames exceed the 32 KiB default
	tb.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// readMsg reads one message within d.
func readMsg(tb testing.TB, c *websocket.Conn, d time.Duration) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	return b
}

// send writes a text message.
func send(tb testing.TB, c *websocket.Conn, msg string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		tb.Fatalf("write: %v", err)
	}
}

// envelope is a combined-stream frame.
type envelope struct {
	Stream string          `json:"stream"`
	Data   json.RawMessage `json:"data"`
}

func mustEnvelope(tb testing.TB, b []byte) envelope {
	tb.Helper()
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil || e.Stream == "" {
		tb.Fatalf("not a combined frame: %v: %.200s", err, b)
	}
	return e
}

// generic decodes JSON keeping numbers exact.
func generic(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		tb.Fatalf("decode %.200s: %v", b, err)
	}
	return m
}

// recorded is one frame of a recording as the test reads it itself,
// independently of the simulator's loader.
type recorded struct {
	stream string
	data   json.RawMessage
}

// readRecording returns, for one symbol of a cryptofeed or hftbacktest
// file, the snapshot's lastUpdateId and the frames in file order.
func readRecording(tb testing.TB, file, symbol string) (lastUpdateID int64, frames []recorded, snapAt int) {
	tb.Helper()
	f, err := os.Open(dataDir + file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReaderSize(zr, 1<<20)
	lower := strings.ToLower(symbol) + "@"
	snapAt = -1
	for {
		line, err := br.ReadBytes('\n')
		if i := bytes.IndexByte(line, '{'); i >= 0 && !bytes.HasPrefix(line, []byte("configuration")) {
			body := line[i:]
			if bytes.Contains(body, []byte(`"stream"`)) {
				var e envelope
				if json.Unmarshal(body, &e) == nil && strings.HasPrefix(e.Stream, lower) {
					frames = append(frames, recorded{e.Stream, e.Data})
				}
			} else if snapAt < 0 && (bytes.Contains(line[:i], []byte("symbol="+symbol+"&")) || !bytes.Contains(line[:i], []byte("symbol="))) {
				var snap struct {
					LastUpdateID int64 `json:"lastUpdateId"`
				}
				if json.Unmarshal(body, &snap) == nil {
					lastUpdateID, snapAt = snap.LastUpdateID, len(frames)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return lastUpdateID, frames, snapAt
}

// httpGet fetches a REST path.
func httpGet(tb testing.TB, s *Server, path string) (*http.Response, []byte) {
	tb.Helper()
	_, base := s.URL()
	resp, err := http.Get(base + path)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read: %v", path, err)
	}
	return resp, b
}

// waitFor polls cond until it holds or d passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
