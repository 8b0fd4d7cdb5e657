package main

import (
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func soakTestData(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "binance")
}

var soakLine = regexp.MustCompile(`^soak: faults=(\d+) recovered=(\d+) missing=(\d+) duplicates=(\d+) mismatches=(\d+) leaked_goroutines=(\d+)$`)

// TestSoakCommand runs `orderflow soak` in-process for a few seconds: it
// must inject faults, print resource lines and the table, and end with the
// verdict line showing nothing lost, duplicated, mismatched or leaked.
func TestSoakCommand(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	env, out, errb := runTestEnv(nil)
	start := time.Now()
	code := runMain(env, []string{"soak", "--duration", "3s", "--report-every", "1s", "--seed", "42", "--data", soakTestData(t)})
	stdout := out.String()
	t.Logf("exit %d after %v\nstdout:\n%s\nstderr (last 2000 bytes):\n%s", code, time.Since(start).Round(time.Millisecond), stdout, soakTail(errb.String(), 2000))
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	last := lines[len(lines)-1]
	m := soakLine.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not the soak verdict", last)
	}
	if m[1] == "0" {
		t.Errorf("no fault injected in 3 s: %q", last)
	}
	if m[1] != m[2] {
		t.Errorf("not every fault recovered: %q", last)
	}
	if n := strings.Count(stdout, "soak: faults="); n != 1 {
		t.Errorf("the verdict line appears %d times, want exactly once", n)
	}
	for _, want := range []string{"soak: seed=42 ", "heap_inuse=", "rss=", "goroutines=", "open_fds=", "soak: open_fds before=", "recovery p50", "total"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	goleak.VerifyNone(t, ignore)
}

// TestSoakRejectsBadFlags: every invalid flag is refused with exit status
// 2 and a message naming it, before anything starts.
func TestSoakRejectsBadFlags(t *testing.T) {
	data := soakTestData(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"NoDuration", []string{"--data", data}, "--duration"},
		{"NegativeDuration", []string{"--duration", "-1s", "--data", data}, "--duration"},
		{"TooLong", []string{"--duration", "25h", "--data", data}, "--duration"},
		{"NotADuration", []string{"--duration", "soon"}, "invalid value"},
		{"ZeroSpeed", []string{"--duration", "1s", "--speed", "0", "--data", data}, "--speed"},
		{"NaNSpeed", []string{"--duration", "1s", "--speed", "NaN", "--data", data}, "--speed"},
		{"ZeroReport", []string{"--duration", "1s", "--report-every", "0s", "--data", data}, "--report-every"},
		{"UnknownFault", []string{"--duration", "1s", "--faults", "meteor", "--data", data}, `"meteor"`},
		{"FaultWithOwnSetup", []string{"--duration", "1s", "--faults", "connect-refused", "--data", data}, `"connect-refused"`},
		{"NoData", []string{"--duration", "1s", "--data", filepath.Join(t.TempDir(), "none")}, "--data"},
		{"ExtraArgs", []string{"--duration", "1s", "--data", data, "now"}, "unexpected arguments"},
		{"BadSeed", []string{"--duration", "1s", "--seed", "-3"}, "invalid value"},
		{"BadLogLevel", []string{"--duration", "1s", "--data", data, "--log-level", "loud"}, "--log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, out, errb := runTestEnv(nil)
			start := time.Now()
			code := runMain(env, append([]string{"soak"}, tc.args...))
			if code != 2 {
				t.Fatalf("exit status %d, want 2; stderr %q", code, errb.String())
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("refusal took %v: something started", el)
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q does not name %s", errb.String(), tc.want)
			}
			if out.String() != "" {
				t.Errorf("stdout %q: nothing should be printed before the flags are valid", out.String())
			}
		})
	}
}

func soakTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
