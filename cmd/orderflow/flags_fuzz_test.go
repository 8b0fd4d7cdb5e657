package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// fuzzCommands are the commands whose flag parsing FuzzFlags exercises.
var fuzzCommands = []string{"run", "replay", "sim"}

// fuzzStartedAfter is how long a command may take before it counts as
// started: flag checks take microseconds, so a command still running by
// then has passed them (or is loading a recording it was given).
const fuzzStartedAfter = time.Second

// fuzzUnsafe reports inputs the fuzz target leaves alone because running
// them could touch the machine beyond the test: a data or capture
// directory the service would create anywhere, and device or /proc paths a
// command would read from (a terminal or a pipe blocks forever).
func fuzzUnsafe(args []string, envs string) bool {
	if strings.Contains(strings.ToUpper(envs), "DATA_DIR") || strings.Contains(strings.ToUpper(envs), "CAPTURE") {
		return true
	}
	// A NATS URL would have run --bus dial any host.
	if strings.Contains(envs, "nats://") || strings.Contains(envs, "tls://") {
		return true
	}
	for _, a := range args {
		if strings.Contains(a, "nats://") || strings.Contains(a, "tls://") {
			return true
		}
		if strings.Contains(a, "data-dir") || strings.Contains(a, "capture") || strings.Contains(a, "dev/") || strings.Contains(a, "proc/") ||
			strings.Contains(a, "sys/") || a == "-" || strings.HasPrefix(a, "/dev") {
			return true
		}
	}
	return false
}

