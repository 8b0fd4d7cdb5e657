//go:build race

package shard_test

// raceEnabled: the race detector slows the in-process NATS servers several
// times over, so the cluster tests give the leases a longer TTL.
const raceEnabled = true
