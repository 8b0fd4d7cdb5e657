//go:build race

package depthflow

// raceOn is true under the race detector. This package is single-threaded,
// so the detector adds nothing to its reference comparison but a tenfold
// slowdown: under -race it runs on one recording, and `make test` runs the
// full default set without -race as well.
const raceOn = true
