package bench

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// PinProcess restricts every thread of this process to the given CPUs
// (sched_setaffinity on each task in /proc/self/task). Threads the Go
// runtime starts later inherit the set from the thread that starts them.
// The latency harness uses it to give the frame writer's process a CPU of
// its own and the service's process the others: otherwise the kernel
// wakes the service's reader on the writer's CPU (a socket wake-up is a
// "sync" wake-up, which assumes the waker is about to sleep; a spinning
// writer is not), and the two take turns on one CPU while the other idles.
func PinProcess(cpus []int) error {
	var set [16]uint64 // 1,024 CPUs
	for _, c := range cpus {
		if c < 0 || c >= len(set)*64 {
			return fmt.Errorf("bench: pin: cpu %d out of range", c)
		}
		set[c/64] |= 1 << (c % 64)
	}
	if len(cpus) == 0 {
		return fmt.Errorf("bench: pin: no CPU")
	}
	// A thread started while the list is read is started by a thread
	// already pinned, so it inherits the set; two passes catch one that
	// was started by a thread not yet pinned.
	for range 2 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("bench: pin: %w", err)
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(set), uintptr(unsafe.Pointer(&set)))
			if errno != 0 && errno != syscall.ESRCH { // ESRCH: the thread has just ended
				return fmt.Errorf("bench: pin thread %d to %v: %w", tid, cpus, errno)
			}
		}
	}
	return nil
}
