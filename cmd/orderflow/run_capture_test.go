package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunCaptureFlagsRefused: a capture directory that cannot be created,
// or a bad rotation setting, exits with status 2 and a message naming the
// problem before anything starts (the data directory is not touched).
func TestRunCaptureFlagsRefused(t *testing.T) {
	runTestNoLeaks(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"DirUnderAFile", []string{"--capture", filepath.Join(file, "cap")}, nil, `capture directory "` + filepath.Join(file, "cap") + `" cannot be created: not a directory`},
		{"EnvDirUnderAFile", nil, map[string]string{"ORDERFLOW_CAPTURE": filepath.Join(file, "cap")}, "cannot be created: not a directory"},
		{"ZeroFileSize", []string{"--capture", filepath.Join(tmp, "cap"), "--capture-file-mb", "0"}, nil, "--capture-file-mb 0"},
		{"ShortFileAge", []string{"--capture", filepath.Join(tmp, "cap"), "--capture-file-age", "10ms"}, nil, "--capture-file-age 10ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			env, _, stderr := runTestEnv(tc.env)
			args := append([]string{"run", "--data-dir", dir, "--ws-url", "ws://127.0.0.1:1", "--rest-url", "http://127.0.0.1:1", "--listen", "off"}, tc.args...)
			code := runMain(env, args)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and a message containing %q", code, stderr.String(), tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("data directory touched before the flags were checked: %v", err)
			}
		})
	}
}
