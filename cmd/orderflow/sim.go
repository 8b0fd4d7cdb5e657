package main

import (
	"context"
	"fmt"
	"math"
	"net"

	"github.com/orderflow/orderflow/market"

	"github.com/orderflow/orderflow/sim"
)

func init() {
	register(command{name: "sim", summary: "run the Binance simulator on loopback, replaying recordings", run: runSim})
}

func runSim(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "sim", "[--listen 127.0.0.1:PORT] [--speed N] [--loop] [--fanout N] [--market spot|usdm] FILE...")
	listen := fs.String("listen", "127.0.0.1:9443", "address to listen on (loopback by default)")
	speed := fs.Float64("speed", 1, "replay speed: 1 = recorded pace, 10 = ten times faster, negative = as fast as the slowest client reads")
	loop := fs.Bool("loop", false, "replay again and again, ids and times shifted so they keep increasing")
	fanout := fs.Int("fanout", 1, "serve N renamed copies of each recorded symbol (BTCUSDT, BTC0001USDT, ...)")
	marketFlag := fs.String("market", "", "market of the recordings: spot or usdm (default: detected)")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no recording given", errUsage)
	}
	if *fanout < 1 || *fanout > 100_000 {
		return fmt.Errorf("%w: --fanout %d: want 1..100000", errUsage, *fanout)
	}
	if *speed == 0 || math.IsNaN(*speed) || math.IsInf(*speed, 0) {
		return fmt.Errorf("%w: --speed %v: want a positive factor, or negative for as fast as clients read", errUsage, *speed)
	}
	if *marketFlag != "" {
		if _, err := market.ParseKind(*marketFlag); err != nil {
			return fmt.Errorf("%w: --market: %v", errUsage, err)
		}
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return fmt.Errorf("%w: --listen %q: %v", errUsage, *listen, err)
	}
	log, err := lf.logger(env.stderr)
	if err != nil {
		return err
	}
	srv, err := sim.New(sim.Config{Files: fs.Args(), Market: *marketFlag, Speed: *speed, Loop: *loop, Fanout: *fanout,
		Addr: *listen, Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	ws, http := srv.URL()
	fmt.Fprintf(env.stdout, "simulating Binance %s for %v\n  streams: %s\n  REST:    %s\n  try: orderflow run --market %s --symbols %s --ws-url %s --rest-url %s\n",
		srv.Market(), srv.Symbols(), ws, http, srv.Market(), firstOr(srv.Symbols(), "BTCUSDT"), ws, http)
	select {
	case <-ctx.Done():
	case <-srv.Done():
		log.Info("replay finished")
	}
	return srv.Close()
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
