package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/dirlock"
	"github.com/orderflow/orderflow/natstest"
	"github.com/orderflow/orderflow/sim"
	"github.com/orderflow/orderflow/stacktest"
)

// runTestRecording is a bundled recording (spot, 10 symbols, real
// aggTrades).
func runTestRecording() string {
	return stacktest.Testdata("cryptofeed-spot-10sym-20210405.txt.gz")
}

// runTestNoLeaks checks, after every other cleanup (the simulator's),
// that the test left no goroutine behind.
func runTestNoLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// runTestSim starts a looping simulator for the run command's tests.
func runTestSim(t *testing.T) (ws, rest string) {
	t.Helper()
	srv := stacktest.StartSim(t, sim.Config{Files: []string{runTestRecording()}, Speed: 20, Loop: true})
	return srv.URL()
}

// runTestBuffer is a bytes.Buffer safe for the concurrent writes of a
// command's logger and a test reading it.
type runTestBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *runTestBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *runTestBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runTestEnv(env map[string]string) (*environ, *runTestBuffer, *runTestBuffer) {
	out, errb := &runTestBuffer{}, &runTestBuffer{}
	return &environ{stdout: out, stderr: errb, getenv: func(k string) string { return env[k] }}, out, errb
}

// runRefusal is one mistake in `orderflow run`'s flags or environment and
// what its message must contain.
type runRefusal struct {
	name string
	args []string
	env  map[string]string
	want string
}

// runTestRefused runs each case as a subtest: `orderflow run` (with
// unreachable endpoints and no API) must exit 2 with a message containing
// want before anything starts: no data directory is created.
func runTestRefused(t *testing.T, cases []runRefusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			env, _, stderr := runTestEnv(tc.env)
			args := append([]string{"run", "--data-dir", dir, "--ws-url", "ws://127.0.0.1:1", "--rest-url", "http://127.0.0.1:1", "--listen", "off"}, tc.args...)
			if code := runMain(env, args); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and a message containing %q", code, stderr.String(), tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("data directory touched before the flags were checked: %v", err)
			}
		})
	}
}

// runGroup is a set of `orderflow` runs in this process. One SIGINT
// stops them all (each runMain catches it), so the group sends it once:
// from interrupt, or at cleanup if the test ended first and a run is still
// going (never when none listens: SIGINT would then end the test binary).
type runGroup struct {
	t     *testing.T
	insts []*runInstance
	done  bool
}

// runInstance is one run of a group: its stderr and its exit status.
type runInstance struct {
	name   string
	stderr *runTestBuffer
	exit   chan int
	code   int
	ended  bool
}

func runTestGroup(t *testing.T) *runGroup {
	g := &runGroup{t: t}
	t.Cleanup(func() {
		if g.done {
			return
		}
		var running []*runInstance
		for _, in := range g.insts {
			if _, ended := in.hasEnded(); !ended {
				running = append(running, in)
			}
		}
		if len(running) == 0 {
			return
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
		for _, in := range running {
			<-in.exit
		}
	})
	return g
}

// start runs `orderflow args...` with the environment env in a goroutine.
func (g *runGroup) start(name string, env map[string]string, args []string) *runInstance {
	e, _, stderr := runTestEnv(env)
	in := &runInstance{name: name, stderr: stderr, exit: make(chan int, 1)}
	go func() { in.exit <- runMain(e, args) }()
	g.insts = append(g.insts, in)
	return in
}

// hasEnded reports whether the run has ended, and its exit status.
func (in *runInstance) hasEnded() (int, bool) {
	if !in.ended {
		select {
		case in.code = <-in.exit:
			in.ended = true
		default:
		}
	}
	return in.code, in.ended
}

// interrupt sends SIGINT and waits up to 30 s for every run to end: an
// exit status other than 0 fails the test, a run that does not end stops
// it.
func (g *runGroup) interrupt() {
	g.t.Helper()
	g.done = true
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		g.t.Fatal(err)
	}
	for _, in := range g.insts {
		if _, ended := in.hasEnded(); !ended {
			select {
			case in.code = <-in.exit:
				in.ended = true
			case <-time.After(30 * time.Second):
				g.t.Fatalf("%s did not stop on SIGINT", in.name)
			}
		}
		if in.code != 0 {
			g.t.Errorf("%s: exit %d:\n%s", in.name, in.code, in.stderr.String())
		}
	}
}

