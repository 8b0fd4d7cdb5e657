package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orderflow/orderflow/sim"
)

// Setup is the recording, simulator and symbol set a fault runs against.
type Setup uint8

// Setups.
const (
	// SpotBTC replays spot BTCUSDT (hftbacktest 2024-08-08/09: raw trades,
	// from which the simulator derives aggTrades, and 100 ms depth) to a
	// service streaming BTCUSDT on one connection.
	SpotBTC Setup = iota
	// SpotMulti replays the cryptofeed spot recording to a service that
	// streams 4 of the 8 symbols with aggTrades; the other 4 are spares that
	// faults add at run time (a live SUBSCRIBE).
	SpotMulti
	// USDMMulti replays the 5 cryptofeed USD-M symbols: aggTrades on the
	// /market connection, depth (with pu) on the /public one.
	USDMMulti
	numSetups
)

func (s Setup) String() string {
	switch s {
	case SpotMulti:
		return "spot-multi"
	case USDMMulti:
		return "usdm"
	}
	return "spot-btc"
}

// Effect is what an injection must visibly cause in the service before the
// harness waits for recovery; it proves the fault reached the service.
type Effect uint8

// Effects.
const (
	// EffectNone: nothing to see in the service's counters (the simulator's
	// own fault counter still confirms delivery when Fault.SimKey is set).
	EffectNone Effect = iota
	// EffectReconnect: a stream connection was lost and redialed (or
	// replaced by a rotation).
	EffectReconnect
	// EffectResync: a book resynchronized.
	EffectResync
	// EffectDecodeError: a frame was rejected by the decoder and counted.
	EffectDecodeError
	// EffectUnknown: a well-formed event of an unhandled type was counted.
	EffectUnknown
	// EffectDuplicate: an aggregate trade id already applied was skipped.
	EffectDuplicate
)

func (e Effect) String() string {
	return [...]string{"none", "reconnect", "resync", "decode-error", "unknown-event", "duplicate"}[e]
}

// Fault is one kind of failure and how to inject it.
type Fault struct {
	// Name is the table's row name.
	Name string
	// What says in a few words what is done.
	What string
	// Setup selects the recording and symbols.
	Setup Setup
	// Effect is what each injection must cause in the service.
	Effect Effect
	// SimKey is the simulator's Stats().Faults key that confirms the fault
	// was delivered ("" when the simulator does not count it).
	SimKey string
	// Inject injects the fault once. It may schedule its own end with
	// Target.After (a REST hang released later).
	Inject func(ctx context.Context, t *Target) error
	// ClosedPort: the injection is the service's start against a port with
	// no listener; the simulator starts on that port a second later. Inject
	// is not used, and the fault is injected once.
	ClosedPort bool
	// Note is shown in the table's notes.
	Note string
}

var errNoConn = errors.New("no open simulator connection to inject into")

func drop(mode sim.DropMode) func(context.Context, *Target) error {
	return func(_ context.Context, t *Target) error {
		if t.Sim.Faults().DropAll(mode) == 0 {
			return errNoConn
		}
		return nil
	}
}

// armThenDrop arms a fault (REST failures, a refused SUBSCRIBE), then drops
// the connections so the service meets it at once: reconnecting needs a
// depth snapshot for the book's gap and a trade backfill for the ids missed.
func armThenDrop(arm func(t *Target)) func(context.Context, *Target) error {
	return func(ctx context.Context, t *Target) error {
		arm(t)
		return drop(sim.DropReset)(ctx, t)
	}
}

func badFrame(kind sim.BadFrame, size int) func(context.Context, *Target) error {
	return func(_ context.Context, t *Target) error {
		if t.Sim.Faults().SendBadFrame(kind, size) == 0 {
			return errNoConn
		}
		return nil
	}
}

// refuseSubscribe makes the simulator refuse the next SUBSCRIBE and adds a
// spare symbol to the running service: the add must fail and leave the
// service as it was, and a second try must succeed.
func refuseSubscribe(ctx context.Context, t *Target) error {
	if len(t.spare) == 0 {
		return errors.New("no spare symbol left to add")
	}
	sym := t.spare[0]
	t.spare = t.spare[1:]
	t.Sim.Faults().RefuseSubscribe(1)
	if err := t.Service.AddSymbol(ctx, sym); err == nil {
		return fmt.Errorf("AddSymbol(%s) succeeded although the SUBSCRIBE was refused", sym)
	}
	if slices.Contains(t.Service.Symbols(), sym) {
		return fmt.Errorf("AddSymbol(%s) failed but the symbol stayed in the set", sym)
	}
	return t.addSymbol(ctx, sym)
}

