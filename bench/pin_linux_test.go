package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// PinProcess restricts every thread of the process, as the kernel reports
// them, and a later pin to every CPU lifts it.
func TestPinProcess(t *testing.T) {
	all := make([]int, runtime.NumCPU())
	for i := range all {
		all[i] = i
	}
	defer func() {
		if err := PinProcess(all); err != nil {
			t.Fatal(err)
		}
	}()
	if err := PinProcess([]int{0}); err != nil {
		t.Fatal(err)
	}
	if got := allowedCPUs(t); len(got) != 1 || got[0] != "0" {
		t.Fatalf("threads allowed on %v, want only 0", got)
	}
	if err := PinProcess(all); err != nil {
		t.Fatal(err)
	}
	want := "0"
	if len(all) > 1 {
		want = "0-" + strconv.Itoa(len(all)-1)
	}
	if got := allowedCPUs(t); len(got) != 1 || got[0] != want {
		t.Fatalf("threads allowed on %v, want %s", got, want)
	}
	if err := PinProcess([]int{-1}); err == nil {
		t.Fatal("cpu -1 accepted")
	}
}

// allowedCPUs returns the distinct Cpus_allowed_list values of this
// process's threads.
func allowedCPUs(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	dirs, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("threads: %v", err)
	}
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				v = strings.TrimSpace(v)
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
			}
		}
	}
	return out
}
