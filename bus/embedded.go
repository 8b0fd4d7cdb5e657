package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/dirlock"
)

// DefaultPort is the embedded server's client port, NATS's usual one.
const DefaultPort = 4222

// EmbeddedConfig configures an in-process NATS server with JetStream.
// The zero value except DataDir is a loopback server on DefaultPort.
type EmbeddedConfig struct {
	// DataDir is orderflow's data directory; JetStream stores under
	// DataDir/nats. Required.
	DataDir string
	// Host is the client listen address. Default 127.0.0.1: other hosts
	// reach the bus only when asked for.
	Host string
	// Port is the client port. Default DefaultPort; -1 picks a free one.
	Port int
	// ServerName names the server in JetStream (default "orderflow").
	ServerName string
	// MaxStore bounds JetStream's file store in bytes (0: the server's
	// default, a share of the free disk).
	MaxStore int64
	// ReadyTimeout bounds the wait for the server to accept clients.
	// Default 10 s.
	ReadyTimeout time.Duration
	// Logger receives the server's warnings and errors (notices at debug).
	// Default slog.Default().
	Logger *slog.Logger
	// Auth is the credential every client must present (default: none).
	Auth Auth
	// TLS turns TLS on (CertFile, KeyFile) and, with CAFile, requires
	// client certificates signed by that CA (default: plain TCP).
	TLS TLSFiles
	// Insecure allows a Host off loopback without Auth or a client CA.
	// Without it StartEmbedded refuses such a server (ErrInsecureListen):
	// anyone who reaches the port could read and write the stream.
	Insecure bool
}

// Embedded is a NATS server with JetStream running in this process.
type Embedded struct {
	srv  *server.Server
	lock *dirlock.Lock
	auth Auth
	tls  bool
}

// StartEmbedded starts an embedded server and waits until it accepts
// clients. Close it when done.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("bus: embedded server: no data directory")
	}
	// Checked before the store is locked: a refused configuration
	// touches nothing.
	var sec server.Options
	if err := cfg.applySecurity(&sec); err != nil {
		return nil, err
	}
	// The server does not lock its store: two servers on one directory
	// would corrupt it. Hold <DataDir>/nats for the server's lifetime.
	store := filepath.Join(cfg.DataDir, "nats")
	lock, err := dirlock.Acquire(store)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server store: %w", err)
	}
	opts := &server.Options{
		ServerName: cmpOr(cfg.ServerName, "orderflow"),
		Host:       cmpOr(cfg.Host, "127.0.0.1"),
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   store,
		NoSigs:     true,
		// The server's own HTTP monitor stays off; orderflow's /metrics
		// exposes the publisher's counters.
		HTTPPort:          0,
		JetStreamMaxStore: cfg.MaxStore,
		TLSConfig:         sec.TLSConfig,
		TLS:               sec.TLS,
		TLSVerify:         sec.TLSVerify,
		TLSTimeout:        sec.TLSTimeout,
		Authorization:     sec.Authorization,
		Username:          sec.Username,
		Password:          sec.Password,
	}
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		_ = lock.Release()
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	srv.SetLoggerV2(serverLogger{log.With("component", "nats")}, false, false, false)
	srv.Start()
	wait := cfg.ReadyTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		_ = lock.Release()
		return nil, fmt.Errorf("bus: embedded server on %s:%d not ready within %s", opts.Host, opts.Port, wait)
	}
	return &Embedded{srv: srv, lock: lock, auth: cfg.Auth, tls: sec.TLSConfig != nil}, nil
}

// ClientURL returns the URL clients connect to, e.g. nats://127.0.0.1:4222
// (tls://... when the server has TLS).
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Connect opens a connection of this process to the server, presenting
// the server's own credential, so this process's publisher and shard
// member connect whatever the listener requires: over loopback TCP to
// ClientURL when the server has no TLS, else in-process
// (ConnectInProcess: no client certificate or CA needed). cfg's Auth, TLS
// and CredsFile are ignored; the rest applies as in the package's Connect.
//
// Plain TCP is preferred because it is faster: publishing real trades
// (BenchmarkPublishConn) the in-process pipe was 10 to 17% slower on the
// loaded 2-core machine.
func (e *Embedded) Connect(ctx context.Context, cfg ConnectConfig) (*nats.Conn, error) {
	if e.tls {
		return e.ConnectInProcess(ctx, cfg)
	}
	cfg.Auth, cfg.TLS, cfg.CredsFile = e.auth, TLSFiles{}, ""
	return connect(ctx, e.ClientURL(), e.ClientURL(), cfg)
}

// ConnectInProcess opens an in-process connection to the server (a pipe,
// no socket, no TLS) presenting the server's own credential. cfg's Auth,
// TLS and CredsFile are ignored.
func (e *Embedded) ConnectInProcess(ctx context.Context, cfg ConnectConfig) (*nats.Conn, error) {
	cfg.Auth, cfg.TLS, cfg.CredsFile = e.auth, TLSFiles{}, ""
	return connect(ctx, "", "embedded (in-process)", cfg, nats.InProcessServer(e.srv))
}

// Server returns the NATS server (for tests and monitoring).
func (e *Embedded) Server() *server.Server { return e.srv }

// Close shuts the server down and waits for it (JetStream flushes its
// store), then releases the store's lock.
func (e *Embedded) Close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	_ = e.lock.Release()
}