// Catalogue returns every fault the suite injects, in table order.
func Catalogue() []Fault {
	return []Fault{
		{Name: "none", What: "no fault: the uninterrupted baseline", Setup: SpotBTC, Effect: EffectNone,
			Inject: func(ctx context.Context, t *Target) error { return sleepCtx(ctx, 300*time.Millisecond) }},
		{Name: "drop-clean", What: "close frame 1001 going away", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "drop-clean",
			Inject: drop(sim.DropClean)},
		{Name: "drop-reset", What: "TCP reset, no close frame", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "drop-reset",
			Inject: drop(sim.DropReset)},
		{Name: "drop-midframe", What: "socket closed halfway through a frame", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "drop-midframe",
			Inject: drop(sim.DropMidFrame)},
		{Name: "half-open", What: "no data, no pings, socket left open", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "half-open",
			Inject: func(_ context.Context, t *Target) error {
				if t.Sim.Faults().HalfOpen() == 0 {
					return errNoConn
				}
				return nil
			}, Note: "caught by the stale-feed watchdog (StaleTimeout)"},
		{Name: "24h-cut", What: "unannounced cut as at the 24 h mark (clean close)", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "drop-clean",
			Inject: drop(sim.DropClean),
			Note:   "feed.Options.MaxAge is not in service.Config, so the proactive rotation cannot be timed here: the cut itself is injected"},
		{Name: "24h-cut-announced", What: "serverShutdown, close 200 ms later", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "server-shutdown",
			Inject: func(_ context.Context, t *Target) error {
				if t.Sim.Faults().ServerShutdown(200*time.Millisecond) == 0 {
					return errNoConn
				}
				return nil
			}, Note: "the planned-cut path: rotation make-before-break or reconnect"},
		{Name: "server-shutdown", What: "serverShutdown, close 2 s later", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "server-shutdown",
			Inject: func(_ context.Context, t *Target) error {
				if t.Sim.Faults().ServerShutdown(2*time.Second) == 0 {
					return errNoConn
				}
				return nil
			}, Note: "rotation completes before the close"},
		{Name: "skip-depth", What: "one depth event left out", Setup: SpotBTC, Effect: EffectResync, SimKey: "skip",
			Inject: func(_ context.Context, t *Target) error { return t.Sim.Faults().SkipDepth(t.Symbols[0]) }},
		{Name: "dup-depth", What: "next depth event sent twice", Setup: SpotBTC, Effect: EffectNone, SimKey: "duplicate",
			Inject: func(_ context.Context, t *Target) error { return t.Sim.Faults().Duplicate(t.Symbols[0], "depth", 1) }},
		{Name: "dup-aggTrade", What: "next aggTrade sent twice", Setup: SpotBTC, Effect: EffectDuplicate, SimKey: "duplicate",
			Inject: func(_ context.Context, t *Target) error {
				return t.Sim.Faults().Duplicate(t.Symbols[0], "aggTrade", 1)
			}},
		{Name: "reorder-depth", What: "next two depth events swapped", Setup: SpotBTC, Effect: EffectResync, SimKey: "reorder",
			Inject: func(_ context.Context, t *Target) error { return t.Sim.Faults().Reorder(t.Symbols[0], "depth") }},
		{Name: "reorder-aggTrade", What: "next two aggTrades swapped", Setup: SpotBTC, Effect: EffectDuplicate, SimKey: "reorder",
			Inject: func(_ context.Context, t *Target) error { return t.Sim.Faults().Reorder(t.Symbols[0], "aggTrade") },
			Note:   "the later id opens a gap filled from REST, the earlier one then arrives as a duplicate"},
		{Name: "malformed-frame", What: "a frame that is not JSON", Setup: SpotBTC, Effect: EffectDecodeError, SimKey: "frame-malformed",
			Inject: badFrame(sim.Malformed, 0)},
		{Name: "truncated-frame", What: "a real aggTrade cut in half", Setup: SpotBTC, Effect: EffectDecodeError, SimKey: "frame-truncated",
			Inject: badFrame(sim.Truncated, 0)},
		{Name: "oversized-2MiB", What: "a 2 MiB event (under the 16 MiB read limit)", Setup: SpotBTC, Effect: EffectUnknown, SimKey: "frame-oversized",
			Inject: badFrame(sim.Oversized, 2<<20)},
		{Name: "oversized-17MiB", What: "a 17 MiB frame (over the read limit)", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "frame-oversized",
			Inject: badFrame(sim.Oversized, 17<<20), Note: "the read limit closes the connection; the service reconnects"},
		{Name: "unknown-event", What: "a well-formed event of an unknown type", Setup: SpotBTC, Effect: EffectUnknown, SimKey: "frame-unknown-event",
			Inject: badFrame(sim.UnknownEvent, 0)},
		{Name: "rest-429", What: "drop, then 2 REST answers 429 Retry-After 1 s", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "rest-429",
			Inject: armThenDrop(func(t *Target) { t.Sim.Faults().FailREST(429, 2, time.Second) })},
		{Name: "rest-418", What: "drop, then 1 REST answer 418 Retry-After 1 s", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "rest-418",
			Inject: armThenDrop(func(t *Target) { t.Sim.Faults().FailREST(418, 1, time.Second) })},
		{Name: "rest-5xx", What: "drop, then 3 REST answers 503", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "rest-503",
			Inject: armThenDrop(func(t *Target) { t.Sim.Faults().FailREST(503, 3, 0) })},
		{Name: "rest-slow", What: "drop, REST answers 700 ms late for 1.5 s", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "rest-delay",
			Inject: armThenDrop(func(t *Target) {
				t.Sim.Faults().DelayREST(700 * time.Millisecond)
				t.After(1500*time.Millisecond, func() { t.Sim.Faults().DelayREST(0) })
			})},
		{Name: "rest-hang", What: "drop, REST hangs for 1.5 s", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "rest-hang",
			Inject: armThenDrop(func(t *Target) {
				release := t.Sim.Faults().HangREST()
				t.After(1500*time.Millisecond, release)
			}), Note: "requests hung beyond the client's 10 s timeout are not injected (the harness must release them)"},
		{Name: "dns-failure", What: "drop, every dial fails with a DNS error for 1 s", Setup: SpotBTC, Effect: EffectReconnect, SimKey: "drop-reset",
			Inject: func(ctx context.Context, t *Target) error {
				t.dns.setFailing(true)
				t.transport.CloseIdleConnections() // REST must dial too
				t.After(time.Second, func() { t.dns.setFailing(false) })
				return drop(sim.DropReset)(ctx, t)
			}, Note: "the dialer returns *net.DNSError (no real resolver involved)"},
		{Name: "connect-refused", What: "service starts on a closed port; simulator starts there 1 s later", Setup: SpotBTC,
			ClosedPort: true, Effect: EffectNone},
		{Name: "refuse-subscribe", What: "live AddSymbol: the SUBSCRIBE is refused, then retried", Setup: SpotMulti,
			Effect: EffectNone, SimKey: "refuse-subscribe", Inject: refuseSubscribe,
			Note: "on connect the service puts up to 200 streams in the URL, so a refused SUBSCRIBE needs a live add (or >200 streams)"},
		{Name: "clock-skew", What: "exchange clock held 1 s while local time runs", Setup: SpotBTC, Effect: EffectNone,
			Inject: func(ctx context.Context, t *Target) error {
				t.Sim.Pause()
				defer t.Sim.Play()
				return sleepCtx(ctx, time.Second)
			}, Note: "exchange time also runs Speed times faster than local time and is 2024: totals must still equal the reference"},
		{Name: "usdm-drop-reset", What: "USD-M: both connections reset", Setup: USDMMulti, Effect: EffectReconnect, SimKey: "drop-reset",
			Inject: drop(sim.DropReset)},
		{Name: "usdm-skip-depth", What: "USD-M: one depth event left out (pu chain break)", Setup: USDMMulti, Effect: EffectResync, SimKey: "skip",
			Inject: func(_ context.Context, t *Target) error { return t.Sim.Faults().SkipDepth(t.Symbols[0]) }},
	}
}

// FaultByName returns the catalogue's fault with that name.
func FaultByName(name string) (Fault, error) {
	for _, f := range Catalogue() {
		if f.Name == name {
			return f, nil
		}
	}
	return Fault{}, fmt.Errorf("chaos: unknown fault %q", name)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
