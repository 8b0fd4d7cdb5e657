// Package dirlock gives one process at a time a data directory.
//
// It takes an exclusive flock(2) on <dir>/orderflow.lock and writes the
// holder's pid, start time and command line into it, so a second instance
// can name the first in its error. flock locks belong to the open file, so
// a second Acquire in the same process fails too, and the kernel releases
// the lock when the holder dies: no stale lock survives a crash.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// FileName is the lock file's name inside the directory.
const FileName = "orderflow.lock"

// ErrLocked is wrapped by Acquire's error when another holder has the lock.
var ErrLocked = errors.New("dirlock: data directory in use")

// Lock is a held lock.
type Lock struct {
	f    *os.File
	path string
}

// Acquire creates dir if needed and locks it, or fails at once with an
// error naming the current holder.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dirlock: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dirlock: open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "another instance"
			}
			return nil, fmt.Errorf("%w: %s is locked by %s", ErrLocked, dir, who)
		}
		return nil, fmt.Errorf("dirlock: lock %s: %w", path, err)
	}
	info := fmt.Sprintf("orderflow pid %d started %s (%s)", os.Getpid(), time.Now().UTC().Format(time.RFC3339), strings.Join(os.Args, " "))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(info+"\n"), 0)
	}
	return &Lock{f: f, path: path}, nil
}

// Release unlocks and closes the lock file. The file stays, empty, so the
// next holder can reuse it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("dirlock: release %s: %w", l.path, err)
	}
	return nil
}
