package bus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/natstest"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/stacktest"
)

// mustPKI generates the test's certificates (natstest.PKI).
func mustPKI(t *testing.T) natstest.PKI { return natstest.NewPKI(t, t.TempDir()) }

func mustSecureServer(t *testing.T, cfg bus.EmbeddedConfig) *bus.Embedded {
	t.Helper()
	cfg.DataDir, cfg.Port, cfg.Logger = t.TempDir(), -1, stacktest.Logger(t)
	srv, err := bus.StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func authConnect(t *testing.T, url string, cfg bus.ConnectConfig) (*nats.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg.Logger = stacktest.Logger(t)
	cfg.Timeout = 5 * time.Second
	nc, err := bus.Connect(ctx, url, cfg)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

// mustRefused: the server turns the client away.
func mustRefused(t *testing.T, url string, cfg bus.ConnectConfig, want error) {
	t.Helper()
	nc, err := authConnect(t, url, cfg)
	if err == nil {
		nc.Close()
		t.Fatal("connected; want refused")
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("refused with %v; want %v", err, want)
	}
}

// publishAndConsume publishes a few real trades through a Publisher on nc
// and reads them back from the stream with an ordered consumer: the
// stored messages decode to the trades sent.
func publishAndConsume(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bus.EnsureStream(ctx, js, bus.StreamConfig{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	trades, _, _ := realData(t, stacktest.Testdata("hft-spot-btcusdt-20240808.txt.gz"), 5)
	trades = trades[:5]
	pub, err := bus.NewPublisher(nc, bus.PublisherConfig{Market: market.Spot, Logger: stacktest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pub.Run(pctx) }()
	for i := range trades {
		pub.Hook(service.Event{Symbol: trades[i].Symbol, Trade: &trades[i]})
	}
	pcancel() // Run drains what is queued before it returns
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := pub.Stats(); s.Acked != uint64(len(trades)) {
		t.Fatalf("publisher acked %d of %d", s.Acked, len(trades))
	}
	subj := bus.Subject(market.Spot, trades[0].Symbol, bus.TopicTrades)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(len(trades), jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		var got bus.Trade
		if err := bus.DecodeTrade(m.Data(), &got); err != nil {
			t.Fatal(err)
		}
		w := trades[n]
		if got.ID != w.ID || got.Price != w.Price || got.Qty != w.Qty || got.Symbol != w.Symbol {
			t.Fatalf("message %d: %+v; want trade %d %v x %v", n, got, w.ID, w.Price, w.Qty)
		}
		n++
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	if n != len(trades) {
		t.Fatalf("consumed %d of %d trades", n, len(trades))
	}
}

// TestEmbeddedAuth: an embedded server with a token or a user/password
// refuses clients without the credential or with a wrong one; a client
// with it publishes and consumes; the in-process connection of
// Embedded.Connect presents the server's credential itself.
func TestEmbeddedAuth(t *testing.T) {
	t.Run("Token", func(t *testing.T) {
		srv := mustSecureServer(t, bus.EmbeddedConfig{Auth: bus.Auth{Token: "s3cret-token"}})
		mustRefused(t, srv.ClientURL(), bus.ConnectConfig{}, nats.ErrAuthorization)
		mustRefused(t, srv.ClientURL(), bus.ConnectConfig{Auth: bus.Auth{Token: "guess"}}, nats.ErrAuthorization)
		mustRefused(t, srv.ClientURL(), bus.ConnectConfig{Auth: bus.Auth{User: "s3cret-token", Password: "x"}}, nats.ErrAuthorization)
		nc, err := authConnect(t, srv.ClientURL(), bus.ConnectConfig{Auth: bus.Auth{Token: "s3cret-token"}})
		if err != nil {
			t.Fatal(err)
		}
		publishAndConsume(t, nc)
	})
	t.Run("UserPassword", func(t *testing.T) {
		srv := mustSecureServer(t, bus.EmbeddedConfig{Auth: bus.Auth{User: "feed", Password: "pw-1"}})
		mustRefused(t, srv.ClientURL(), bus.ConnectConfig{}, nats.ErrAuthorization)
		mustRefused(t, srv.ClientURL(), bus.ConnectConfig{Auth: bus.Auth{User: "feed", Password: "pw-2"}}, nats.ErrAuthorization)
		mustRefused(t, srv.ClientURL(), bus.ConnectConfig{Auth: bus.Auth{Token: "pw-1"}}, nats.ErrAuthorization)
		nc, err := authConnect(t, srv.ClientURL(), bus.ConnectConfig{Auth: bus.Auth{User: "feed", Password: "pw-1"}})
		if err != nil {
			t.Fatal(err)
		}
		publishAndConsume(t, nc)
	})
	t.Run("OwnConnectionsPresentServerCredential", func(t *testing.T) {
		srv := mustSecureServer(t, bus.EmbeddedConfig{Auth: bus.Auth{User: "feed", Password: "pw-1"}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, conn := range []func(context.Context, bus.ConnectConfig) (*nats.Conn, error){srv.Connect, srv.ConnectInProcess} {
			nc, err := conn(ctx, bus.ConnectConfig{Logger: stacktest.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			publishAndConsume(t, nc)
			nc.Close()
		}
	})
}

// TestEmbeddedTLS: a server with TLS and a client CA (mutual TLS) refuses
// a plain-text client, a client without a certificate, one with a
// certificate from another CA, and one that does not trust the server's
// CA; a client with the CA and its certificate publishes and consumes.
func TestEmbeddedTLS(t *testing.T) {
	p := mustPKI(t)
	t.Run("MutualTLS", func(t *testing.T) {
		srv := mustSecureServer(t, bus.EmbeddedConfig{TLS: bus.TLSFiles{CertFile: p.ServerCert, KeyFile: p.ServerKey, CAFile: p.CA}})
		url := srv.ClientURL()
		plain := "nats://" + url[len("tls://"):]
		mustRefused(t, plain, bus.ConnectConfig{}, nil)
		mustRefused(t, url, bus.ConnectConfig{TLS: bus.TLSFiles{CAFile: p.CA}}, nil)
		mustRefused(t, url, bus.ConnectConfig{TLS: bus.TLSFiles{CAFile: p.CA, CertFile: p.StrangerCert, KeyFile: p.StrangerKey}}, nil)
		mustRefused(t, url, bus.ConnectConfig{TLS: bus.TLSFiles{CAFile: p.OtherCA, CertFile: p.ClientCert, KeyFile: p.ClientKey}}, nil)
		nc, err := authConnect(t, url, bus.ConnectConfig{TLS: bus.TLSFiles{CAFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ClientKey}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.TLSConnectionState(); err != nil {
			t.Fatalf("connection is not TLS: %v", err)
		}
		publishAndConsume(t, nc)
		// This process's own connection needs no client certificate.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		in, err := srv.Connect(ctx, bus.ConnectConfig{Logger: stacktest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		in.Close()
	})
	t.Run("TLSWithToken", func(t *testing.T) {
		srv := mustSecureServer(t, bus.EmbeddedConfig{Auth: bus.Auth{Token: "tok"}, TLS: bus.TLSFiles{CertFile: p.ServerCert, KeyFile: p.ServerKey}})
		url := srv.ClientURL()
		mustRefused(t, url, bus.ConnectConfig{TLS: bus.TLSFiles{CAFile: p.CA}}, nats.ErrAuthorization)
		mustRefused(t, url, bus.ConnectConfig{Auth: bus.Auth{Token: "tok"}, TLS: bus.TLSFiles{CAFile: p.OtherCA}}, nil)
		nc, err := authConnect(t, url, bus.ConnectConfig{Auth: bus.Auth{Token: "tok"}, TLS: bus.TLSFiles{CAFile: p.CA}})
		if err != nil {
			t.Fatal(err)
		}
		publishAndConsume(t, nc)
	})
}

// TestEmbeddedSecurityRefused: configurations StartEmbedded refuses
// before it touches the data directory.
func TestEmbeddedSecurityRefused(t *testing.T) {
	p := mustPKI(t)
	for _, tc := range []struct {
		name string
		cfg  bus.EmbeddedConfig
		want error
	}{
		{"AllInterfacesNoAuth", bus.EmbeddedConfig{Host: "0.0.0.0"}, bus.ErrInsecureListen},
		{"AnyHostNoAuth", bus.EmbeddedConfig{Host: "::"}, bus.ErrInsecureListen},
		{"TLSWithoutClientCANoAuth", bus.EmbeddedConfig{Host: "0.0.0.0", TLS: bus.TLSFiles{CertFile: p.ServerCert, KeyFile: p.ServerKey}}, bus.ErrInsecureListen},
		{"TokenAndUser", bus.EmbeddedConfig{Auth: bus.Auth{Token: "a", User: "b", Password: "c"}}, nil},
		{"UserWithoutPassword", bus.EmbeddedConfig{Auth: bus.Auth{User: "b"}}, nil},
		{"CertWithoutKey", bus.EmbeddedConfig{TLS: bus.TLSFiles{CertFile: p.ServerCert}}, nil},
		{"KeyNotMatchingCert", bus.EmbeddedConfig{TLS: bus.TLSFiles{CertFile: p.ServerCert, KeyFile: p.ClientKey}}, nil},
		{"CANotPEM", bus.EmbeddedConfig{TLS: bus.TLSFiles{CertFile: p.ServerCert, KeyFile: p.ServerKey, CAFile: p.ServerKey}}, nil},
		{"MissingCertFile", bus.EmbeddedConfig{TLS: bus.TLSFiles{CertFile: p.ServerCert + ".missing", KeyFile: p.ServerKey}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			tc.cfg.DataDir, tc.cfg.Port, tc.cfg.Logger = dir, -1, stacktest.Logger(t)
			srv, err := bus.StartEmbedded(tc.cfg)
			if err == nil {
				srv.Close()
				t.Fatal("started; want refused")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("refused with %v; want %v", err, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("data directory touched: %v", err)
			}
		})
	}
}

// TestConnectConfigRefused: client settings Connect refuses before it
// dials.
func TestConnectConfigRefused(t *testing.T) {
	p := mustPKI(t)
	for _, tc := range []struct {
		name string
		cfg  bus.ConnectConfig
	}{
		{"TokenAndUser", bus.ConnectConfig{Auth: bus.Auth{Token: "a", User: "b", Password: "c"}}},
		{"CredsAndToken", bus.ConnectConfig{CredsFile: p.CA, Auth: bus.Auth{Token: "a"}}},
		{"MissingCreds", bus.ConnectConfig{CredsFile: p.CA + ".missing"}},
		{"CertWithoutKey", bus.ConnectConfig{TLS: bus.TLSFiles{CertFile: p.ClientCert}}},
		{"CANotPEM", bus.ConnectConfig{TLS: bus.TLSFiles{CAFile: p.ClientKey}}},
		{"MissingCA", bus.ConnectConfig{TLS: bus.TLSFiles{CAFile: p.CA + ".missing"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Port 1 on loopback: nothing listens, so only the
			// configuration check can answer.
			_, err := authConnect(t, "nats://127.0.0.1:1", tc.cfg)
			if err == nil || errors.Is(err, nats.ErrNoServers) {
				t.Fatalf("got %v; want a configuration error", err)
			}
		})
	}
}
