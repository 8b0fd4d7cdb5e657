package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/natstest"
)

// EnsureStream asked for three replicas while two of three nodes are down
// (no quorum: requests go unanswered or are refused) keeps trying, and
// creates the stream once the nodes are back, before its context ends.
func TestEnsureStreamWaitsForTheCluster(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	nc, _ := natstest.Connect(t, c.URLs())
	// Each attempt starts with a stream-update request
	// (CreateOrUpdateStream): the nodes come back once EnsureStream has
	// been refused and has tried again.
	const attempts = 3
	sent := make(chan struct{}, 64)
	js, err := jetstream.New(nc, jetstream.WithClientTrace(&jetstream.ClientTrace{RequestSent: func(subj string, _ []byte) {
		if strings.Contains(subj, ".STREAM.UPDATE.") {
			select {
			case sent <- struct{}{}:
			default:
			}
		}
	}}))
	if err != nil {
		t.Fatal(err)
	}
	c.Nodes[1].Kill()
	c.Nodes[2].Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	type result struct {
		s   jetstream.Stream
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := bus.EnsureStream(ctx, js, bus.StreamConfig{Replicas: 3, Retention: time.Hour})
		done <- result{s, err}
	}()
	for range attempts {
		select {
		case r := <-done:
			t.Fatalf("EnsureStream returned with two of three nodes down: %v, %v", r.s, r.err)
		case <-sent:
		case <-ctx.Done():
			t.Fatal("EnsureStream made fewer than 3 attempts before the deadline")
		}
	}
	c.Nodes[1].Restart()
	c.Nodes[2].Restart()
	r := <-done
	if r.err != nil {
		t.Fatalf("EnsureStream after the nodes came back: %v", r.err)
	}
	info, err := r.s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Config.Name != bus.StreamName {
		t.Fatalf("stream %s with %d replicas", info.Config.Name, info.Config.Replicas)
	}
}

// A request waiting cannot mend returns at once: another stream owns the
// subjects.
func TestEnsureStreamRefusedAtOnce(t *testing.T) {
	n := natstest.StartNode(t)
	_, js := natstest.Connect(t, n.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{bus.SubjectPrefix + ".>"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := bus.EnsureStream(ctx, js, bus.StreamConfig{Retention: time.Hour})
	var api *jetstream.APIError
	if err == nil || !errors.As(err, &api) {
		t.Fatalf("EnsureStream over another stream's subjects: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("refused after %v: it was tried until the context nearly ended", d)
	}
	t.Logf("refused: %v", err)
}
