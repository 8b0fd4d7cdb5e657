//go:build !linux

package bench

import "errors"

// PinProcess restricts every thread of this process to the given CPUs; it
// is implemented on Linux only.
func PinProcess(cpus []int) error { return errors.New("bench: pin: Linux only") }
