package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/shard"
)

// shardFlags are `run`'s sharding flags: several instances on one bus
// share the --symbols list, each symbol streamed by one of them.
type shardFlags struct {
	on       bool
	id       string
	ttl      time.Duration
	replicas int
}

func (f *shardFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "shard", false, "share --symbols with the other instances on the bus: each symbol is streamed by one instance, and moves when it dies (needs --bus)")
	fs.StringVar(&f.id, "shard-id", "", "this instance's id on the bus (default: host name, pid and a random suffix)")
	fs.DurationVar(&f.ttl, "lease-ttl", shard.DefaultTTL, "symbol lease lifetime without renewal; a dead instance's symbols move within about 4/3 of it")
	fs.IntVar(&f.replicas, "shard-replicas", 1, "replicas of the lease buckets when this instance creates them (3 in a three-node cluster)")
}

// check validates the flags against the rest of the command line.
func (f *shardFlags) check(busURL string) error {
	if !f.on {
		return nil
	}
	if busURL == "" {
		return fmt.Errorf("%w: --shard needs --bus", errUsage)
	}
	if f.ttl < time.Second {
		return fmt.Errorf("%w: --lease-ttl %v: want at least 1s", errUsage, f.ttl)
	}
	if f.id != "" {
		if err := shard.CheckID(f.id); err != nil {
			return fmt.Errorf("%w: --shard-id: %v", errUsage, err)
		}
	}
	if f.replicas < 1 || f.replicas > 5 {
		return fmt.Errorf("%w: --shard-replicas %d: want 1 to 5", errUsage, f.replicas)
	}
	return nil
}

// shardConfig turns the service configuration into a sharded one: the
// service starts with no symbols and the returned list is shared through
// the leases.
func shardConfig(cfg *service.Config) []string {
	shared := cfg.Symbols
	cfg.Symbols = nil
	cfg.Sharded = true
	return shared
}

// startShard runs a shard member for svc until ctx ends, on a bus
// connection of its own: lease renewals must not queue behind the
// publisher's messages. The returned wait blocks until the member has
// left (released its leases), closes its connection and returns its
// error.
func startShard(ctx context.Context, log *slog.Logger, f shardFlags, svc *service.Service, b *busRun, shared []string) (wait func() error, err error) {
	nc, err := b.connect(ctx, "orderflow-shard")
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("shard: %w", err)
	}
	k := svc.Config().Market
	acquire, release := shard.ServiceHooks(svc, js, k)
	m, err := shard.New(shard.Config{JetStream: js, Market: k, Symbols: shared, ID: f.id, TTL: f.ttl,
		Replicas: f.replicas, Acquire: acquire, Release: release, Logger: log})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	log.Info("Sharding the symbols with the other instances on the bus", "id", m.ID(), "symbols", len(shared), "lease_ttl", f.ttl)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = m.Run(ctx) })
	return func() error {
		wg.Wait()
		nc.Close()
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			return runErr
		}
		return nil
	}, nil
}