// serverLogger adapts slog to the server's logger interface. Notices are
// debug: the server announces every start detail at notice level.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// ConnectConfig configures a client connection.
type ConnectConfig struct {
	// Name is the connection's name on the server. Default "orderflow".
	Name string
	// Timeout bounds each dial. Default 5 s.
	Timeout time.Duration
	// ReconnectWait is the pause between reconnection attempts. Default
	// 250 ms; the client keeps reconnecting for ever, buffering what is
	// published meanwhile (8 MiB, the client's default).
	ReconnectWait time.Duration
	// Logger receives disconnections and reconnections. Default
	// slog.Default().
	Logger *slog.Logger
	// Auth is the credential to present (default: none).
	Auth Auth
	// CredsFile is a NATS credentials file (a user JWT and its NKey
	// seed, as nsc writes them), instead of Auth.
	CredsFile string
	// TLS: CAFile verifies the server (default: the system's roots),
	// CertFile and KeyFile are a client certificate for mutual TLS. Any
	// of them turns TLS on.
	TLS TLSFiles
}

// Connect dials NATS at urls (comma-separated, e.g.
// nats://a:4222,nats://b:4222) and keeps the connection up: it reconnects
// for ever, to any server of the cluster. The first dial must succeed
// before ctx ends. Close the connection when done (nc.Drain or nc.Close).
func Connect(ctx context.Context, urls string, cfg ConnectConfig) (*nats.Conn, error) {
	return connect(ctx, urls, urls, cfg)
}

func connect(ctx context.Context, urls, name string, cfg ConnectConfig, extra ...nats.Option) (*nats.Conn, error) {
	sec, err := cfg.securityOptions()
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", name, err)
	}
	wait := cfg.ReconnectWait
	if wait <= 0 {
		wait = 250 * time.Millisecond
	}
	opts := append([]nats.Option{
		nats.Name(cmpOr(cfg.Name, "orderflow")),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("bus disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("bus reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("bus error", "subject", subj, "err", err)
		}),
	}, sec...)
	nc, err := nats.Connect(urls, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", name, err)
	}
	return nc, nil
}

// StreamConfig configures the ORDERFLOW stream. The zero value is the
// embedded default: file storage, 24 h retention, a 10 min duplicates
// window, one replica.
type StreamConfig struct {
	// Retention is how long messages are kept (MaxAge). Default 24 h.
	Retention time.Duration
	// Duplicates is the window in which a repeated message id is dropped.
	// Default 10 min, at most Retention.
	Duplicates time.Duration
	// Replicas is the number of copies in a cluster (1 to 5). Default 1.
	Replicas int
	// MaxBytes bounds the stream's size; the oldest messages go first.
	// 0: unbounded (Retention alone limits it).
	MaxBytes int64
	// Memory stores the stream in memory instead of files (tests).
	Memory bool
}

// Stream settings' defaults.
const (
	DefaultRetention  = 24 * time.Hour
	DefaultDuplicates = 10 * time.Minute
)

// JetStreamConfig returns the stream configuration EnsureStream applies.
func (c StreamConfig) JetStreamConfig() jetstream.StreamConfig {
	ret := c.Retention
	if ret <= 0 {
		ret = DefaultRetention
	}
	dup := c.Duplicates
	if dup <= 0 {
		dup = DefaultDuplicates
	}
	dup = min(dup, ret)
	st := jetstream.FileStorage
	if c.Memory {
		st = jetstream.MemoryStorage
	}
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "orderflow normalized market events (docs/bus.md)",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     st,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      ret,
		MaxBytes:    maxBytes,
		Duplicates:  dup,
		Replicas:    max(c.Replicas, 1),
		// Consumers find a symbol's last snapshot with GetLastMsg.
		AllowDirect: true,
	}
}

// EnsureStream creates the ORDERFLOW stream, or updates an existing one to
// cfg (retention, duplicates window, replicas may change between runs).
//
// A cluster that is still forming, or electing a leader, can leave a
// request unanswered or refuse it for a moment ("no suitable peers for
// placement", "temporarily unavailable"): each attempt is bounded and
// such failures are tried again until ctx ends. A refusal that waiting
// cannot change (a bad request: another stream owns the subjects, say)
// returns at once.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, streamAttemptTimeout)
		s, err := js.CreateOrUpdateStream(actx, cfg.JetStreamConfig())
		cancel()
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil || !transientStreamError(err) {
			return nil, fmt.Errorf("bus: stream %s (attempt %d): %w", StreamName, attempt, errors.Join(err, ctx.Err()))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bus: stream %s (attempt %d): %w", StreamName, attempt, errors.Join(err, ctx.Err()))
		case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, time.Second)):
		}
	}
}

// streamAttemptTimeout bounds one request of EnsureStream.
const streamAttemptTimeout = 5 * time.Second

// transientStreamError tells whether a failed stream request may succeed
// when tried again: no answer (or none in time), or a refusal of the
// cluster's state rather than of the request.
func transientStreamError(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) {
		return true
	}
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode {
	case 10005, // no suitable peers for placement (a peer not yet known online)
		10008, // JetStream system temporarily unavailable
		10023: // insufficient resources (a peer not yet reporting its limits)
		return true
	}
	return api.Code == 503 || api.Code == 408
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
