//go:build !linux

package feed

import (
	"syscall"
)

const rawReadSupported = false

func rawRead(fd uintptr, p []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }
