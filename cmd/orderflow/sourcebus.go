package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/service"
)

// sourceFlags choose where `run` takes its data from.
type sourceFlags struct {
	source string
	replay time.Duration
}

func (f *sourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.source, "source", "binance", `where the data comes from: binance (stream from Binance, or --ws-url) or bus (the query tier: compute and serve from the events other instances publish on --bus nats://...)`)
	fs.DurationVar(&f.replay, "bus-replay", 0, "with --source bus: how far back the stream's retention is read at start (0: all of it)")
}

// check reports flag mistakes before anything starts.
func (f *sourceFlags) check(bf *busFlags) error {
	switch f.source {
	case "binance":
		if f.replay != 0 {
			return fmt.Errorf("%w: --bus-replay: only with --source bus", errUsage)
		}
		return nil
	case "bus":
	default:
		return fmt.Errorf("%w: --source %q: want binance or bus", errUsage, f.source)
	}
	if bf.url == "" || bf.url == "embedded" {
		return fmt.Errorf("%w: --source bus reads the bus of feed instances: give --bus nats://host:port[,...]", errUsage)
	}
	if f.replay < 0 {
		return fmt.Errorf("%w: --bus-replay %v: must not be negative", errUsage, f.replay)
	}
	return nil
}

// runFromBus runs the query tier: a service fed by the bus source serves
// the API, push, dashboard and MCP as a Binance-fed one does.
func runFromBus(ctx context.Context, log *slog.Logger, sf *serviceFlags, bf *busFlags, f *sourceFlags, cfg service.Config) error {
	cc := bf.sec.client("orderflow-query")
	cc.Logger = log
	nc, err := bus.Connect(ctx, bf.url, cc)
	if err != nil {
		return err
	}
	defer nc.Close()
	src, err := bus.NewSource(bus.SourceConfig{Conn: nc, Name: "bus " + bf.url, ReplayFrom: f.replay, Logger: log})
	if err != nil {
		return err
	}
	cfg.Source = src
	svc, err := service.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log.Info("Reading the bus", "url", bf.url, "stream", bus.StreamName, "replay", replayText(f.replay))
	err = serve(ctx, log, svc, sf.listen, sf.token, nil, src)
	if st := src.Stats(); st.Invalid+st.Gaps > 0 {
		log.Warn("bus source: messages not applied", "invalid", st.Invalid, "gaps", st.Gaps, "unsynced", st.Unsynced)
	}
	return err
}

func replayText(d time.Duration) string {
	if d == 0 {
		return "all retained"
	}
	return d.String()
}
