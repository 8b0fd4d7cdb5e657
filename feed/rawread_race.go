//go:build race

package feed

import (
	"runtime"
	"unsafe"
)

// raceWritten tells the race detector that a raw read(2) wrote p[:n]: the
// kernel's write is invisible to it, as it is not for syscall.Read, which
// reports the same range. A read racing with another use of the buffer
// is then reported.
func raceWritten(p []byte, n int) {
	if n > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&p[0]), n)
	}
}
