package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRunSourceBusRejectsBadFlags: --source mistakes exit 2 before
// anything starts.
func TestRunSourceBusRejectsBadFlags(t *testing.T) {
	runTestNoLeaks(t)
	runTestRefused(t, []runRefusal{
		{"UnknownSource", []string{"--source", "kafka"}, nil, "--source"},
		{"BusSourceWithoutBus", []string{"--source", "bus"}, nil, "--source bus"},
		{"BusSourceEmbedded", []string{"--source", "bus", "--bus", "embedded"}, nil, "--source bus"},
		{"NegativeReplay", []string{"--source", "bus", "--bus", "nats://127.0.0.1:1", "--bus-replay=-1m"}, nil, "--bus-replay"},
		{"ReplayWithoutBusSource", []string{"--bus-replay", "1h"}, nil, "--bus-replay"},
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunSourceBus: a feed instance (`run --bus embedded`, streaming from
// the simulator) and a query instance (`run --source bus --bus
// nats://...`, no Binance endpoint at all) in one process: the query
// instance's API serves the symbols' metrics and synced books computed from
// the bus, reports ready, and exposes the source's counters; SIGINT stops
// both (exit 0).
func TestRunSourceBus(t *testing.T) {
	runTestNoLeaks(t)
	ws, rest := runTestSim(t)
	busAddr, apiAddr := freeAddr(t), freeAddr(t)
	feedArgs := []string{"run", "--symbols", "DENTUSDT,ZILUSDT", "--ws-url", ws, "--rest-url", rest, "--listen", "off",
		"--data-dir", t.TempDir(), "--bus", "embedded", "--bus-listen", busAddr, "--bus-retention", "1h"}
	g := runTestGroup(t)
	feedErr := g.start("feed", nil, feedArgs).stderr
	runTestWait(t, "the feed's bus", 30*time.Second, func() bool { return strings.Contains(feedErr.String(), "Publishing on the bus") })
	// The query instance is given unreachable Binance endpoints: it must
	// not need them.
	queryArgs := []string{"run", "--symbols", "DENTUSDT,ZILUSDT", "--source", "bus", "--bus", "nats://" + busAddr,
		"--ws-url", "ws://127.0.0.1:1", "--rest-url", "http://127.0.0.1:1", "--listen", apiAddr, "--data-dir", t.TempDir()}
	queryErr := g.start("query", nil, queryArgs).stderr
	get := func(path string) (int, []byte) {
		resp, err := http.Get("http://" + apiAddr + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	runTestWait(t, "the query instance ready", 60*time.Second, func() bool { c, _ := get("/readyz"); return c == http.StatusOK })
	for _, sym := range []string{"DENTUSDT", "ZILUSDT"} {
		runTestWait(t, sym+" trades computed from the bus", 60*time.Second, func() bool {
			c, b := get("/v1/symbols/" + sym + "/metrics")
			var m struct {
				Totals struct {
					Trades int64 `json:"trades"`
				} `json:"totals"`
			}
			return c == http.StatusOK && json.Unmarshal(b, &m) == nil && m.Totals.Trades > 0
		})
		c, b := get("/v1/symbols/" + sym + "/book")
		if c != http.StatusOK || !strings.Contains(string(b), `"synced":true`) || !strings.Contains(string(b), `"bids":[{"price"`) {
			t.Fatalf("%s book from the bus: %d %s", sym, c, b)
		}
	}
	if c, b := get("/metrics"); c != http.StatusOK || !strings.Contains(string(b), `orderflow_bus_source_messages_total{topic="trades"}`) {
		t.Fatalf("query /metrics: %d, no source counters", c)
	}
	g.interrupt()
	if strings.Contains(queryErr.String(), "message not applied") {
		t.Errorf("the query instance refused messages:\n%s", queryErr.String())
	}
}
