package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// busFlags are the flags of `run --bus`.
type busFlags struct {
	url       string
	listen    string
	retention time.Duration
	replicas  int
	sec       busSecFlags
}

func (f *busFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "bus", "", `publish events on NATS JetStream: "embedded" (an in-process server, stored under --data-dir/nats) or nats://host:port[,nats://...] (default: off)`)
	fs.StringVar(&f.listen, "bus-listen", "127.0.0.1:4222", "client address of the embedded NATS server (loopback by default)")
	fs.DurationVar(&f.retention, "bus-retention", bus.DefaultRetention, "how long the bus keeps events (the stream's MaxAge)")
	fs.IntVar(&f.replicas, "bus-replicas", 1, "copies of the stream in a NATS cluster (1 to 5; 1 when embedded)")
	f.sec.register(fs)
}

// check reports flag mistakes before anything starts.
func (f *busFlags) check() error {
	if f.url == "" {
		return f.sec.check("", "")
	}
	if f.url != "embedded" {
		for _, u := range strings.Split(f.url, ",") {
			if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
				return fmt.Errorf("%w: --bus %q: want embedded or nats://host:port[,...]", errUsage, f.url)
			}
		}
	} else if f.replicas != 1 {
		return fmt.Errorf("%w: --bus-replicas %d: an embedded server keeps one copy", errUsage, f.replicas)
	}
	if f.retention < time.Minute {
		return fmt.Errorf("%w: --bus-retention %v: want at least 1m", errUsage, f.retention)
	}
	if f.replicas < 1 || f.replicas > 5 {
		return fmt.Errorf("%w: --bus-replicas %d: want 1 to 5", errUsage, f.replicas)
	}
	host, _, err := splitHostPort(f.listen)
	if err != nil {
		return fmt.Errorf("%w: --bus-listen %q: %v", errUsage, f.listen, err)
	}
	return f.sec.check(f.url, host)
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want 0 to 65535", ps)
	}
	return host, port, nil
}

// busRun is a running bus connection and publisher (and the embedded
// server when there is one).
type busRun struct {
	url    string // the client URL(s), the embedded server's when embedded
	emb    *bus.Embedded
	nc     *nats.Conn
	pub    *bus.Publisher
	cancel context.CancelFunc
	done   chan error
	sec    *busSecFlags
	log    *slog.Logger
}

// connect opens another connection to the bus: to the embedded server
// with its own credential (Embedded.Connect: in-process when it has TLS,
// so no client certificate is needed), else with the client flags.
func (b *busRun) connect(ctx context.Context, name string) (*nats.Conn, error) {
	if b.emb != nil {
		return b.emb.Connect(ctx, bus.ConnectConfig{Name: name, Logger: b.log})
	}
	cfg := b.sec.client(name)
	cfg.Logger = b.log
	return bus.Connect(ctx, b.url, cfg)
}

func authKind(a bus.Auth) string {
	switch {
	case a.Token != "":
		return "token"
	case a.User != "":
		return "user"
	}
	return "none"
}

// startBus starts (or dials) the bus, makes sure the stream exists, and
// hooks a publisher to svc. Call before svc starts; close after it stopped.
func startBus(ctx context.Context, log *slog.Logger, f *busFlags, dataDir string, kind market.Kind, svc *service.Service) (*busRun, error) {
	b := &busRun{done: make(chan error, 1)}
	url := f.url
	if url == "embedded" {
		host, port, _ := splitHostPort(f.listen) // checked
		if port == 0 {
			port = -1
		}
		ec := f.sec.embedded()
		ec.DataDir, ec.Host, ec.Port, ec.Logger = dataDir, host, port, log
		emb, err := bus.StartEmbedded(ec)
		if err != nil {
			return nil, err
		}
		b.emb = emb
		url = emb.ClientURL()
		log.Info("Embedded NATS server listening", "url", url, "store", dataDir+"/nats",
			"tls", !ec.TLS.IsZero(), "client_certs", ec.TLS.CAFile != "", "auth", authKind(ec.Auth))
	}
	b.url = url
	b.sec = &f.sec
	b.log = log
	nc, err := b.connect(ctx, "orderflow-feed")
	if err != nil {
		b.closeServer()
		return nil, err
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.closeConn()
		return nil, fmt.Errorf("bus: %w", err)
	}
	// Not cut short by a stop signal: abandoned mid-request, the embedded
	// server would go on creating the stream while it shuts down, and the
	// new stream's store would never be stopped (its goroutines outlive
	// Close). The request is bounded on its own; the signal is honoured
	// once the server has answered.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := bus.EnsureStream(sctx, js, bus.StreamConfig{Retention: f.retention, Replicas: f.replicas}); err != nil {
		b.closeConn()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		b.closeConn()
		return nil, fmt.Errorf("bus: %w", err)
	}
	pub, err := bus.NewPublisher(nc, bus.PublisherConfig{Market: kind, Logger: log})
	if err != nil {
		b.closeConn()
		return nil, err
	}
	b.pub = pub
	svc.AddEventHook(pub.Hook)
	pctx, pcancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel = pcancel
	go func() { b.done <- pub.Run(pctx) }()
	log.Info("Publishing on the bus", "url", url, "stream", bus.StreamName, "retention", f.retention)
	return b, nil
}

// close drains the publisher (the service must be stopped), then closes
// the connection and the embedded server.
func (b *busRun) close() error {
	b.cancel()
	err := <-b.done
	b.closeConn()
	return err
}

func (b *busRun) closeConn() {
	if b.nc != nil {
		b.nc.Close()
	}
	b.closeServer()
}

func (b *busRun) closeServer() {
	if b.emb != nil {
		b.emb.Close()
	}
}