func runTestWait(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	natstest.WaitFor(t, what, bound, cond)
}

// TestRunRejectsBadFlags: every malformed flag or environment variable is
// reported with its name and exit status 2 before anything starts (no data
// directory is created, no connection is made).
func TestRunRejectsBadFlags(t *testing.T) {
	runTestNoLeaks(t)
	cases := []runRefusal{
		{"UnknownFlag", []string{"--nope"}, nil, "flag provided but not defined: -nope"},
		{"BadMarket", []string{"--market", "coinm"}, nil, "--market"},
		{"BadSymbol", []string{"--symbols", "BTC-USDT"}, nil, `--symbols: service: symbol "BTC-USDT"`},
		{"NoSymbol", []string{"--symbols", " , "}, nil, "--symbols: no symbol given"},
		{"WSURLNotAURL", []string{"--ws-url", "127.0.0.1:9443"}, nil, "--ws-url"},
		{"WSURLWrongScheme", []string{"--ws-url", "http://127.0.0.1:9443"}, nil, "WebSocket URL"},
		{"RESTURLNotAURL", []string{"--rest-url", "localhost"}, nil, "--rest-url"},
		{"BackfillTooLarge", []string{"--backfill", "5000"}, nil, "--backfill 5000"},
		{"NegativeBackfill", []string{"--backfill=-1"}, nil, "--backfill -1"},
		{"NegativeBarLateness", []string{"--bar-lateness=-1s"}, nil, "--bar-lateness -1s"},
		{"BarLatenessTooLong", []string{"--bar-lateness", "2h"}, nil, "--bar-lateness 2h0m0s"},
		{"BarLatenessSubMillisecond", []string{"--bar-lateness", "1500us"}, nil, "--bar-lateness 1.5ms"},
		{"ZeroStopTimeout", []string{"--stop-timeout", "0s"}, nil, "--stop-timeout 0s"},
		{"BadDuration", []string{"--dial-timeout", "soon"}, nil, `invalid value "soon" for flag -dial-timeout`},
		{"NegativeStaleTimeout", []string{"--stale-timeout", "-1s"}, nil, "--stale-timeout"},
		{"SnapshotLimitUSDM", []string{"--market", "usdm", "--snapshot-limit", "5000"}, nil, "--snapshot-limit 5000"},
		{"TradeStream", []string{"--trade-stream", "kline_1m"}, nil, "--trade-stream"},
		{"DepthStreamTopN", []string{"--depth-stream", "depth20"}, nil, `depth channel "depth20"`},
		{"OpenListenWithoutToken", []string{"--listen", "0.0.0.0:8080"}, nil, "not a loopback address"},
		{"BadListen", []string{"--listen", "nohostport"}, nil, "--listen"},
		{"BadLogLevel", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"BadLogFormat", []string{"--log-format", "xml"}, nil, "--log-format"},
		{"ExtraArgument", []string{"BTCUSDT"}, nil, "unexpected arguments"},
		{"BadEnvDuration", nil, map[string]string{"ORDERFLOW_DIAL_TIMEOUT": "fast"}, `ORDERFLOW_DIAL_TIMEOUT="fast"`},
		{"BadEnvMarket", nil, map[string]string{"ORDERFLOW_MARKET": "options"}, "--market"},
		{"WindowsNotADuration", []string{"--windows", "1m,soon"}, nil, `--windows: "soon": not a duration`},
		{"WindowsSubSecond", []string{"--windows", "500ms"}, nil, `--windows: "500ms": want whole seconds`},
		{"WindowsTwice", []string{"--windows", "1m,60s"}, nil, `--windows: "60s" given twice`},
		{"WindowsEmpty", []string{"--windows", ","}, nil, "--windows: no window given"},
		{"LargeNotionalNegative", []string{"--large-notional=-5"}, nil, `--large-notional: "-5"`},
		{"LargeNotionalNotADecimal", []string{"--large-notional", "1e6"}, nil, `--large-notional: "1e6"`},
		{"LargePercentileZero", []string{"--large-percentile", "0"}, nil, "--large-percentile: 0"},
		{"LargePercentileAbove100", []string{"--large-percentile", "100.5"}, nil, "--large-percentile: 100.5"},
		{"ImbalanceRatioNotAbove100", []string{"--imbalance-ratio", "100"}, nil, "--imbalance-ratio: 100"},
		{"StackedImbalancesZero", []string{"--stacked-imbalances", "0"}, nil, "--stacked-imbalances: 0"},
		{"ValueAreaAbove100", []string{"--value-area", "101"}, nil, "--value-area: 101"},
		{"WallMinNotionalNegative", []string{"--wall-min-notional=-1"}, nil, `--wall-min-notional: "-1"`},
		{"WallFactorZero", []string{"--wall-factor", "0"}, nil, "--wall-factor: 0"},
		{"WallFactorTooLarge", []string{"--wall-factor", "1000001"}, nil, "--wall-factor: 1000001"},
		{"WallMinAgeNegative", []string{"--wall-min-age=-1s"}, nil, "--wall-min-age: -1s"},
		{"BadEnvValueArea", nil, map[string]string{"ORDERFLOW_VALUE_AREA": "0"}, "--value-area: 0"},
		{"BadEnvWindows", nil, map[string]string{"ORDERFLOW_WINDOWS": "1x"}, `--windows: "1x"`},
		{"FlagWinsButBadEnvStillChecked", []string{"--market", "spot"}, map[string]string{"ORDERFLOW_BACKFILL": "x"}, "ORDERFLOW_BACKFILL"},
	}
	runTestRefused(t, cases)
}