// fuzzEnv builds the fake environment: loopback-only defaults that keep a
// command that does start harmless (an ephemeral API port, endpoints on a
// closed loopback port, a temporary data directory), then the fuzzed
// KEY=VALUE lines, which win.
func fuzzEnv(t *testing.T, envs string) map[string]string {
	env := map[string]string{
		"ORDERFLOW_LISTEN":   "127.0.0.1:0",
		"ORDERFLOW_WS_URL":   "ws://127.0.0.1:1",
		"ORDERFLOW_REST_URL": "http://127.0.0.1:1",
		"ORDERFLOW_DATA_DIR": t.TempDir(),
		// --bus embedded on an ephemeral loopback port.
		"ORDERFLOW_BUS_LISTEN": "127.0.0.1:0",
	}
	for _, line := range strings.Split(envs, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// FuzzFlags runs run, replay and sim in-process with fuzzed arguments and
// a fuzzed environment. Whatever the input: runMain never panics; it exits
// 0, 1 or 2; an exit 2 (a usage error) comes at once, with a message on
// stderr, before anything starts; a command that does start stops on
// SIGTERM without a usage error; and every goroutine runMain started
// (its signal watcher included) has ended once it returns, so runMain is
// safe to call again and again in one process.
func FuzzFlags(f *testing.F) {
	for _, s := range []struct {
		cmd        uint8
		args, envs string
	}{
		{0, "--market\nmars", ""},
		{0, "--symbols\n", ""},
		{0, "--symbols\nbtc-usdt", ""},
		{0, "--listen\n0.0.0.0:8080", ""},
		{0, "--backfill\n-5", ""},
		{0, "--bar-lateness\n-5s", ""},
		{0, "--log-level\nloud", ""},
		{0, "--stale-timeout\nsoon", ""},
		{0, "--snapshot-limit\n7\n--market\nusdm", ""},
		{0, "--ws-url\nlocalhost", ""},
		{0, "extra", ""},
		{0, "-h", ""},
		{0, "", "ORDERFLOW_MARKET=mars"},
		{0, "", "ORDERFLOW_DIAL_TIMEOUT=-1s"},
		{0, "--listen\noff", ""}, // valid: starts, then stops on SIGTERM
		{0, "--listen\noff\n--bus\nembedded", ""},
		{0, "--bus\nhttp://x", ""},
		{0, "--bus\nembedded\n--bus-retention\n1s", ""},
		{0, "--listen\noff\n--shard", ""},
		{0, "--listen\noff\n--bus\nembedded\n--shard\n--lease-ttl\n10ms", ""},
		{0, "--listen\noff\n--bus\nembedded\n--shard\n--shard-id\na.b", ""},
		{0, "--listen\noff\n--bus\nembedded\n--shard", ""}, // valid: leases on the embedded bus
		{0, "--windows\n1m,1m", ""},
		{0, "--windows\n30s,2m\n--listen\noff", ""}, // valid
		{0, "--large-notional\n-1", ""},
		{0, "--large-percentile\nNaN", ""},
		{0, "--imbalance-ratio\n50", ""},
		{0, "--stacked-imbalances\n-3", ""},
		{0, "--value-area\n0", ""},
		{0, "--wall-min-notional\nlots", ""},
		{0, "--wall-factor\n9999999", ""},
		{0, "--wall-min-age\n-5s", ""},
		{0, "--listen\noff", "ORDERFLOW_LARGE_NOTIONAL=100000\nORDERFLOW_WALL_MIN_AGE=0s"}, // valid
		{0, "--wall-min-notional\nBTCUSDT=-1", ""},
		{0, "--busy-poll\n-1us", ""},
		{0, "--busy-poll\n2s", ""},
		{0, "--listen\noff\n--busy-poll\n100us", ""}, // valid
		{0, "--bus\nembedded\n--bus-listen\n0.0.0.0:4222", ""},
		{0, "--bus\nembedded\n--bus-token-file\n/nonexistent/token", ""},
		{0, "--bus\nnats://127.0.0.1:1\n--bus-tls-ca\nmissing.pem", ""},
		{0, "--bus\nnats://127.0.0.1:1\n--bus-user\nu", ""},
		{0, "--bus\nembedded\n--bus-server-cert\nc.pem", ""},
		{0, "--bus\nnats://127.0.0.1:1\n--bus-creds\nx.creds\n--bus-token\nt", ""},
		{1, "", ""},
		{1, "--depth\n0\nx.gz", ""},
		{1, "--bars\n1500ms\nx.gz", ""},
		{1, "--footprint\nx.gz", ""},
		{1, "--price-group\n-1\nx.gz", ""},
		{1, "--market\nspotty\nx.gz", ""},
		{1, "no-such-file.gz", ""},
		{2, "", ""},
		{2, "--speed\n0\nx.gz", ""},
		{2, "--fanout\n0\nx.gz", ""},
		{2, "--fanout\n100001\nx.gz", ""},
		{2, "--speed\nfast\nx.gz", ""},
		{2, "no-such-file.gz", ""},
	} {
		f.Add(s.cmd, s.args, s.envs)
	}
	// A command that starts is stopped with SIGTERM, which runMain catches
	// while it runs (SIGINT would also stop the fuzzing engine's worker,
	// which listens for it); this handler keeps the process alive should
	// the signal land just after runMain has stopped listening.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGTERM)
	f.Cleanup(func() { signal.Stop(guard) })

	f.Fuzz(func(t *testing.T, which uint8, argv, envs string) {
		name := fuzzCommands[int(which)%len(fuzzCommands)]
		var args []string
		if argv != "" {
			args = strings.Split(argv, "\n")
		}
		if fuzzUnsafe(args, envs) {
			return
		}
		code, started, stderr := fuzzRun(t, name, args, fuzzEnv(t, envs), guard)
		switch {
		case code == 2 && started:
			t.Errorf("orderflow %s %q: exit 2 after running for over %v: a usage error must be reported before anything starts; stderr %q",
				name, args, fuzzStartedAfter, fuzzTail(stderr))
		case code == 2 && !strings.Contains(stderr, "orderflow"):
			t.Errorf("orderflow %s %q: exit 2 without a message; stderr %q", name, args, stderr)
		case code < 0 || code > 2:
			t.Errorf("orderflow %s %q: exit %d, want 0, 1 or 2", name, args, code)
		}
	})
}

// fuzzRun runs one command in-process. A command still running after
// fuzzStartedAfter has started: it gets SIGTERM and must stop. fuzzRun
// also checks that runMain left no goroutine behind.
func fuzzRun(t *testing.T, name string, args []string, envMap map[string]string, guard chan os.Signal) (code int, started bool, stderr string) {
	t.Helper()
	env, _, errb := runTestEnv(envMap)
	g0 := runtime.NumGoroutine()
	ignore := goleak.IgnoreCurrent()
	done := make(chan int, 1)
	go func() { done <- runMain(env, append([]string{name}, args...)) }()
	select {
	case code = <-done:
	case <-time.After(fuzzStartedAfter):
		started = true
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case code = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("orderflow %s %q: still running 30 s after SIGTERM", name, args)
		}
	}
	for len(guard) > 0 {
		<-guard
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if runtime.NumGoroutine() > g0 {
		t.Errorf("orderflow %s %q returned %d but left goroutines running: %v", name, args, code, goleak.Find(ignore))
	}
	return code, started, errb.String()
}

// TestFlagsRefusedBeforeStart: each invalid command line of run, replay
// and sim exits with status 2 and a message naming what is wrong, at once.
func TestFlagsRefusedBeforeStart(t *testing.T) {
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)
	rec := runTestRecording() // a real recording, so only the flag is wrong
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"run/UnknownMarket", []string{"run", "--market", "mars"}, nil, "--market"},
		{"run/BadSymbol", []string{"run", "--symbols", "btc-usdt"}, nil, "--symbols"},
		{"run/NoSymbol", []string{"run", "--symbols", " , "}, nil, "--symbols"},
		{"run/OpenListenNoToken", []string{"run", "--listen", "0.0.0.0:8080"}, nil, "--listen"},
		{"run/Backfill", []string{"run", "--backfill", "1001"}, nil, "--backfill"},
		{"run/LogLevel", []string{"run", "--log-level", "loud"}, nil, "--log-level"},
		{"run/DialTimeout", []string{"run", "--dial-timeout", "0s"}, nil, "--dial-timeout"},
		{"run/BusyPoll", []string{"run", "--busy-poll", "2s"}, nil, "--busy-poll"},
		{"run/StaleTimeout", []string{"run", "--stale-timeout", "-1s"}, nil, "--stale-timeout"},
		{"run/SnapshotLimitUSDM", []string{"run", "--market", "usdm", "--snapshot-limit", "7"}, nil, "--snapshot-limit"},
		{"run/WSURLNoScheme", []string{"run", "--ws-url", "localhost:9443"}, nil, "--ws-url"},
		{"run/TradeStream", []string{"run", "--trade-stream", "trades"}, nil, "trade"},
		{"run/DepthStream", []string{"run", "--depth-stream", "depth5"}, nil, "depth"},
		{"run/ExtraArgs", []string{"run", "now"}, nil, "unexpected arguments"},
		{"run/EnvMarket", []string{"run"}, map[string]string{"ORDERFLOW_MARKET": "mars"}, "market"},
		{"run/EnvDuration", []string{"run"}, map[string]string{"ORDERFLOW_DIAL_TIMEOUT": "soon"}, "ORDERFLOW_DIAL_TIMEOUT"},
		{"replay/NoFile", []string{"replay"}, nil, "no recording"},
		{"replay/Depth", []string{"replay", "--depth", "0", rec}, nil, "--depth"},
		{"replay/Bars", []string{"replay", "--bars", "1500ms", rec}, nil, "--bars"},
		{"replay/FootprintNoBars", []string{"replay", "--footprint", rec}, nil, "--footprint"},
		{"replay/PriceGroup", []string{"replay", "--bars", "1m", "--price-group", "-1", rec}, nil, "--price-group"},
		{"replay/UnknownMarket", []string{"replay", "--market", "spotty", rec}, nil, "--market"},
		{"sim/NoFile", []string{"sim"}, nil, "no recording"},
		{"sim/ZeroSpeed", []string{"sim", "--speed", "0", rec}, nil, "--speed"},
		{"sim/Fanout", []string{"sim", "--fanout", "0", rec}, nil, "--fanout"},
		{"sim/SpeedNotANumber", []string{"sim", "--speed", "fast", rec}, nil, "invalid value"},
		{"sim/UnknownMarket", []string{"sim", "--market", "mars", rec}, nil, "market"},
		{"sim/NaNSpeed", []string{"sim", "--speed", "NaN", rec}, nil, "--speed"},
		{"sim/InfSpeed", []string{"sim", "--speed", "+Inf", rec}, nil, "--speed"},
		{"sim/BadListen", []string{"sim", "--listen", "nowhere", rec}, nil, "--listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := fuzzEnv(t, "")
			for k, v := range tc.env {
				env[k] = v
			}
			code, started, stderr := fuzzRun(t, tc.args[0], tc.args[1:], env, guard)
			var problems []string
			if code != 2 {
				problems = append(problems, fmt.Sprintf("exit %d, want 2", code))
			}
			if started {
				problems = append(problems, fmt.Sprintf("still running after %v: it started", fuzzStartedAfter))
			}
			if !strings.Contains(stderr, tc.want) {
				problems = append(problems, fmt.Sprintf("stderr does not name %s", tc.want))
			}
			if len(problems) > 0 {
				t.Errorf("orderflow %q: %s; stderr %q", tc.args, strings.Join(problems, "; "), fuzzTail(stderr))
			}
		})
	}
}

func fuzzTail(s string) string {
	if len(s) > 600 {
		return "..." + s[len(s)-600:]
	}
	return s
}
