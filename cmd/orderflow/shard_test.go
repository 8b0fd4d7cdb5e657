package main

import (
	"context"
	"os"
	"strings"
	"syscall"
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
	type inst struct {
		stderr *runTestBuffer
		exit   chan int
	}
	var insts []inst
	for _, id := range ids {
		env, _, stderr := runTestEnv(nil)
		args := []string{"run", "--symbols", strings.Join(syms, ","), "--ws-url", ws, "--rest-url", rest, "--listen", "off",
			"--data-dir", t.TempDir(), "--bus", node.URL(), "--bus-retention", "1h", "--shard", "--shard-id", id, "--lease-ttl", "3s"}
		in := inst{stderr: stderr, exit: make(chan int, 1)}
		go func() { in.exit <- runMain(env, args) }()
		insts = append(insts, in)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
			for _, in := range insts {
				<-in.exit
			}
		}
	}()
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
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for i, in := range insts {
		select {
		case c := <-in.exit:
			if c != 0 {
				t.Fatalf("%s: exit %d: %s", ids[i], c, in.stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop on SIGINT", ids[i])
		}
	}
	if o := owners(); len(o) != 0 {
		t.Fatalf("leases left after both instances stopped: %v", o)
	}
}
