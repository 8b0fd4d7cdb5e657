package main

import (
	"os"
	"path/filepath"
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
	runTestRefused(t, []runRefusal{
		{"DirUnderAFile", []string{"--capture", filepath.Join(file, "cap")}, nil, `capture directory "` + filepath.Join(file, "cap") + `" cannot be created: not a directory`},
		{"EnvDirUnderAFile", nil, map[string]string{"ORDERFLOW_CAPTURE": filepath.Join(file, "cap")}, "cannot be created: not a directory"},
		{"ZeroFileSize", []string{"--capture", filepath.Join(tmp, "cap"), "--capture-file-mb", "0"}, nil, "--capture-file-mb 0"},
		{"ShortFileAge", []string{"--capture", filepath.Join(tmp, "cap"), "--capture-file-age", "10ms"}, nil, "--capture-file-age 10ms"},
	})
}
