package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/natstest"
)

// TestRunBusRejectsBadFlags: bus flag mistakes exit 2 before anything
// starts.
func TestRunBusRejectsBadFlags(t *testing.T) {
	runTestNoLeaks(t)
	runTestRefused(t, []runRefusal{
		{"NotNATS", []string{"--bus", "http://127.0.0.1:4222"}, nil, "--bus"},
		{"OneOfSeveralNotNATS", []string{"--bus", "nats://a:4222,b:4222"}, nil, "--bus"},
		{"ShortRetention", []string{"--bus", "embedded", "--bus-retention", "1s"}, nil, "--bus-retention"},
		{"ReplicasEmbedded", []string{"--bus", "embedded", "--bus-replicas", "3"}, nil, "--bus-replicas"},
		{"TooManyReplicas", []string{"--bus", "nats://127.0.0.1:4222", "--bus-replicas", "7"}, nil, "--bus-replicas"},
		{"BadListen", []string{"--bus", "embedded", "--bus-listen", "4222"}, nil, "--bus-listen"},
	})
}

// TestRunBusEmbedded: `orderflow run --bus embedded` against the simulator
// serves a NATS server on the given loopback port, with the ORDERFLOW
// stream stored under the data directory; a client sees schema v1 trades
// with their message ids and book snapshots; SIGINT stops everything
// (exit 0) with nothing dropped.
func TestRunBusEmbedded(t *testing.T) {
	runTestNoLeaks(t)
	ws, rest := runTestSim(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"run", "--symbols", "DENTUSDT,ZILUSDT", "--ws-url", ws, "--rest-url", rest, "--listen", "off",
		"--data-dir", dir, "--bus", "embedded", "--bus-listen", addr, "--bus-retention", "1h"}
	g := runTestGroup(t)
	stderr := g.start("run", nil, args).stderr
	runTestWait(t, "the embedded server", 20*time.Second, func() bool {
		return strings.Contains(stderr.String(), "Publishing on the bus")
	})
	if _, err := os.Stat(filepath.Join(dir, "nats")); err != nil {
		t.Fatalf("no JetStream store under the data directory: %v", err)
	}
	nc, js := natstest.Connect(t, "nats://"+addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxAge != time.Hour || cfg.Storage != jetstream.FileStorage || cfg.Duplicates != bus.DefaultDuplicates {
		t.Fatalf("stream config: max age %v, storage %v, duplicates %v", cfg.MaxAge, cfg.Storage, cfg.Duplicates)
	}
	var m jetstream.RawStreamMsg
	runTestWait(t, "a DENTUSDT trade and book snapshot on the bus", 60*time.Second, func() bool {
		tm, err := st.GetLastMsgForSubject(ctx, bus.Subject(market.Spot, "DENTUSDT", bus.TopicTrades))
		if err != nil {
			return false
		}
		_, err = st.GetLastMsgForSubject(ctx, bus.Subject(market.Spot, "DENTUSDT", bus.TopicBookSnapshot))
		m = *tm
		return err == nil
	})
	var tr bus.Trade
	if err := bus.DecodeTrade(m.Data, &tr); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("spot.DENTUSDT.t.%d", tr.ID); m.Header.Get(jetstream.MsgIDHeader) != want || tr.Symbol != "DENTUSDT" {
		t.Fatalf("trade %+v with message id %q, want %q", tr, m.Header.Get(jetstream.MsgIDHeader), want)
	}
	nc.Close()
	g.interrupt()
	if strings.Contains(stderr.String(), "bus queue full") || strings.Contains(stderr.String(), "publish failed") {
		t.Fatalf("events lost:\n%s", stderr.String())
	}
}
