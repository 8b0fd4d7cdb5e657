package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow/chaos"
)

func init() {
	register(command{name: "soak", summary: "replay at high speed with random faults on loopback; report anything lost", run: runSoak})
}

// errSoakFailed is returned when a soak found missing or duplicate trades,
// mismatches or leaked goroutines: the process exits with status 1 after
// the verdict line.
var errSoakFailed = errors.New("soak found trades missing or duplicated, mismatches or leaked goroutines")

// maxSoak bounds --duration: a soak is a test run, not a service.
const maxSoak = 24 * time.Hour

func runSoak(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "soak", "--duration D [--seed N] [--report-every 10s] [--speed 20] [--faults a,b] [--data DIR]")
	duration := fs.Duration("duration", 0, "how long to inject faults, e.g. 1m (required; at most 24h)")
	seed := fs.Uint64("seed", 0, "seed of the random fault sequence (0: from the clock); printed so a run can be repeated")
	every := fs.Duration("report-every", 10*time.Second, "print memory and goroutine counts this often")
	speed := fs.Float64("speed", 20, "replay speed: recorded time divided by this (positive)")
	faultList := fs.String("faults", "", "comma-separated faults to draw from (default: all of the spot BTCUSDT setup: "+strings.Join(chaos.SoakFaults(), ",")+")")
	data := fs.String("data", filepath.Join("testdata", "binance"), "directory holding the bundled recordings")
	serviceLogs := fs.Bool("service-logs", false, "also print the service's own logs (at --log-level)")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *duration <= 0 || *duration > maxSoak {
		return fmt.Errorf("%w: --duration %v: want a positive duration up to %v, e.g. 1m", errUsage, *duration, maxSoak)
	}
	if *every <= 0 {
		return fmt.Errorf("%w: --report-every %v: must be positive", errUsage, *every)
	}
	if !(*speed > 0) || *speed > 10_000 { // also refuses NaN
		return fmt.Errorf("%w: --speed %v: want a factor in (0, 10000]", errUsage, *speed)
	}
	var names []string
	if *faultList != "" {
		allowed := chaos.SoakFaults()
		for _, n := range strings.Split(*faultList, ",") {
			n = strings.TrimSpace(n)
			if !slices.Contains(allowed, n) {
				return fmt.Errorf("%w: --faults: %q is not a soak fault; choose from %s", errUsage, n, strings.Join(allowed, ","))
			}
			names = append(names, n)
		}
	}
	if st, err := os.Stat(*data); err != nil || !st.IsDir() {
		return fmt.Errorf("%w: --data %q: not a directory with the recordings (run from the repository root or point --data at testdata/binance)", errUsage, *data)
	}
	log, err := lf.logger(env.stderr)
	if err != nil {
		return err
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	opts := chaos.Options{DataDir: *data, Speed: *speed, Logger: log,
		// A second between faults at least: the dial rate stays well under
		// Binance's 300 connection attempts per 5 minutes on long soaks.
		Gap: time.Second}
	if *serviceLogs {
		opts.ServiceLog = log.Handler()
	}
	h := chaos.New(opts)
	fmt.Fprintf(env.stdout, "soak: seed=%d duration=%v speed=%v report-every=%v (repeat with --seed %d)\n", *seed, *duration, *speed, *every, *seed)
	log.Info("soak starting", "seed", *seed, "duration", *duration, "data", *data)
	res, err := h.Soak(ctx, chaos.SoakOptions{Duration: *duration, Seed: *seed, ReportEvery: *every, Faults: names, Out: env.stdout})
	if err != nil {
		return err
	}
	if res.Recovered < res.Faults {
		log.Warn("the service did not recover from every fault within the bound (see the table)", "faults", res.Faults, "recovered", res.Recovered)
	}
	fmt.Fprintln(env.stdout, res.FDLine())
	fmt.Fprintln(env.stdout, res.Line())
	if !res.OK() {
		return errSoakFailed
	}
	return nil
}
