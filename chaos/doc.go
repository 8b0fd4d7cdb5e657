// Package chaos is orderflow's fault-injection harness: it runs the real
// service against the project's Binance simulator on loopback, injects one
// kind of failure again and again while real recorded data streams, and
// measures what matters to a user of the metrics:
//
//   - survived: after each injection the service is ready again (every
//     stream connected, every book synced) and trades flow;
//   - recovery time: from the moment the injection call returns to ready
//     with trades flowing again (p50 and max over the injections);
//   - missing and duplicate aggregate trade ids: the service's trade history
//     against the simulator's complete list, fetched from its REST API once
//     the replay is paused, and the service's Totals against a reference
//     tracker fed that complete list (what an uninterrupted connection would
//     have given);
//   - book mismatches: the service's top levels against the simulator's REST
//     snapshot at the same update id;
//   - leaked goroutines: runtime.NumGoroutine before the simulator and the
//     service start and after both have stopped, with goleak naming the
//     stacks of any leftover.
//
// The same harness drives `go test ./chaos` (every fault in Catalogue),
// `make chaos` (verbose, three injections per fault) and `orderflow soak` (random
// faults for a bounded duration, see Soak).
//
// # Concurrency
//
// A Harness runs one scenario at a time: goroutine leak accounting needs
// the process to itself, and the scenarios are short (seconds) because the
// replay runs at Options.Speed and every wait is bounded. Each scenario owns
// its simulator and its service and stops both before it returns; timers a
// fault schedules (a REST hang released later, a DNS outage ended later)
// are tracked by the Target and stopped or run at the end of the scenario.
package chaos