// TestRunSecondInstanceRefused: a second `orderflow run` on the same data
// directory exits non-zero at once, naming the running one; the first
// stops gracefully on SIGINT.
func TestRunSecondInstanceRefused(t *testing.T) {
	runTestNoLeaks(t)
	ws, rest := runTestSim(t)
	dir := t.TempDir()
	args := []string{"run", "--symbols", "DENTUSDT,ZILUSDT", "--ws-url", ws, "--rest-url", rest, "--listen", "127.0.0.1:0",
		"--data-dir", dir, "--stop-timeout", "5s"}
	g := runTestGroup(t)
	first := g.start("the first instance", nil, args)
	stderr1 := first.stderr
	lock := filepath.Join(dir, dirlock.FileName)
	runTestWait(t, "the first instance to lock the data directory", 10*time.Second, func() bool {
		b, _ := os.ReadFile(lock)
		return len(b) > 0
	})
	runTestWait(t, "the first instance to connect", 10*time.Second, func() bool {
		return strings.Contains(stderr1.String(), "Connected to DENTUSDT aggTrades stream")
	})

	env2, _, stderr2 := runTestEnv(nil)
	begin := time.Now()
	code := runMain(env2, args)
	want := fmt.Sprintf("is locked by orderflow pid %d", os.Getpid())
	if code == 0 || !strings.Contains(stderr2.String(), want) || time.Since(begin) > 2*time.Second {
		t.Fatalf("second instance: exit %d after %v, stderr %q; want non-zero at once naming %q", code, time.Since(begin), stderr2.String(), want)
	}
	t.Logf("second instance: exit %d: %s", code, strings.TrimSpace(stderr2.String()))
	if c, ended := first.hasEnded(); ended {
		t.Fatalf("the first instance ended (exit %d) when the second started: %s", c, stderr1.String())
	}

	// The first instance stops gracefully on SIGINT (runMain catches it).
	g.interrupt()
	for _, msg := range []string{"stopping (send again to force exit)", "Task 1 cancelled successfully", "Order flow service stopped"} {
		if !strings.Contains(stderr1.String(), msg) {
			t.Fatalf("first instance log lacks %q:\n%s", msg, stderr1.String())
		}
	}
}

