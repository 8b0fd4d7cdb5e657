package feed

import (
	"syscall"
	"unsafe"
)

const rawReadSupported = true

// rawRead is read(2) without entersyscall; fd is non-blocking, so the
// call returns at once (EAGAIN when nothing is there yet).
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), 0
	}
}
