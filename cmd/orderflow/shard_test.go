package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/natstest"
	"github.com/orderflow/orderflow/shard"
)

// TestRunShardRejectsBadFlags: sharding flag mistakes exit 2 before
// anything starts.
func TestRunShardRejectsBadFlags(t *testing.T) {
	runTestNoLeaks(t)
	runTestRefused(t, []runRefusal{
		{"NoBus", []string{"--shard"}, nil, "--shard needs --bus"},
		{"ShortTTL", []string{"--shard", "--bus", "nats://127.0.0.1:1", "--lease-ttl", "100ms"}, nil, "--lease-ttl"},
		{"Replicas", []string{"--shard", "--bus", "nats://127.0.0.1:1", "--shard-replicas", "9"}, nil, "--shard-replicas"},
		{"BadID", []string{"--shard", "--bus", "nats://127.0.0.1:1", "--shard-id", "a.b"}, nil, "--shard-id"},
		{"WithSourceBus", []string{"--shard", "--bus", "nats://127.0.0.1:1", "--source", "bus"}, nil, "--shard"},
	})
}

// TestRunShard: two `orderflow run --bus nats://... --shard` instances
// share two symbols: each symbol gets one owner (its lease names one of
// the two instances, the desired one by rendezvous), both symbols' trades
// reach the bus, and SIGINT stops both (exit 0) with every lease released.
func TestRunShard(t *testing.T) {
	runTestNoLeaks(t)
	ws, rest := runTestSim(t)
	node := natstest.StartNode(t)
	syms := []string{"DENTUSDT", "ZILUSDT"}
	ids := []string{"feed-a", "feed-b"}
	g := runTestGroup(t)
	var insts []*runInstance
	for _, id := range ids {
		args := []string{"run", "--symbols", strings.Join(syms, ","), "--ws-url", ws, "--rest-url", rest, "--listen", "off",
			"--data-dir", t.TempDir(), "--bus", node.URL(), "--bus-retention", "1h", "--shard", "--shard-id", id, "--lease-ttl", "3s"}
		insts = append(insts, g.start(id, nil, args))
	}
	_, js := natstest.Connect(t, node.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	owners := func() map[string]string {
		kv, err := js.KeyValue(ctx, shard.LeasesBucket)
		if err != nil {
			return nil
		}
		o := map[string]string{}
		for _, s := range syms {
			if e, err := kv.Get(ctx, "spot."+s); err == nil {
				o[s] = string(e.Value())
			}
		}
		return o
	}
	runTestWait(t, "each symbol leased by its desired owner", 60*time.Second, func() bool {
		o := owners()
		for _, s := range syms {
			if o[s] != shard.Owner(ids, s) {
				return false
			}
		}
		return true
	})
	runTestWait(t, "both symbols' trades on the bus", 60*time.Second, func() bool {
		for _, s := range syms {
			if id, err := shard.LastTradeID(ctx, js, market.Spot, s); err != nil || id == 0 {
				return false
			}
		}
		return true
	})
	for i, in := range insts {
		if !strings.Contains(in.stderr.String(), "Sharding the symbols") {
			t.Fatalf("%s did not shard:\n%s", ids[i], in.stderr.String())
		}
	}
	g.interrupt()
	if o := owners(); len(o) != 0 {
		t.Fatalf("leases left after both instances stopped: %v", o)
	}
}
