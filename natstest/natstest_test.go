package natstest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A value written to a single node survives its restart (the store is
// kept).
func TestNodeKeepsStoreAcrossRestart(t *testing.T) {
	n := natstest.StartNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := natstest.Connect(t, n.URL())
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	n.Kill()
	if n.Running() {
		t.Fatal("node still running after Kill")
	}
	n.Restart()
	var got jetstream.KeyValueEntry
	waitFor(t, 20*time.Second, "value readable after restart", func() bool {
		// Each attempt bounded: a request sent while the client is still
		// reconnecting can go unanswered, and the next one is what counts.
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		e, err := kv.Get(gctx, "k")
		got = e
		return err == nil
	})
	if string(got.Value()) != "v1" {
		t.Fatalf("after restart k = %q, want v1", got.Value())
	}
}

// A three-node cluster with a replicated bucket keeps accepting writes
// and compare-and-set updates with one node down, and the node rejoins.
func TestClusterSurvivesOneNode(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, js := natstest.Connect(t, c.URLs())
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b", Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(ctx, "k", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	// Kill the bucket's stream leader, then another node once the first
	// is back: each time a new leader must take over.
	for i := range 2 {
		n := c.StreamLeader("KV_b")
		if n == nil {
			n = c.Nodes[i]
		}
		n.Kill()
		// With one node down the other two are a quorum: an update at the
		// held revision goes through once the stream has a leader, and an
		// update at a stale revision never does.
		waitFor(t, 30*time.Second, "update with node "+n.Name+" down", func() bool {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			r, err := kv.Update(actx, "k", []byte{byte('b' + i)}, rev)
			if err == nil {
				rev = r
				return true
			}
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				// An earlier attempt timed out here but was stored: the
				// key must come to hold exactly what it wrote (a direct
				// get may be served by a replica a moment behind).
				e, gerr := kv.Get(ctx, "k")
				if gerr == nil && len(e.Value()) == 1 && e.Value()[0] == byte('b'+i) {
					rev = e.Revision()
					return true
				}
			}
			return false
		})
		if _, err := kv.Update(ctx, "k", []byte("stale"), rev-1); !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			t.Fatalf("update at a stale revision: err %v, want a revision mismatch", err)
		}
		n.Restart()
		c.WaitReady(t)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	natstest.WaitFor(t, what, d, ok)
}
