// Package sim is a Binance market-data simulator: a real WebSocket and HTTP
// server, normally on loopback, that speaks Binance's public market-data
// protocol and replays real recordings, so tests, benchmarks and the
// offline demo exercise the real client code over real sockets.
//
// # What it serves
//
// Spot: /ws/<stream>, /ws (then SUBSCRIBE), /stream?streams=a/b (frames
// wrapped {"stream":..,"data":..}), /api/v3/depth, /api/v3/aggTrades,
// /api/v3/exchangeInfo, /api/v3/ping, /api/v3/time. USD-M: the same
// WebSocket forms under /public (depth, bookTicker) and /market (aggTrade,
// trade), the legacy root paths refused, and /fapi/v1/... for REST. See
// https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
// and .../usds-margined-futures/websocket-market-streams.
//
// # Replay
//
// LoadRecording syncs the simulator's own book for each symbol from the
// recording's snapshot and diffs exactly as a client would (events before
// the sync point are applied silently), then the replay publishes every
// later event on one timeline paced by recorded exchange time (E) divided
// by Config.Speed. REST depth answers from that same book, with
// lastUpdateId = the u of the last depth event applied, so a client's sync
// procedure is exercised for real. When a recording has only @trade, the
// simulator derives @aggTrade from it (see deriveAggs and AggIDBase).
//
// Looping (Config.Loop) shifts each round past the previous one: times by
// the round's length plus one second, trade, aggregate and depth ids by
// their span. The book is not reset between rounds: the first event of a
// new round is a synthetic depthUpdate that turns the simulator's book at
// the end of the round into the book at the start of the recording, so the
// diffs a client sees chain without a gap and its book stays exact.
//
// # Concurrency
//
// Start launches the HTTP server and one replay goroutine; every WebSocket
// connection has a reader (the HTTP handler), a writer (the only goroutine
// that writes to the socket: frames, replies, closes and injected faults)
// and a pinger. The replay encodes an event once per topic that has
// subscribers and hands the shared bytes to each connection's bounded
// queue; a paced replay drops a connection whose queue is full (as Binance
// drops slow clients), an unpaced one (Speed < 0) waits for it. Close
// stops everything and returns only after every goroutine has ended.
package sim
