//go:build !race

package depthflow

// raceOn is false without the race detector (see race_on_test.go).
const raceOn = false
