// Package bus publishes orderflow's normalized events on NATS JetStream and
// defines their subjects and schema (docs/bus.md).
//
// The schema types and their encoders are pure. Embedded runs a NATS server
// with JetStream inside the process; Connect dials an external one; the
// Publisher sends events asynchronously with message ids, so JetStream drops
// what a reconnecting or failed-over publisher sends twice.
package bus

import (
	// The server and client modules; used by embedded.go and publish.go.
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go/jetstream"
)
