// Package flow computes order-flow metrics from the tape: totals and
// cumulative volume delta, rolling windows, footprint bars with diagonal and
// stacked imbalances, volume profiles with a value area, a bounded trade
// history and large-trade ("whale") detection.
//
// A Tracker follows one symbol. It is fed market.Trade values in exchange
// time order (non-decreasing Trade.Time, strictly increasing Trade.ID) and is
// driven only by exchange time, never by the local clock, so replaying a
// recording gives the same numbers every time.
//
// Numbers are exact: volumes are sums of fixed.Dec (scale 1e-8) held in a
// 128-bit accumulator (Volume), notionals are sums of price*qty at scale
// 1e-16 (Notional), and averages such as VWAP are rounded half to even to
// eight decimals. Floats appear only in ratios meant for display
// (WindowStats.BuyRatio, WindowStats.TradesPerSecond).
//
// Concurrency: the package is pure (no I/O, no goroutines). A Tracker is not
// safe for concurrent use; its owner serialises Add and the queries, and
// publishes copies (the query methods return values the caller owns) to
// other goroutines. Callbacks in Config run synchronously inside Add,
// Advance and Flush and must not call back into the Tracker.
//
// Allocation: Add allocates nothing in steady state. Storage grows only
// while rings and pools warm up, when a bar has more distinct prices than
// any bar before it, or when the session profile meets a price it has not
// seen in the session. Queries allocate what they return.
package flow
