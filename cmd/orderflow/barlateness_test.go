package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/orderflow/orderflow/service"
)

// TestBarLatenessFlag: --bar-lateness (and ORDERFLOW_BAR_LATENESS) lands
// in service.Config.BarLateness; the default is the service's; 0 maps to
// the service's "off" (negative).
func TestBarLatenessFlag(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want time.Duration
	}{
		{"Default", nil, nil, service.DefaultBarLateness},
		{"Set", []string{"--bar-lateness", "500ms"}, nil, 500 * time.Millisecond},
		{"Env", nil, map[string]string{"ORDERFLOW_BAR_LATENESS": "5s"}, 5 * time.Second},
		{"ZeroIsOff", []string{"--bar-lateness", "0"}, nil, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := runConfig(t, c.args, c.env)
			if cfg.BarLateness != c.want {
				t.Fatalf("BarLateness %v, want %v", cfg.BarLateness, c.want)
			}
		})
	}
}

// runConfig parses run's service flags from args and env into the
// service configuration, failing the test on any error.
func runConfig(t *testing.T, args []string, env map[string]string) service.Config {
	t.Helper()
	e, _, _ := runTestEnv(env)
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var sf serviceFlags
	sf.register(fs, true)
	if err := parseFlags(e, fs, args); err != nil {
		t.Fatal(err)
	}
	cfg, err := sf.config(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