// buildOrderflow builds the command once for the signal tests.
func runTestBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orderflow")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRunSignals runs the real binary against the simulator: SIGTERM stops
// it gracefully within the stop budget (exit 0), and a second signal while
// the stop is held up forces an immediate exit (130).
func TestRunSignals(t *testing.T) {
	bin := runTestBuild(t)
	ws, rest := runTestSim(t)
	type proc struct {
		cmd    *exec.Cmd
		stderr *runTestBuffer
		addr   string
		done   chan struct{} // closed when the process has exited
	}
	start := func(t *testing.T, stopTimeout string) *proc {
		t.Helper()
		// A free port for the API: the test must know it to hold a request
		// open.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := &proc{addr: ln.Addr().String(), stderr: &runTestBuffer{}, done: make(chan struct{})}
		ln.Close()
		p.cmd = exec.Command(bin, "run", "--symbols", "DENTUSDT", "--ws-url", ws, "--rest-url", rest, "--listen", p.addr,
			"--data-dir", t.TempDir(), "--stop-timeout", stopTimeout)
		p.cmd.Env = append(os.Environ(), "ORDERFLOW_LOG_LEVEL=info")
		p.cmd.Stderr = p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }() // the only Wait
		t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
		runTestWait(t, "the binary to connect and serve", 15*time.Second, func() bool {
			s := p.stderr.String()
			return strings.Contains(s, "Connected to DENTUSDT aggTrades stream") && strings.Contains(s, "HTTP API listening")
		})
		return p
	}
	// exitCode waits up to bound for the process to exit: its exit status
	// and how long it took, or -1 if it is still running.
	exitCode := func(p *proc, bound time.Duration) (int, time.Duration) {
		begin := time.Now()
		select {
		case <-p.done:
			return p.cmd.ProcessState.ExitCode(), time.Since(begin)
		case <-time.After(bound):
			return -1, bound
		}
	}

	t.Run("SIGTERMStopsGracefully", func(t *testing.T) {
		p := start(t, "3s")
		stderr := p.stderr
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code, took := exitCode(p, 10*time.Second)
		if code != 0 || took > 3*time.Second {
			t.Fatalf("exit %d after %v (budget 3s):\n%s", code, took, stderr.String())
		}
		for _, msg := range []string{"stopping (send again to force exit)", "Cancelling task 1/3...", "Task 3 cancelled successfully", "Order flow service stopped"} {
			if !strings.Contains(stderr.String(), msg) {
				t.Fatalf("log lacks %q:\n%s", msg, stderr.String())
			}
		}
	})

	t.Run("SecondSignalForcesExit", func(t *testing.T) {
		p := start(t, "30s")
		stderr, addr := p.stderr, p.addr
		// An API request left half-sent holds the graceful HTTP shutdown
		// (up to the server's 10 s header timeout), so the stop is still
		// in progress when the second signal comes.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the server has read it: the connection is active
		if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		runTestWait(t, "the first signal to be handled", 5*time.Second, func() bool {
			return strings.Contains(stderr.String(), "stopping (send again to force exit)")
		})
		time.Sleep(200 * time.Millisecond)
		if code, _ := exitCode(p, 0); code != -1 {
			t.Fatalf("exited (%d) before the second signal: the stop was not held up:\n%s", code, stderr.String())
		}
		if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		code, took := exitCode(p, 5*time.Second)
		if code != 130 || took > 2*time.Second {
			t.Fatalf("exit %d after %v, want 130 at once:\n%s", code, took, stderr.String())
		}
		if !strings.Contains(stderr.String(), "again: forced exit") {
			t.Fatalf("no forced-exit message:\n%s", stderr.String())
		}
	})
}
